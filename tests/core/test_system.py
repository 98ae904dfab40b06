"""The host verdict and warnings from samples as the trainer writes them (trainer/system.py),
GPU rows parsed from the stand-in nvidia-smi's CSV (tests/nvidia_smi.py, NVIDIA's format)."""

from __future__ import annotations

from pacerid_tui.core.kernel.host_records import SystemSample
from pacerid_tui.core.kernel.models import MetricEvent
from pacerid_tui.core.supervise.host_health import assess
from tests.nvidia_smi import BUSY_CSV, STARVED_CSV
from trainer.system import gpu_rows


def samples(csv: str, disk_free_gb: float = 60.0, count: int = 4) -> list[SystemSample]:
    raw = {"cpu_percent": 40.0, "disk_free_gb": disk_free_gb, "disk_total_gb": 100.0}
    return [
        SystemSample.from_dict({**raw, "time": float(n), "gpus": gpu_rows(csv)})
        for n in range(count)
    ]


def steps(wait: float, count: int = 4) -> list[MetricEvent]:
    return [MetricEvent("step", time=float(n), data_wait=wait) for n in range(count)]


def test_a_busy_gpu_is_the_bottleneck() -> None:
    found = assess(samples(BUSY_CSV), steps(0.03))
    assert found.verdict == "GPU-bound: 97 % busy, 3 % of each step waiting for data"
    assert found.advice is None
    assert found.warnings == []


def test_an_idle_gpu_waiting_for_data_blames_the_input_pipeline() -> None:
    found = assess(samples(STARVED_CSV), steps(0.55))
    assert found.verdict == (
        "GPU 39 % busy, 55 % of each step waiting for data: the input pipeline is the bottleneck"
    )
    assert found.advice is not None and "data.num_workers" in found.advice
    # GPU 0 of STARVED_CSV uses 14562 of 15360 MiB: 94.8 %, just under the warning
    assert found.warnings == []


def test_too_little_data_gives_no_verdict_yet() -> None:
    assert assess(samples(BUSY_CSV, count=2), steps(0.03)).verdict is None
    assert assess(samples(BUSY_CSV), steps(0.03, count=2)).verdict is None


def test_a_nearly_full_disk_and_gpu_memory_are_warned_about() -> None:
    full = "0, 99, 15200, 15360, 80, 70.00\n"
    found = assess(samples(full, disk_free_gb=1.5), [])
    assert found.verdict is None
    assert found.warnings == [
        "Disk nearly full: 1.5 of 100 GB free on the run's volume.",
        "GPU 0 memory near its limit: 14.8 of 15.0 GiB used.",
    ]
