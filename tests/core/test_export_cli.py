"""The controller side of export, end to end: the real trainer trains one epoch on CPU, the real
`python -m trainer export` child converts it, its progress lines and JSON result come back as
an ExportResult, failures as one-sentence errors; then the package is synced into an iOS
models folder, manifest and all."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pacerid_tui.core.kernel.errors import PaceridError, UsageError
from pacerid_tui.core.results.coreml_export import (
    RESULT_NAME,
    TRAINER_ROOT,
    export_model,
    find_checkpoint,
    read_export,
)
from pacerid_tui.core.results.ios_sync import package_sha256, read_manifest, sync_model

pytestmark = pytest.mark.xdist_group("export-cli")
"""One worker runs this module: its module-scoped fixture trains once, not once per worker."""

TINY_RUN = """
data: {source: synthetic, image_size: 32, batch_size: 8, num_workers: 0,
       synthetic: {classes: 3, train_per_class: 8, test_per_class: 2, seed: 0}}
model: {name: resnet18, pretrained: false}
training: {epochs: 1, seed: 0, device: cpu, amp_dtype: off, channels_last: false}
"""


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(TRAINER_ROOT))
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """One epoch of the real trainer, on CPU, on tiny synthetic X-rays."""
    root = tmp_path_factory.mktemp("run")
    (root / "tiny.yaml").write_text(TINY_RUN)
    for command in ("synthetic", "train"):
        run_python(
            *("-m", "trainer", command, "--config", str(root / "tiny.yaml")),
            *("--data", str(root / "data"), "--output", str(root / "output")),
        )
    return root / "output" / "checkpoint_best.pt"


async def test_export_in_a_child_then_sync_into_the_ios_app(checkpoint, tmp_path):
    progress: list[str] = []
    out = tmp_path / "coreml"
    result = await export_model(checkpoint, out, version="v0.1.0", report=progress.append)

    trained = torch.load(checkpoint, weights_only=True)
    labels = tuple(trained["class_names"])
    assert result.package == out / "PacerIDClassifier.mlpackage" and result.package.is_dir()
    assert result.labels == labels and result.image_size == 32 and result.arch == "resnet18"
    assert result.version == "v0.1.0" and result.epoch == 1
    assert result.metrics["val_acc"] == trained["metrics"]["val_acc"]
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
    assert manifest.labels == labels and manifest.source_run == "local-0001"


async def test_unusable_checkpoint_is_a_usage_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "checkpoint_best.pt"
    bad.write_bytes(b"half a checkpoint")
    progress: list[str] = []
    with pytest.raises(UsageError, match="is not a readable PyTorch checkpoint") as err:
        await export_model(bad, tmp_path / "out", report=progress.append)
    assert err.value.exit_code == 2
    assert str(bad) in str(err.value) and len(progress) == 1
    assert not (tmp_path / "out").exists()


def exporters() -> list[int]:
    """Pids of this process's `trainer export` children (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"trainer\x00export" in cmdline:
            found.append(int(stat.parent.name))
    return found


async def test_cancelling_kills_the_child_and_publishes_nothing(checkpoint, tmp_path):
    started = asyncio.Event()
    task = asyncio.create_task(
        export_model(checkpoint, tmp_path / "out", report=lambda _line: started.set())
    )
    await asyncio.wait_for(started.wait(), timeout=120)
    [child] = exporters()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not Path(f"/proc/{child}").exists()  # killed and reaped, not waited for
    assert not (tmp_path / "out" / "PacerIDClassifier.mlpackage").exists()
    assert not (tmp_path / "out" / RESULT_NAME).exists()


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


def test_find_checkpoint_takes_the_half_precision_best_only_when_it_is_newer(tmp_path):
    """During training only model_best_fp16.pt comes: newer than a full best from an earlier
    save, it wins; written in the same second (the trainer writes it first), the full one."""
    half, best = tmp_path / "model_best_fp16.pt", tmp_path / "checkpoint_best.pt"
    half.write_bytes(b"x")
    assert find_checkpoint(tmp_path) == half  # mid-run, nothing full downloaded yet
    best.write_bytes(b"x")
    os.utime(half, (1_000, 1_000))
    os.utime(best, (1_000.9, 1_000.9))
    assert find_checkpoint(tmp_path) == best  # the same epoch's pair
    os.utime(half, (2_000, 2_000))
    assert find_checkpoint(tmp_path) == half  # training went on after the last full save


def test_the_controller_side_never_imports_torch_or_coremltools():
    code = (
        "import sys, pacerid_tui.core.results.coreml_export, pacerid_tui.core.results.ios_sync; "
        "print(sorted({'torch', 'torchvision', 'coremltools'} & set(sys.modules)))"
    )
    assert run_python("-c", code).stdout.strip() == "[]"
