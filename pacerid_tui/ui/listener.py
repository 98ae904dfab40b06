"""Turns the lifecycle's callbacks into Textual messages (post_message is thread-safe)."""

from __future__ import annotations

from typing import Any

from textual.app import App

from pacerid_tui.core.kernel.host_records import SystemSample
from pacerid_tui.core.kernel.models import MetricEvent, Notice, Run
from pacerid_tui.core.remote.sync import Progress
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.ui import messages


class AppListener(Listener):
    def __init__(self, app: App[Any]) -> None:
        self.app = app

    def report(self, run_id: str, message: str) -> None:
        self.app.post_message(messages.Reported(run_id, message))

    def alert(self, run_id: str, message: str) -> None:
        self.app.post_message(messages.Alerted(run_id, message))

    def lines(self, run_id: str, source: str, lines: list[str]) -> None:
        self.app.post_message(messages.LinesReceived(run_id, source, lines))

    def metric(self, run_id: str, event: MetricEvent) -> None:
        self.app.post_message(messages.MetricReceived(run_id, event))

    def system(self, run_id: str, sample: SystemSample) -> None:
        self.app.post_message(messages.SystemSampled(run_id, sample))

    def progress(self, run_id: str, step: str, progress: Progress) -> None:
        self.app.post_message(messages.TransferProgressed(run_id, step, progress))

    def run_changed(self, run: Run) -> None:
        self.app.post_message(messages.RunChanged(run))

    def ended(self, run_id: str, notice: Notice) -> None:
        self.app.post_message(messages.RunEnded(run_id, notice))

    def noticed(self, run_id: str, notice: Notice) -> None:
        self.app.post_message(messages.RunEnded(run_id, notice))  # shown and sent alike
