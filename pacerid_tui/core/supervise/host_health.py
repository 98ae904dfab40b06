"""The host's samples (output/system.jsonl) and what they say: is the GPU busy, or starved?

The trainer writes a sample every few seconds (trainer/system.py) and a `data_wait` share with
each step event: the part of the interval's wall time spent waiting for the next batch. Put
together they answer what someone watching a GPU run wants to know (the input pipeline is the
bottleneck, or the GPU is), and warn before a full disk or GPU memory ends the run. Pure: the
dashboard passes in what streamed, this says what to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pacerid_tui.core.kernel.host_records import SystemSample
from pacerid_tui.core.kernel.models import MetricEvent

ENOUGH_SAMPLES = 3
"""A verdict needs this many host samples and as many step events: one alone may be warm-up."""
RECENT = 10
"""The verdict looks at the latest this many samples and step events (the run as it is now)."""
STARVED_SHARE = 0.5
"""Waiting for data more than half of each step: the input pipeline is the bottleneck."""
STARVED_FIX = "Fix: raise data.num_workers, or keep the image cache on local disk"
"""What helps a starved GPU, a line of its own under the verdict; the host's stall watch names
the same fix in a stall's reason (trainer/stall.py)."""
BUSY_PERCENT = 80.0
"""A GPU this busy on average is the bottleneck (the usual reading of nvidia-smi's util)."""
DISK_FREE_WARNING = 0.05
"""Less than this share of the run's volume free: checkpoints may soon fail to save."""
DISK_FREE_WARNING_GB = 2.0
"""…or less than this much, whatever the volume's size (a checkpoint is a few hundred MB)."""
GPU_MEMORY_WARNING = 0.95
"""GPU memory this full: the next larger batch or image size runs out of memory."""


@dataclass(frozen=True)
class Assessment:
    verdict: str | None
    """One line once there is enough data: where the run's time goes."""
    warnings: list[str] = field(default_factory=list)
    advice: str | None = None
    """What to change, when the verdict has a known fix (a starved GPU: STARVED_FIX)."""


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def gpu_util(sample: SystemSample) -> float | None:
    """The mean utilisation over the host's GPUs (None without GPUs)."""
    return _mean([g.util_percent for g in sample.gpus or ()])


def assess(samples: Sequence[SystemSample], steps: Sequence[MetricEvent]) -> Assessment:
    """The verdict on the latest samples and step events, and any warning the latest sample
    calls for."""
    warnings = _warnings(samples[-1]) if samples else []
    recent = list(samples[-RECENT:])
    waits = [s.data_wait for s in steps[-RECENT:] if s.data_wait is not None]
    if len(recent) < ENOUGH_SAMPLES or len(waits) < ENOUGH_SAMPLES:
        return Assessment(None, warnings)
    wait = sum(waits) / len(waits)
    util = _mean([gpu_util(s) for s in recent])
    waiting = f"{wait:.0%} of each step waiting for data".replace("%", " %")
    busy = "No GPU" if util is None else f"GPU {util:.0f} % busy"
    if wait > STARVED_SHARE:
        verdict = f"{busy}, {waiting}: the input pipeline is the bottleneck"
        return Assessment(verdict, warnings, STARVED_FIX)
    elif util is not None and util >= BUSY_PERCENT:
        verdict = f"GPU-bound: {busy.removeprefix('GPU ')}, {waiting}"
    elif util is None:
        verdict = f"No GPU: training on the CPU, {waiting}"
    else:
        verdict = f"{busy}, {waiting}: neither saturated (larger batches may help)"
    return Assessment(verdict, warnings)


def _warnings(sample: SystemSample) -> list[str]:
    warnings = []
    free, total = sample.disk_free_gb, sample.disk_total_gb
    low = (
        free is not None
        and total
        and (free < DISK_FREE_WARNING_GB or free / total < DISK_FREE_WARNING)
    )
    if low:
        warnings.append(f"Disk nearly full: {free:.1f} of {total:.0f} GB free on the run's volume.")
    for gpu in sample.gpus or ():
        used, total_mb = gpu.memory_used_mb, gpu.memory_total_mb
        if used is not None and total_mb and used / total_mb >= GPU_MEMORY_WARNING:
            warnings.append(
                f"GPU {gpu.index} memory near its limit: {used / 1024:.1f} of "
                f"{total_mb / 1024:.1f} GiB used."
            )
    return warnings
