"""Messages the core's events become on their way into the dashboard (named in the past tense)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from pacerid_tui.core.models import MetricEvent, Run
from pacerid_tui.core.status import RunStatus
from pacerid_tui.core.sync import Progress


@dataclass
class Reported(Message):
    run_id: str
    text: str


@dataclass
class LinesReceived(Message):
    run_id: str
    source: str
    lines: list[str]


@dataclass
class MetricReceived(Message):
    run_id: str
    event: MetricEvent


@dataclass
class TransferProgressed(Message):
    run_id: str
    step: str
    progress: Progress


@dataclass
class RunChanged(Message):
    run: Run


@dataclass
class StatusesRefreshed(Message):
    rows: list[RunStatus]
