"""The selected run's host at work: GPU utilisation and memory sparklines, CPU, RAM, disk, and
the verdict of `core.system.assess` (is the input pipeline starving the GPU?) with its warnings.

One Static painted as text: sparklines of block characters cost one line each and a single
update, where a Sparkline widget per GPU would be a layout per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:  # samples come once the core is up, after the dashboard's first frame
    from pacerid_tui.core.kernel.host_records import SystemSample
    from pacerid_tui.core.kernel.models import MetricEvent

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24
"""Samples per sparkline: two minutes at the default 5 s."""


def spark(values: Sequence[float | None], top: float) -> str:
    """Block characters for `values` on 0…top (unknown values as a space)."""
    cells = []
    for value in list(values)[-SPARK_WIDTH:]:
        if value is None or top <= 0:
            cells.append(" ")
        else:
            cells.append(BARS[min(len(BARS) - 1, int(value / top * len(BARS)))])
    return "".join(cells).ljust(SPARK_WIDTH)


def host_text(samples: Sequence[SystemSample], steps: Sequence[MetricEvent]) -> Text:
    if not samples:
        return Text("Host: no samples yet (they come while training runs).", style="dim")
    last = samples[-1]
    text = Text()
    from pacerid_tui.core.supervise.host_health import assess

    assessment = assess(samples, steps)  # first: on a short terminal it is what stays
    if assessment.verdict:
        text.append(assessment.verdict + "\n", style="bold")
        if assessment.advice:
            text.append(f"→ {assessment.advice}\n", style="dim")
    else:
        text.append("Verdict: waiting for a few more samples and steps.\n", style="dim")
    for warning in assessment.warnings:
        text.append(f"⚠ {warning}\n", style="bold yellow")
    if last.gpus:
        for gpu in last.gpus:
            history = [
                next((g for g in s.gpus or () if g.index == gpu.index), None) for s in samples
            ]
            util = [g.util_percent if g else None for g in history]
            memory = [g.memory_used_mb if g else None for g in history]
            total = gpu.memory_total_mb or 0.0
            text.append(f"GPU{gpu.index} ", style="bold")
            text.append(spark(util, 100.0), style="green")
            text.append(f" {_value(gpu.util_percent, '%'):>5}  mem ")
            text.append(spark(memory, total), style="magenta")
            text.append(
                f" {_gib(gpu.memory_used_mb)}/{_gib(gpu.memory_total_mb)} GiB"
                f"  {_value(gpu.temperature_c, '°C')}  {_value(gpu.power_w, 'W')}\n"
            )
    else:
        text.append("GPU  none on this host (CPU training)\n", style="dim")
    text.append("CPU ", style="bold")
    text.append(spark([s.cpu_percent for s in samples], 100.0), style="cyan")
    text.append(f" {_value(last.cpu_percent, '%'):>5}  RAM {_num(last.ram_used_gb)}/")
    text.append(f"{_num(last.ram_total_gb)} GiB  disk {_num(last.disk_free_gb)} GB free")
    return text


def _value(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.0f} {unit}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _gib(mb: float | None) -> str:
    return "—" if mb is None else f"{mb / 1024:.1f}"


class HostPanel(Static):
    shown: Text | None = None
    """What is on screen: unchanged, nothing is redrawn."""

    def show(self, samples: Sequence[SystemSample], steps: Sequence[MetricEvent]) -> None:
        text = host_text(samples, steps)
        if self.shown is not None and text.plain == self.shown.plain:
            return
        self.shown = text
        self.update(text)
