"""`python -m trainer download` against the real kaggle client, pointed at a loopback stand-in
(KAGGLE_API_ENVIRONMENT=TEST makes the client call http://localhost:7777): archives with a
nested or differently-cased top folder end up as DATA/Train and DATA/Test, a class mismatch is
one clear sentence, and the credentials only ever travel over stdin and the request."""

from __future__ import annotations

import base64
import errno
import fcntl
import io
import json
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from tests.trainer.support import run_trainer

PORT = 7777  # fixed by the kaggle client's TEST environment
USERNAME, KEY = "pacer-tester", "s3cret-kaggle-key-0123456789"
TOKEN = "KGAT_made-up-access-token-9876543210"
"""An API token: kagglesdk sends it as `Authorization: Bearer …` (kaggle_http_client.BearerAuth);
a legacy key goes as HTTP Basic username:key."""
DOWNLOAD_RPC = "/api/v1/datasets.DatasetApiService/DownloadDataset"
GET_RPC = "/api/v1/datasets.DatasetApiService/GetDataset"
"""kagglesdk's DatasetApiClient.get_dataset: ApiGetDatasetRequest {ownerSlug, datasetSlug} in,
an ApiDataset (kagglesdk/datasets/types/dataset_api_service.py, its camelCase fields) out."""


def png_bytes(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (shade, shade, shade)).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def dataset(
    train: str, test: str, classes: tuple[str, ...], test_classes: tuple[str, ...]
) -> bytes:
    files = {}
    for split, names in ((train, classes), (test, test_classes)):
        for index, name in enumerate(names):
            for n in range(2 if split == test else 3):
                files[f"{split}/{name}/{n}.png"] = png_bytes(40 * index + n)
    files["pacemakers/README.txt"] = b"not an image"
    return make_zip(files)


class KaggleStandIn(ThreadingHTTPServer):
    """Answers DownloadDataset with a redirect to a zip, as Kaggle does, and GetDataset with the
    dataset's ApiDataset; checks the key (401 when refused) and the dataset (404 when unknown)."""

    allow_reuse_address = True

    def __init__(self) -> None:
        deadline = time.monotonic() + 30
        while True:  # another test (or a slow shutdown) may hold the fixed port for a moment
            try:
                super().__init__(("127.0.0.1", PORT), KaggleHandler)
                break
            except OSError as err:
                if err.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.archive = b""
        self.requests: list[dict[str, object]] = []


class KaggleHandler(BaseHTTPRequestHandler):
    server: KaggleStandIn

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
        self.server.requests.append({"path": self.path, "auth": self.headers["Authorization"]})
        accepted = {
            "Basic " + base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode(),
            f"Bearer {TOKEN}",
        }
        if self.path not in (DOWNLOAD_RPC, GET_RPC):
            self.reply(404, b'{"code": 404, "message": "no such RPC"}', "application/json")
        elif self.headers["Authorization"] not in accepted:
            self.reply(401, b'{"code": 401, "message": "Unauthenticated"}', "application/json")
        elif body.get("datasetSlug") != "pacemakers":
            self.reply(404, b'{"code": 404, "message": "Not found"}', "application/json")
        elif self.path == GET_RPC:
            found = {"id": 1, "ref": f"{body.get('ownerSlug')}/pacemakers", "title": "Pacemakers"}
            self.reply(200, json.dumps(found).encode(), "application/json")
        else:
            self.send_response(302)
            self.send_header("Location", "/files/pacemakers.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/files/pacemakers.zip":
            self.reply(200, self.server.archive, "application/zip")
        else:
            self.reply(404, b"", "text/plain")

    def reply(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def kaggle() -> Iterator[KaggleStandIn]:
    lock = open(Path(tempfile.gettempdir()) / f"pacerid-kaggle-{PORT}.lock", "w")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)  # one stand-in at a time on this machine
    server = KaggleStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    lock.close()


@pytest.fixture
def kaggle_config(tmp_path: Path) -> Path:
    path = tmp_path / "kaggle.yaml"
    path.write_text("data:\n  source: kaggle\n  dataset: jamesphoward/pacemakers\n")
    return path


def download(config: Path, data: Path, home: Path, credentials: str | None) -> tuple[int, str, str]:
    args = ["download", "--config", config, "--data", data]
    if credentials is not None:
        args.append("--credentials-stdin")
    result = run_trainer(
        *args, stdin=credentials or "", KAGGLE_API_ENVIRONMENT="TEST", HOME=str(home)
    )
    return result.returncode, result.stdout, result.stderr


CREDENTIALS = json.dumps({"username": USERNAME, "key": KEY})
CLASSES = ("BIO - Actros", "MDT - Adapta", "STJ - Accent")


def test_a_nested_archive_becomes_train_and_test(
    kaggle: KaggleStandIn, kaggle_config: Path, tmp_path: Path
) -> None:
    kaggle.archive = dataset("pacemakers/Train", "pacemakers/Test", CLASSES, CLASSES)
    kaggle.requests.clear()
    data = tmp_path / "data"
    code, stdout, stderr = download(kaggle_config, data, tmp_path, CREDENTIALS)
    assert code == 0, stderr
    assert sorted(p.name for p in (data / "Train").iterdir()) == list(CLASSES)
    assert len(list((data / "Test").rglob("*.png"))) == 6
    assert "3 classes, 9 training and 6 test images" in stdout
    assert "Authentication" not in stdout and "Dataset URL" not in stdout  # kaggle's chatter
    assert sorted(p.name for p in data.iterdir()) == [".download.json", "Test", "Train"]
    assert len(kaggle.requests) == 1
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path

    again = download(kaggle_config, data, tmp_path, None)
    assert again[0] == 0 and "already in" in again[1]
    assert len(kaggle.requests) == 1  # the marker answered; Kaggle was not asked again


def test_a_token_on_stdin_goes_to_kaggle_as_a_bearer_token(
    kaggle: KaggleStandIn, kaggle_config: Path, tmp_path: Path
) -> None:
    kaggle.archive = dataset("Train", "Test", CLASSES, CLASSES)
    kaggle.requests.clear()
    token = json.dumps({"token": TOKEN})
    code, _, stderr = download(kaggle_config, tmp_path / "data", tmp_path, token)
    assert code == 0, stderr
    assert [r["auth"] for r in kaggle.requests] == [f"Bearer {TOKEN}"]
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def test_different_case_folders_are_normalised(
    kaggle: KaggleStandIn, kaggle_config: Path, tmp_path: Path
) -> None:
    kaggle.archive = dataset("TRAIN", "data/test", CLASSES, CLASSES)
    code, _, stderr = download(kaggle_config, tmp_path / "data", tmp_path, CREDENTIALS)
    assert code == 0, stderr
    assert (tmp_path / "data/Train/MDT - Adapta/0.png").is_file()
    assert (tmp_path / "data/Test/STJ - Accent/1.png").is_file()


def test_a_class_mismatch_is_a_clear_error(
    kaggle: KaggleStandIn, kaggle_config: Path, tmp_path: Path
) -> None:
    kaggle.archive = dataset("Train", "Test", CLASSES, (*CLASSES[:2], "XYZ - Other"))
    code, _, stderr = download(kaggle_config, tmp_path / "data", tmp_path, CREDENTIALS)
    assert code == 1
    assert stderr.strip() == (
        "Train and Test have different classes (only in Train: ['STJ - Accent']; "
        "only in Test: ['XYZ - Other']); fix the dataset folders."
    )
    assert not (tmp_path / "data/Train").exists()


@pytest.mark.parametrize(
    ("credentials", "code", "message"),
    [
        (json.dumps({"username": USERNAME, "key": "wrong"}), 1, "Kaggle refused the credentials"),
        (None, 1, "no Kaggle credentials found"),
        ("not json", 2, "--credentials-stdin expects one JSON object"),
    ],
)
def test_credential_problems_are_one_sentence(
    kaggle: KaggleStandIn,
    kaggle_config: Path,
    tmp_path: Path,
    credentials: str | None,
    code: int,
    message: str,
) -> None:
    kaggle.archive = dataset("Train", "Test", CLASSES, CLASSES)
    result = download(kaggle_config, tmp_path / "data", tmp_path, credentials)
    assert result[0] == code
    assert message in result[2] and len(result[2].strip().splitlines()) == 1
    assert "Traceback" not in result[1] + result[2]
