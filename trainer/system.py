"""Host samples for output/system.jsonl: CPU, RAM, disk free of the run's volume, and each GPU.

The controller streams this file like the log and tells the user whether the GPU is busy or
starved. Sampling runs in a daemon thread of the trainer's primary process, standard library
only (the host may have nothing else to ask): /proc for CPU and memory, `shutil.disk_usage` for
the volume, and `nvidia-smi --query-gpu` for the GPUs when the image has it (GPU fields are null
otherwise, as on the local provider). One sample costs a few /proc reads and, with GPUs, one
short-lived nvidia-smi process every few seconds: nothing a training step can feel. The first
sample also says which device trains and in what precision (`device`: name, compute
capability, dtype), so every figure read from the file names its GPU.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

GPU_QUERY = "index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"
GPU_FIELDS = (
    "index",
    "util_percent",
    "memory_used_mb",
    "memory_total_mb",
    "temperature_c",
    "power_w",
)
NVIDIA_SMI_TIMEOUT_S = 5.0
"""nvidia-smi answers in well under a second; a hung driver must not hang the sampler."""
GIB = 1024**3


def gpu_rows(csv_text: str) -> list[dict[str, float | None]]:
    """nvidia-smi's `--format=csv,noheader,nounits` lines as dicts; "[N/A]" and the like → None."""
    rows = []
    for line in csv_text.strip().splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(GPU_FIELDS):
            continue
        rows.append({name: _number(cell) for name, cell in zip(GPU_FIELDS, cells, strict=True)})
    return rows


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]": the field exists but this GPU has no value


def query_gpus(nvidia_smi: str | None) -> list[dict[str, float | None]] | None:
    if nvidia_smi is None:
        return None
    try:
        done = subprocess.run(
            [nvidia_smi, f"--query-gpu={GPU_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return gpu_rows(done.stdout) if done.returncode == 0 else None


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def memory_gib() -> tuple[float, float] | tuple[None, None]:
    """(used, total) GiB from /proc/meminfo: used = total - available, as `free` counts it."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            kib = {line.split(":")[0]: int(line.split()[1]) for line in meminfo if ":" in line}
        total, available = kib["MemTotal"], kib["MemAvailable"]
    except (OSError, ValueError, KeyError, IndexError):
        return None, None
    return round((total - available) * 1024 / GIB, 2), round(total * 1024 / GIB, 2)


class SystemSampler:
    """Appends one sample to `output_dir`/system.jsonl now and every `interval_s` until stop();
    the first one carries `device` (trainer/precision.py's record) when given."""

    def __init__(
        self, output_dir: Path, interval_s: float, device: dict[str, Any] | None = None
    ) -> None:
        self.output_dir = output_dir
        self.interval_s = interval_s
        self.device = device
        self.nvidia_smi = shutil.which("nvidia-smi")
        self.stopped = threading.Event()
        self.previous = cpu_times()
        self.stream: TextIO = open(output_dir / "system.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.thread = threading.Thread(target=self._loop, name="system-sampler", daemon=True)

    def start(self) -> SystemSampler:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=NVIDIA_SMI_TIMEOUT_S + 1)
        self.stream.close()

    def _loop(self) -> None:
        while True:
            sample = self.sample()
            if self.device is not None:
                sample["device"], self.device = self.device, None
            try:
                self.stream.write(json.dumps(sample) + "\n")
                self.stream.flush()
            except (OSError, ValueError) as err:  # a full disk must not end training
                log.warning("System sample not written (%s).", err)
            if self.stopped.wait(self.interval_s):
                return

    def sample(self) -> dict[str, Any]:
        now = cpu_times()
        cpu = None
        if now is not None and self.previous is not None and now[1] > self.previous[1]:
            cpu = round(100 * (now[0] - self.previous[0]) / (now[1] - self.previous[1]), 1)
        self.previous = now
        used, total = memory_gib()
        disk = shutil.disk_usage(self.output_dir)
        return {
            "time": round(time.time(), 3),
            "cpu_percent": cpu,
            "cpus": os.cpu_count(),
            "ram_used_gb": used,
            "ram_total_gb": total,
            "disk_free_gb": round(disk.free / GIB, 2),
            "disk_total_gb": round(disk.total / GIB, 2),
            "gpus": query_gpus(self.nvidia_smi),
        }
