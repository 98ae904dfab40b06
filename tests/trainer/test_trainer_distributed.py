"""torchrun with two CPU processes (gloo): one run, one metrics stream, a checkpoint that loads
in a single process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from tests.trainer.support import REPO, events, trainer_env, write_config
from trainer.model import build_model


def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    config = write_config(tmp_path, epochs=2)
    output = tmp_path / "output"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "trainer",
        "train",
        "--config",
        str(config),
        "--data",
        str(tmp_path / "data"),
    ]
    env = trainer_env(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]

    (start,) = events(output, "start")
    assert start["world_size"] == 2
    assert start["steps"] == 2  # 42 images (2 a class held out), 21 per process, batches of 8
    assert [e["epoch"] for e in events(output, "epoch")] == [1, 2]
    assert len(events(output, "done")) == 1
    assert (output / "train.log").read_text().count("Epoch 2/2") == 1
    report = json.loads((output / "report.json").read_text())
    assert report["images"] == 18  # every test image counted once across both processes

    state = torch.load(output / "model_final.pt", map_location="cpu", weights_only=True)
    model = build_model(state["arch"], state["num_classes"])
    model.load_state_dict(state["model_state"])
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
