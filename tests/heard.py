"""A listener that keeps what the core said of a run: its reports, its alerts, its endings."""

from __future__ import annotations

from pacerid_tui.core.kernel.models import Notice
from pacerid_tui.core.steps.run_listener import Listener


class Heard(Listener):
    def __init__(self) -> None:
        self.reports: list[str] = []
        self.alerts: list[str] = []
        self.endings: list[Notice] = []

    def report(self, run_id: str, message: str) -> None:
        self.reports.append(message)

    def alert(self, run_id: str, message: str) -> None:
        self.alerts.append(message)

    def ended(self, run_id: str, notice: Notice) -> None:
        self.endings.append(notice)
