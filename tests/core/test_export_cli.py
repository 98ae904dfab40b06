"""The controller side of export: the real `python -m trainer export` child, its progress lines,
its JSON result as an ExportResult, its failures as one-sentence errors; then the exported
package synced into an iOS models folder, manifest and all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pacerid_tui.core.errors import PaceridError, UsageError
from pacerid_tui.core.export import (
    RESULT_NAME,
    TRAINER_ROOT,
    export_model,
    find_checkpoint,
    read_export,
)
from pacerid_tui.core.ios import package_sha256, read_manifest, sync_model

LABELS = ("DYN-device03", "ACM-device00", "BTX-device02")  # deliberately not sorted
MAKE_CHECKPOINT = """
import sys, torch
from trainer.model import build_model
model = build_model("resnet18", 3)
torch.save({
    "format_version": 1, "epoch": 1, "step": 4, "arch": "resnet18", "num_classes": 3,
    "class_names": sys.argv[2:], "image_size": 32, "model_state": model.state_dict(),
    "optimizer_state": {}, "scheduler_state": {}, "scaler_state": {}, "best_val_acc": 0.5,
    "config": {}, "metrics": {"train_loss": 1.0, "val_loss": 1.05, "val_acc": 0.5},
}, sys.argv[1])
"""


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(TRAINER_ROOT))
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=True
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """Written by a child so this test process stays free of torch, like the controller."""
    path = tmp_path_factory.mktemp("results") / "checkpoint_best.pt"
    run_python("-c", MAKE_CHECKPOINT, str(path), *LABELS)
    return path


async def test_export_in_a_child_then_sync_into_the_ios_app(checkpoint, tmp_path):
    progress: list[str] = []
    out = tmp_path / "coreml"
    result = await export_model(checkpoint, out, version="v0.1.0", report=progress.append)

    assert result.package == out / "PacerIDClassifier.mlpackage" and result.package.is_dir()
    assert result.labels == LABELS and result.image_size == 32 and result.arch == "resnet18"
    assert result.version == "v0.1.0" and result.epoch == 1
    assert result.metrics == {"train_loss": 1.0, "val_loss": 1.05, "val_acc": 0.5}
    assert {"preprocessing", "labels", "image_size", "float16", "ios16"} <= set(result.checks)
    assert any("converting to Core ML" in line for line in progress)
    assert not any("%|" in line for line in progress)  # no tqdm bars in the dashboard's log
    assert read_export(out) == result

    app = tmp_path / "ios" / "PacerID"
    app.mkdir(parents=True)
    synced = sync_model(
        result.package,
        "v0.1.0",
        app / "Models",
        run_id="local-0001",
        labels=result.labels,
        metrics=result.metrics,
    )
    manifest = read_manifest(app / "Models")
    assert manifest == synced.manifest
    assert manifest.sha256 == package_sha256(app / "Models" / "PacerIDClassifier.mlpackage")
    assert manifest.labels == LABELS and manifest.source_run == "local-0001"


async def test_unusable_checkpoint_is_a_usage_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "checkpoint_best.pt"
    bad.write_bytes(b"half a checkpoint")
    progress: list[str] = []
    with pytest.raises(UsageError, match="is not a readable PyTorch checkpoint") as err:
        await export_model(bad, tmp_path / "out", report=progress.append)
    assert err.value.exit_code == 2
    assert str(bad) in str(err.value) and len(progress) == 1
    assert not (tmp_path / "out").exists()


def test_read_export_without_an_export_says_what_to_do(tmp_path):
    with pytest.raises(UsageError, match="pacerid-tui export"):
        read_export(tmp_path)
    (tmp_path / RESULT_NAME).write_text("{}")
    with pytest.raises(PaceridError, match="export again"):
        read_export(tmp_path)


def test_find_checkpoint_prefers_best_then_latest(tmp_path):
    with pytest.raises(UsageError, match="download the run's results first"):
        find_checkpoint(tmp_path)
    (tmp_path / "checkpoint_latest.pt").write_bytes(b"x")
    (tmp_path / "model_final.pt").write_bytes(b"x")
    assert find_checkpoint(tmp_path).name == "checkpoint_latest.pt"
    (tmp_path / "checkpoint_best.pt").write_bytes(b"x")
    assert find_checkpoint(tmp_path).name == "checkpoint_best.pt"


def test_the_controller_side_never_imports_torch_or_coremltools():
    code = (
        "import sys, pacerid_tui.core.export, pacerid_tui.core.ios; "
        "print(sorted({'torch', 'torchvision', 'coremltools'} & set(sys.modules)))"
    )
    assert run_python("-c", code).stdout.strip() == "[]"
