"""The `download` command: the Kaggle dataset into DATA/Train and DATA/Test.

Kaggle archives come with whatever top folder and case their author chose (`Train/`,
`pacemakers/train/`, `data/TEST/`…), so the archive is unpacked aside, the train and test
folders are found at any depth, and moved into the ImageFolder layout the trainer reads, after
checking both hold the same classes. The `kaggle` package is imported only here and with
stdout redirected: at import it authenticates and prints a banner when it finds no key.
Credentials arrive on stdin (--credentials-stdin): an API token or a legacy key, kept in memory
and handed to the kaggle client directly (no environment variable, no file).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any, TextIO

from trainer.errors import TrainerError, UsageError
from trainer.layout import IMAGE_SUFFIXES, check_classes, list_split

MARKER = ".download.json"

log = logging.getLogger(__name__)


def download(dataset: str, data_dir: Path, credentials: TextIO | None) -> None:
    """Fetch and normalise `dataset` into data_dir unless the marker says it is there."""
    marker = data_dir / MARKER
    if marker.exists() and (data_dir / "Train").is_dir() and (data_dir / "Test").is_dir():
        previous = json.loads(marker.read_text())
        if previous.get("dataset") == dataset:
            log.info("Dataset %s already in %s: %s.", dataset, data_dir, counts(previous))
            return
    given = read_credentials(credentials) if credentials is not None else None
    staging = data_dir / ".download"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log.info("Downloading Kaggle dataset %s…", dataset)
    archive = fetch(dataset, staging, given)
    summary = normalise(archive, data_dir, staging)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(json.dumps({"dataset": dataset, **summary}))
    log.info("Dataset %s ready in %s: %s.", dataset, data_dir, counts(summary))


def counts(summary: dict[str, Any]) -> str:
    return (
        f"{summary['classes']} classes, {summary['train']} training and "
        f"{summary['test']} test images"
    )


def read_credentials(stream: TextIO) -> dict[str, str]:
    """{"token": …} or {"username": …, "key": …} from stdin; never logged or written."""
    problem = UsageError(
        '--credentials-stdin expects one JSON object on stdin: {"token": "..."} or '
        '{"username": "...", "key": "..."}.'
    )
    try:
        data = json.loads(stream.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise problem from None
    if not isinstance(data, dict):
        raise problem
    if isinstance(data.get("token"), str) and data["token"]:
        return {"token": data["token"]}
    username, key = data.get("username"), data.get("key")
    if not (isinstance(username, str) and username and isinstance(key, str) and key):
        raise problem
    return {"username": username, "key": key}


def fetch(dataset: str, folder: Path, given: dict[str, str] | None = None) -> Path:
    """The dataset's zip file, downloaded by Kaggle's own client into `folder`.

    Credentials from stdin go straight to kagglesdk's `KaggleClient` (a token as its api_token,
    a legacy key as username and password), in memory only. Without them, `KaggleApi` finds
    the host's own (environment, kaggle.json or an access token). The RPC goes through
    `KaggleClient`, which honours KAGGLE_API_ENVIRONMENT; `KaggleApi.authenticate` is not asked
    to check a given token, since it asks the production service whatever that variable says.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi
            from kagglesdk import KaggleClient
            from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest
        except ImportError:
            raise TrainerError(
                "the kaggle package is not installed; pip install -r trainer/requirements.txt."
            ) from None
        api = KaggleApi()
        if given is None:
            try:
                api.authenticate()
            except SystemExit:
                raise TrainerError(
                    "no Kaggle credentials found; pass them with --credentials-stdin "
                    "or set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY."
                ) from None
            values = api.config_values
            auth = {
                "username": values.get(api.CONFIG_NAME_USER),
                "password": values.get(api.CONFIG_NAME_KEY),
                "api_token": values.get(api.CONFIG_NAME_TOKEN),
            }
        elif "token" in given:
            auth = {"api_token": given["token"]}
        else:
            auth = {"username": given["username"], "password": given["key"]}
        owner, slug, version = dataset_parts(dataset)
        request = ApiDownloadDatasetRequest()
        request.owner_slug, request.dataset_slug = owner, slug
        request.dataset_version_number = version
        archive = folder / f"{slug}.zip"
        try:
            with KaggleClient(**auth) as client:
                response = client.datasets.dataset_api_client.download_dataset(request)
                api.download_file(response, str(archive), client.http_client(), quiet=True)
        except Exception as err:  # the client raises requests' and its own error types
            raise TrainerError(describe_failure(dataset, err)) from None
    return archive


def dataset_parts(dataset: str) -> tuple[str, str, int | None]:
    """owner/name or owner/name/version."""
    parts = dataset.split("/")
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and not parts[2].isdigit()):
        raise UsageError(f"data.dataset = {dataset!r} is invalid; write it as owner/name.")
    return parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None


def describe_failure(dataset: str, err: Exception) -> str:
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status in (401, 403):
        return f"Kaggle refused the credentials (HTTP {status}); check the token or the key."
    if status == 404:
        return f"Kaggle has no dataset '{dataset}' (HTTP 404); check data.dataset in the config."
    if status is not None:
        return f"Kaggle answered HTTP {status} for {dataset}; try again later."
    return f"could not download {dataset} from Kaggle ({type(err).__name__}: {err})."


def normalise(archive: Path, data_dir: Path, staging: Path) -> dict[str, int]:
    """Unpack `archive` and move its train/test folders to data_dir/Train and data_dir/Test."""
    unpacked = staging / "unpacked"
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(unpacked)  # zipfile drops absolute paths and `..` parts
    except zipfile.BadZipFile:
        raise TrainerError(f"the downloaded archive {archive.name} is not a valid zip.") from None
    found = {name: find_split(unpacked, name) for name in ("Train", "Test")}
    listings = {name: list_split(folder) for name, folder in found.items()}
    check_classes(listings["Train"], listings["Test"])
    for name, folder in found.items():
        shutil.rmtree(data_dir / name, ignore_errors=True)
        folder.rename(data_dir / name)
    shutil.rmtree(data_dir / ".cache", ignore_errors=True)  # decoded images of older files
    return {
        "classes": len(listings["Train"].classes),
        "train": len(listings["Train"].files),
        "test": len(listings["Test"].files),
    }


def find_split(root: Path, name: str) -> Path:
    """The shallowest folder called `name` (any case) whose sub-folders hold images."""
    candidates = sorted(
        (p for p in root.rglob("*") if p.is_dir() and p.name.lower() == name.lower()),
        key=lambda p: (len(p.parts), str(p)),
    )
    for folder in candidates:
        if "__MACOSX" in folder.parts:
            continue
        if any(
            image.suffix.lower() in IMAGE_SUFFIXES
            for sub in folder.iterdir()
            if sub.is_dir()
            for image in sub.iterdir()
        ):
            return folder
    raise TrainerError(
        f"the archive has no {name.lower()}/ folder with one sub-folder of images per class."
    )
