"""Stopping and resuming: a SIGTERM or a spot notice mid-run ends the step, writes a checkpoint
and exits 75; `--resume auto` then finishes with exactly the weights of an uninterrupted run;
an unreadable latest checkpoint falls back to the newest good epoch checkpoint, or the best."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
import yaml

from tests.metadata_standin import MetadataService
from tests.trainer.support import events, run_trainer, start_trainer, wait_for, write_config
from trainer.errors import EXIT_INTERRUPTED


def final_state(output: Path) -> dict[str, torch.Tensor]:
    state = torch.load(output / "model_final.pt", map_location="cpu", weights_only=True)
    return state["model_state"]  # type: ignore[no-any-return]


def epoch_metrics(output: Path) -> list[tuple[int, float, float, float]]:
    return [
        (e["epoch"], e["train_loss"], e["val_loss"], e["val_acc"]) for e in events(output, "epoch")
    ]


def test_a_stopped_and_resumed_run_ends_with_the_same_weights(tmp_path: Path) -> None:
    """4 epochs straight vs SIGTERM after epoch 2 (so mid-epoch 3) and a resume for the rest."""
    config = write_config(tmp_path, epochs=4)
    data = tmp_path / "data"
    straight = run_trainer("train", "--config", config, "--data", data, "--output", tmp_path / "a")
    assert straight.returncode == 0, straight.stderr

    output = tmp_path / "b"
    process = start_trainer("train", "--config", config, "--data", data, "--output", output)
    wait_for(lambda: len(events(output, "epoch")) >= 2, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    (stop,) = events(output, "interrupted")
    assert "SIGTERM" in stop["message"] and stop["epoch"] >= 2
    assert json.loads((output / "status.json").read_text())["phase"] == "interrupted"
    assert not (output / "model_final.pt").exists()

    resumed = run_trainer("train", "--config", config, "--data", data, "--output", output)
    assert resumed.returncode == 0, resumed.stderr
    assert events(output, "start")[-1]["epoch"] == stop["epoch"]
    a, b = final_state(tmp_path / "a"), final_state(output)
    for name, value in a.items():
        assert torch.allclose(value.double(), b[name].double(), rtol=0, atol=1e-6), name
    for one, other in zip(epoch_metrics(tmp_path / "a"), epoch_metrics(output), strict=True):
        assert one == pytest.approx(other, abs=1e-6)


@pytest.mark.parametrize("every_epoch", [True, False], ids=["epoch-files", "best"])
def test_an_unreadable_latest_checkpoint_falls_back_to_an_older_one(
    tmp_path: Path, every_epoch: bool
) -> None:
    """To the newest epoch checkpoint where they are kept, else to checkpoint_best.pt."""
    config = write_config(tmp_path, epochs=2)
    raw = yaml.safe_load(config.read_text())
    raw["training"]["save_every_epoch_checkpoints"] = every_epoch
    config.write_text(yaml.safe_dump(raw))
    data, output = tmp_path / "data", tmp_path / "output"
    first = run_trainer("train", "--config", config, "--data", data)
    assert first.returncode == 0, first.stderr
    assert (output / "checkpoint_epoch_002.pt").exists() == every_epoch
    latest = output / "checkpoint_latest.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # a copy cut short

    again = run_trainer("train", "--config", config, "--data", data, "--epochs", "3")
    assert again.returncode == 0, again.stderr
    log = (output / "train.log").read_text()
    assert "checkpoint_latest.pt is unreadable" in log
    taken, epoch = ("checkpoint_epoch_002.pt", 2)
    if not every_epoch:
        taken, epoch = ("checkpoint_best.pt", events(output, "done")[0]["best_epoch"])
    assert f"Resuming from {taken} instead of checkpoint_latest.pt" in log
    assert events(output, "start")[-1]["epoch"] == epoch
    assert [e["epoch"] for e in events(output, "epoch")] == [1, 2, *range(epoch + 1, 4)]


def test_a_spot_notice_mid_run_checkpoints_and_a_resume_finishes(
    tmp_path: Path, metadata_service: MetadataService
) -> None:
    config = write_config(tmp_path, epochs=40)
    data, output = tmp_path / "data", tmp_path / "output"
    imds = {"PACERID_IMDS_URL": metadata_service.url, "PACERID_IMDS_POLL_SECONDS": "0.1"}
    process = start_trainer("train", "--config", config, "--data", data, **imds)
    wait_for(lambda: len(events(output, "epoch")) >= 1, process)
    metadata_service.marked.set()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    (stop,) = events(output, "interrupted")
    assert "spot interruption notice" in stop["message"] and '"terminate"' in stop["message"]
    assert metadata_service.tokenless_requests == 0
    assert stop["epoch"] < 40

    resumed = run_trainer(
        "train", "--config", config, "--data", data, "--epochs", str(stop["epoch"] + 1)
    )
    assert resumed.returncode == 0, resumed.stderr
    assert events(output, "done")[-1]["epoch"] == stop["epoch"] + 1
