"""`python -m trainer download` against the real kaggle client, pointed at a loopback stand-in
(tests/kaggle_standin.py): archives with a nested or differently-cased top folder end up as
DATA/Train and DATA/Test, a class mismatch is one clear sentence, and the credentials only ever
travel over stdin and the request."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.kaggle_standin import KEY, TOKEN, USERNAME, KaggleStandIn
from tests.trainer.support import run_trainer


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
