"""Running the real trainer in a child process, as the controller does, and reading its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

TINY_CONFIG = """\
name: tiny
instance:
  provider: local
data:
  source: synthetic
  image_size: 32
  batch_size: 8
  num_workers: 0
  synthetic: {{classes: 3, train_per_class: 16, test_per_class: 6, seed: 0}}
model:
  name: {arch}
  pretrained: false
training:
  epochs: {epochs}
  learning_rate: 0.002
  warmup_epochs: 1
  label_smoothing: 0.1
  seed: 0
  device: cpu
"""


def write_config(folder: Path, epochs: int = 4, arch: str = "mobilenet_v3_large") -> Path:
    """The tiny run: mobilenet_v3_large is the lightest of our models (small checkpoints) and
    has dropout, so resume tests cover the RNG too."""
    path = folder / "tiny.yaml"
    path.write_text(TINY_CONFIG.format(epochs=epochs, arch=arch))
    return path


def trainer_env(**extra: str) -> dict[str, str]:
    """The child's environment: our code importable, no metadata probes, no proxies."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        PACERID_IMDS_URL="off",
        NO_PROXY="localhost,127.0.0.1",
        no_proxy="localhost,127.0.0.1",
    )
    env.update(extra)
    return env


def trainer_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "trainer", *map(str, args)]


def run_trainer(
    *args: str | Path, timeout: float = 180, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        trainer_command(*args),
        cwd=REPO,
        env=trainer_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_trainer(*args: str | Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        trainer_command(*args),
        cwd=REPO,
        env=trainer_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def events(output: Path, kind: str | None = None) -> list[dict[str, Any]]:
    path = output / "metrics.jsonl"
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return [e for e in found if kind is None or e["event"] == kind]


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the trainer ended first: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the trainer")
        time.sleep(0.02)
