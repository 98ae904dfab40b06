"""Messages the core's events become on their way into the dashboard (named in the past tense)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from pacerid_tui.core.models import MetricEvent, Run
from pacerid_tui.core.status import RunStatus
from pacerid_tui.core.sync import Progress
from pacerid_tui.ui.market import Market
from pacerid_tui.ui.training import Training


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


@dataclass
class MarketFetched(Message):
    run_id: str
    market: Market


@dataclass
class TrainingLoaded(Message):
    """A run's curve read back from its downloaded metrics.jsonl."""

    run_id: str
    training: Training
