"""`python -m trainer train` end to end, on CPU, as the controller runs it: the local config
learns the synthetic data, and every file of the host contract is written and consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from tests.trainer.support import REPO, events, run_trainer
from trainer.checkpoint import REQUIRED_KEYS
from trainer.model import build_model

pytestmark = pytest.mark.xdist_group("trainer-run")
"""One worker runs this module: its module-scoped fixture trains once, not once per worker."""

EVENT_KEYS = {
    "start": {"event", "time", "epochs", "epoch", "steps", "classes"},
    "step": {"event", "time", "epoch", "step", "steps", "loss", "lr", "images_per_s"},
    "epoch": {
        "event",
        "time",
        "epoch",
        "epochs",
        "train_loss",
        "val_loss",
        "val_acc",
        "val_top5",
        "epoch_seconds",
        "eta_seconds",
        "images_per_s",
    },
    "done": {
        "event",
        "time",
        "epoch",
        "epochs",
        "best_epoch",
        "best_val_acc",
        "test_acc",
        "test_top5",
        "test_loss",
        "test_images",
        "manufacturer_acc",
    },
}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full run of configs/local.yaml, shared by the tests below (its time is
    benchmarks/local_epoch.py's figure, not a test's)."""
    root = tmp_path_factory.mktemp("local")
    result = run_trainer(
        "train", "--config", REPO / "configs/local.yaml", "--data", root / "data", timeout=300
    )
    assert result.returncode == 0, result.stderr
    return root / "output"


def test_local_config_learns_the_synthetic_data(local_run: Path) -> None:
    done = events(local_run, "done")[0]
    assert done["test_acc"] >= 0.9 and done["best_val_acc"] >= 0.9


def test_the_run_writes_every_file_of_the_host_contract(local_run: Path) -> None:
    output = local_run
    names = {p.name for p in output.iterdir()}
    assert {
        "train.log",
        "metrics.jsonl",
        "status.json",
        "system.jsonl",
        "checkpoint_latest.pt",
        "checkpoint_best.pt",
        "model_final.pt",
        "config.resolved.yaml",
        "report.json",
        "confusion_matrix.png",
    } <= names
    assert not [n for n in names if ".tmp" in n]
    assert not [n for n in names if n.startswith("checkpoint_epoch_")]  # only when asked
    status = json.loads((output / "status.json").read_text())
    assert status["phase"] == "done" and status["epoch"] == status["epochs"] == 3
    for event in events(output):
        assert set(event) >= EVENT_KEYS.get(event["event"], set()), event
    assert [e["epoch"] for e in events(output, "epoch")] == [1, 2, 3]
    assert events(output, "start")[0]["epoch"] == 0
    steps = events(output, "step")
    assert steps and all(1 <= e["step"] <= e["steps"] for e in steps)
    assert "Epoch 3/3" in (output / "train.log").read_text()
    first = json.loads((output / "system.jsonl").read_text().splitlines()[0])
    assert first["device"]["capability"] is None and first["device"]["dtype"] == "fp32"
    assert events(output, "start")[0]["dtype"] == "fp32"
    resolved = yaml.safe_load((output / "config.resolved.yaml").read_text())
    assert resolved["model"]["name"] == "resnet18" and resolved["training"]["epochs"] == 3


def test_the_log_is_whole_before_the_done_event(local_run: Path) -> None:
    """A follower ends once it has read every file to the size it had when metrics.jsonl gave
    the `done` event (core/remote/file_follower.py), so the log's last lines (the test figures,
    "Done.") must be written before that event, or a live log can end without them."""
    done = events(local_run, "done")[0]
    lines = (local_run / "train.log").read_text().splitlines()
    assert lines[-1].endswith("INFO Done.") and "INFO Test, once" in lines[-2]
    # asctime, to the millisecond and in local time: "2026-12-07 13:40:01,234"
    written = datetime.strptime(lines[-1][:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    assert written <= done["time"]


def test_checkpoints_hold_what_export_needs_and_load_alone(local_run: Path) -> None:
    output = local_run
    state = torch.load(output / "model_final.pt", map_location="cpu", weights_only=True)
    assert set(REQUIRED_KEYS) <= set(state)
    assert state["format_version"] == 1 and state["epoch"] == 3
    assert state["class_names"] == sorted(p.name for p in (output.parent / "data/Train").iterdir())
    assert state["num_classes"] == 4 and state["image_size"] == 64
    last = events(output, "epoch")[-1]
    assert state["metrics"]["val_acc"] == pytest.approx(last["val_acc"])
    model = build_model(state["arch"], state["num_classes"])
    model.load_state_dict(state["model_state"])
    latest = torch.load(output / "checkpoint_latest.pt", map_location="cpu", weights_only=True)
    assert latest["epoch"] == 3


def test_report_agrees_with_the_metrics(local_run: Path) -> None:
    """The test figures come from the one test pass; the validation figures are the chosen
    epoch's, as its epoch event has them."""
    output = local_run
    report = json.loads((output / "report.json").read_text())
    done = events(output, "done")[0]
    [chosen] = [e for e in events(output, "epoch") if e["epoch"] == done["best_epoch"]]
    assert report["epoch"] == done["best_epoch"] and report["epochs_trained"] == 3
    assert report["accuracy"] == pytest.approx(done["test_acc"])
    assert report["loss"] == pytest.approx(done["test_loss"])
    assert report["validation"]["accuracy"] == pytest.approx(chosen["val_acc"])
    assert report["validation"]["loss"] == pytest.approx(chosen["val_loss"])
    assert report["validation"]["images"] == 36  # 15 % of 60 a class: 9 a class
    assert report["best_val_acc"] == pytest.approx(done["best_val_acc"])
    assert done["best_val_acc"] == max(e["val_acc"] for e in events(output, "epoch"))
    assert report["manufacturer"]["accuracy"] == pytest.approx(done["manufacturer_acc"])
    matrix = torch.tensor(report["confusion_matrix"])
    assert matrix.shape == (4, 4) and int(matrix.sum()) == report["images"] == 60
    assert matrix.trace().item() / 60 == pytest.approx(report["accuracy"])
    for row, entry in zip(matrix, report["per_class"], strict=True):
        assert entry["count"] == int(row.sum()) == 15
    assert report["manufacturer"]["manufacturers"] == ["ACM", "BTX"]
    assert report["manufacturer"]["accuracy"] >= report["accuracy"]
    with Image.open(output / report["confusion_matrix_png"]) as picture:
        assert picture.width > 4 * 28 and picture.height > 4 * 28


def test_training_again_after_the_end_is_quick_and_changes_nothing(
    local_run: Path,
) -> None:
    output = local_run
    before = (output / "checkpoint_latest.pt").read_bytes()
    result = run_trainer(
        "train", "--config", REPO / "configs/local.yaml", "--data", output.parent / "data"
    )
    assert result.returncode == 0, result.stderr
    assert (output / "checkpoint_latest.pt").read_bytes() == before
    assert [e["epoch"] for e in events(output, "done")] == [3, 3]


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("training:\n  epochz: 3\n", "unknown key 'training.epochz'"),
        ("data:\n  batch_size: 0\n", "data.batch_size = 0 is invalid"),
        ("model:\n  name: vgg\n", "model.name = 'vgg' is invalid"),
        ("data: [1, 2\n", "is not valid YAML"),
    ],
)
def test_a_bad_config_is_one_sentence_and_exit_2(
    tmp_path: Path, config_text: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)
    result = run_trainer("train", "--config", config, "--data", tmp_path / "data")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_kaggle_data_missing_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "kaggle.yaml"
    config.write_text("data:\n  source: kaggle\ntraining:\n  device: cpu\n")
    result = run_trainer("train", "--config", config, "--data", tmp_path / "data")
    assert result.returncode == 1
    assert "has no Train/ folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    status = json.loads((tmp_path / "output/status.json").read_text())
    assert status["phase"] == "error"
    assert events(tmp_path / "output", "error")


def test_export_is_handed_to_trainer_export(tmp_path: Path) -> None:
    result = run_trainer("export", "--checkpoint", tmp_path / "missing.pt", "--out", tmp_path)
    assert result.returncode == 2
    assert "missing.pt" in result.stderr


def test_usage_errors_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "fly"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2
