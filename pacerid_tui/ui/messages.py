"""Messages the core's events become on their way into the dashboard (named in the past tense),
and `while_open`, the guard their handlers wear."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, TypeVar, cast

from textual.app import App
from textual.message import Message

from pacerid_tui.ui.widgets.runs_table import RunsTable

if TYPE_CHECKING:  # names for the fields only: the dashboard's first frame imports no core
    from pacerid_tui.core.kernel.host_records import SystemSample
    from pacerid_tui.core.kernel.models import MetricEvent, Notice, Run
    from pacerid_tui.core.remote.sync import Progress
    from pacerid_tui.core.steps.status import RunStatus

Handler = TypeVar("Handler", bound=Callable[..., None])


def while_open(handler: Handler) -> Handler:
    """Drop messages that arrive while the app is closing (its widgets are already gone).

    The core's callbacks keep posting until its workers are cancelled; without this, a late
    message during shutdown turns a clean exit into a NoMatches traceback.
    """

    @wraps(handler)
    def guarded(self: App[int], *args: object) -> None:
        if not self.screen_stack or not self.screen_stack[0].query(RunsTable):
            return
        handler(self, *args)

    return cast(Handler, guarded)


@dataclass
class Reported(Message):
    run_id: str
    text: str


@dataclass
class Alerted(Message):
    """Something about a run the user must notice (a budget warning or stop)."""

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
class SystemSampled(Message):
    run_id: str
    sample: SystemSample


@dataclass
class TransferProgressed(Message):
    run_id: str
    step: str
    progress: Progress


@dataclass
class RunEnded(Message):
    """The run's supervisor told its ending (once), or news while it goes on (its forecast
    passing the budget): the dashboard shows it."""

    run_id: str
    notice: Notice


@dataclass
class RunChanged(Message):
    run: Run


@dataclass
class StatusesRefreshed(Message):
    rows: list[RunStatus]
