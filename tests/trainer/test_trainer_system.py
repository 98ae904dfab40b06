"""The host sampler (output/system.jsonl) and the step events' data-wait share, on real torch.

GPU rows come from the stand-in `nvidia-smi` of tests/nvidia_smi.py, shaped from NVIDIA's
documentation of the tool (nvidia-smi(1)).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pacerid_tui.core.kernel.host_records import SystemSample
from pacerid_tui.core.kernel.models import MetricEvent
from pacerid_tui.core.supervise.host_health import assess
from tests import nvidia_smi
from tests.trainer.support import write_config
from trainer import distributed
from trainer.config import load_config
from trainer.data import Split
from trainer.engine import build_engine
from trainer.interrupt import StopFlag
from trainer.metrics import Recorder
from trainer.position import Position
from trainer.run import train_epoch
from trainer.system import SystemSampler


def read_samples(output: Path) -> list[SystemSample]:
    lines = (output / "system.jsonl").read_text().splitlines()
    return [SystemSample.from_dict(json.loads(line)) for line in lines]


def wait_for_samples(output: Path, count: int) -> None:
    deadline = time.monotonic() + 60
    while not (output / "system.jsonl").exists() or len(read_samples(output)) < count:
        assert time.monotonic() < deadline, "the sampler wrote too few samples"
        time.sleep(0.05)


def test_samples_with_gpus_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = nvidia_smi.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    sampler = SystemSampler(tmp_path, interval_s=0.05).start()
    wait_for_samples(tmp_path, 3)
    sampler.stop()
    samples = read_samples(tmp_path)
    last = samples[-1]
    assert last.gpus is not None and [g.index for g in last.gpus] == [0, 1]
    assert (last.gpus[0].util_percent, last.gpus[0].memory_used_mb) == (38.0, 14562.0)
    assert last.gpus[1].power_w is None  # "[N/A]"
    assert last.cpu_percent is not None and 0 <= last.cpu_percent <= 100
    assert last.ram_used_gb and last.ram_total_gb and last.ram_used_gb < last.ram_total_gb
    assert last.disk_free_gb and last.disk_total_gb
    assert [s.time for s in samples] == sorted(s.time for s in samples)


def test_without_nvidia_smi_the_gpu_fields_are_null(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    sampler = SystemSampler(tmp_path, interval_s=0.05).start()
    wait_for_samples(tmp_path, 2)
    sampler.stop()
    raw = json.loads((tmp_path / "system.jsonl").read_text().splitlines()[-1])
    assert raw["gpus"] is None and raw["disk_free_gb"] > 0


class SlowImages:
    """A split's images read from a slow volume: each batch takes `delay_s` to arrive."""

    def __init__(self, images: np.ndarray, delay_s: float) -> None:
        self.images, self.delay_s = images, delay_s

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)
        return self.images[rows]

    def __len__(self) -> int:
        return len(self.images)


def step_events(tmp_path: Path, delay_s: float) -> list[MetricEvent]:
    config = load_config(write_config(tmp_path, epochs=1, arch="resnet18"))
    config = replace(config, data=replace(config.data, batch_size=4))
    images = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    labels = torch.arange(12) % 3  # 3 steps of 4: a step event after each
    split = Split(images, labels, [])
    if delay_s:
        split = Split(SlowImages(images, delay_s), labels, [])  # type: ignore[arg-type]
    context = distributed.start("cpu")
    engine = build_engine(config, 3, context, len(labels))
    output = tmp_path / f"out-{delay_s}"
    output.mkdir()
    recorder = Recorder(output, 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy machine's cores thrash several threads' tiny steps
    try:
        assert train_epoch(engine, split, Position(), StopFlag(), recorder)
    finally:
        torch.set_num_threads(threads)
        recorder.close()
    lines = (output / "metrics.jsonl").read_text().splitlines()
    return [MetricEvent.from_dict(json.loads(line)) for line in lines]


def test_a_slowed_loader_shows_as_waiting_for_data_and_the_input_pipeline_verdict(
    tmp_path: Path,
) -> None:
    # Slower than a step by far, even on a loaded machine (a step here takes well under 1 s).
    steps = step_events(tmp_path, delay_s=2.5)
    assert len(steps) >= 3 and all(s.event == "step" for s in steps)
    assert all(s.data_wait is not None and s.data_wait > 0.5 for s in steps)
    assert all(s.loss and s.lr is not None and s.images_per_s for s in steps)
    samples = [SystemSample(time=t, gpus=()) for t in range(3)]
    verdict = assess(samples, steps).verdict
    assert verdict is not None and "the input pipeline is the bottleneck" in verdict


def test_a_fast_loader_waits_little(tmp_path: Path) -> None:
    steps = step_events(tmp_path, delay_s=0)
    assert steps and all(s.data_wait is not None and s.data_wait < 0.5 for s in steps)
