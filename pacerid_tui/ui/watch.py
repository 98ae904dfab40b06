"""Watching training as it runs: the host's samples and the step curve of the selected run.

The host samples stream in from output/system.jsonl (`messages.SystemSampled`); this keeps the
latest ones per run and draws the host panel and the loss chart with the run's step events.
Kept apart from the app (`ui/app.py`) so each file stays readable.
"""

from __future__ import annotations

from collections import deque

from textual import on

from pacerid_tui.core.system import SystemSample
from pacerid_tui.ui import messages
from pacerid_tui.ui.actions import RunActions
from pacerid_tui.ui.messages import while_open
from pacerid_tui.ui.training import Training
from pacerid_tui.ui.widgets.host_panel import SPARK_WIDTH, HostPanel
from pacerid_tui.ui.widgets.loss_chart import LossChart

SAMPLES_KEPT = SPARK_WIDTH
"""Host samples kept per run: what the sparklines show (the verdict needs fewer)."""


class Watching(RunActions):
    training: dict[str, Training]
    host_samples: dict[str, deque[SystemSample]]

    def draw_soon(self, *, details: bool = False) -> None:
        raise NotImplementedError

    @on(messages.SystemSampled)
    @while_open
    def system_sampled(self, message: messages.SystemSampled) -> None:
        kept = self.host_samples.setdefault(message.run_id, deque(maxlen=SAMPLES_KEPT))
        kept.append(message.sample)
        if message.run_id == self.table.selected_run_id:
            self.draw_soon(details=True)

    def show_watch(self, run_id: str) -> None:
        """The host panel and the loss chart of run `run_id` ("" when none is selected)."""
        training = self.training.get(run_id)
        steps = list(training.steps) if training else []
        samples = list(self.host_samples.get(run_id, ()))
        self.dashboard.query_one(HostPanel).show(samples, steps)
        self.dashboard.query_one(LossChart).show(
            training.history() if training else [],
            steps,
            training.eta_seconds() if training and self._training_live(run_id) else None,
        )

    def _training_live(self, run_id: str) -> bool:
        row = self.rows.get(run_id)
        training = self.training.get(run_id)
        return row is not None and row.state == "running" and not (training and training.ended)

    def action_log_scale(self) -> None:
        self.dashboard.query_one(LossChart).toggle_log_scale()
