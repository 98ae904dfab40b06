"""Watching training as an ML engineer does: the selected run's host and step curve, and the
views that look back (every run side by side on `h`, what a model got wrong on `w`).

The host samples stream in from output/system.jsonl (`messages.SystemSampled`); this keeps the
latest ones per run and draws the host panel and the loss chart with the run's step events.
The views read the registry and the downloaded results in workers. Kept apart from the app
(`ui/app.py`) so each file stays readable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual import on, work

from pacerid_tui.config import Config
from pacerid_tui.core.kernel import host_records
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import MetricEvent, Run
from pacerid_tui.core.results import history, mistakes
from pacerid_tui.ui import messages
from pacerid_tui.ui.actions import RunActions
from pacerid_tui.ui.messages import while_open
from pacerid_tui.ui.run_view import RunView
from pacerid_tui.ui.screens.history_screen import HistoryScreen
from pacerid_tui.ui.screens.mistakes_screen import MistakesScreen
from pacerid_tui.ui.widgets.host_panel import HostPanel
from pacerid_tui.ui.widgets.loss_chart import LossChart


class Watching(RunActions):
    clock: Callable[[], float]

    def draw_soon(self, *, details: bool = False) -> None:
        raise NotImplementedError

    @on(messages.SystemSampled)
    @while_open
    def system_sampled(self, message: messages.SystemSampled) -> None:
        self.view(message.run_id).samples.append(message.sample)
        if message.run_id == self.table.selected_run_id:
            self.draw_soon(details=True)

    def show_watch(self, run_id: str) -> None:
        """The host panel and the loss chart of run `run_id` ("" when none is selected)."""
        view = self.views.get(run_id) or RunView()
        training = view.training
        steps = list(training.steps) if training else []
        samples = list(view.samples)
        self.dashboard.query_one(HostPanel).show(samples, steps)
        self.dashboard.query_one(LossChart).show(
            training.history() if training else [],
            steps,
            training.eta_seconds() if training and self._training_live(run_id) else None,
        )

    def _training_live(self, run_id: str) -> bool:
        row = self.rows.get(run_id)
        training = self.view(run_id).training
        return row is not None and row.state == "running" and not (training and training.ended)

    def action_log_scale(self) -> None:
        self.dashboard.query_one(LossChart).toggle_log_scale()

    def action_mistakes(self) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected; pick a finished, downloaded run.", severity="warning")
            return
        self.load_mistakes(run)

    @work(group="mistakes", exclusive=True, exit_on_error=False)
    async def load_mistakes(self, run: Run) -> None:
        path = self.lifecycle.results_dir(run) / "report.json"
        try:
            found = await asyncio.to_thread(mistakes.read_report, path)
        except PaceridError as err:
            self.notify(str(err), title="Mistakes", severity="warning", timeout=10)
            return
        await self.push_screen(MistakesScreen(run.run_id, mistakes.lines(found)))

    def action_history(self) -> None:
        self.load_history()

    @work(group="history", exclusive=True, exit_on_error=False)
    async def load_history(self) -> None:
        rows = await history.history(self.lifecycle, self.clock())
        runs = {run.run_id: run for run in self.lifecycle.registry.runs()}

        def read() -> tuple[dict[str, list[MetricEvent]], dict[str, Config]]:
            curves, configs = {}, {}
            for run_id, run in runs.items():
                config = history.config_of(self.lifecycle, run)
                if config is not None:
                    configs[run_id] = config
                    curves[run_id] = host_records.epoch_curve(
                        self.lifecycle.results_dir(run) / "metrics.jsonl"
                    )
                streamed = self.views[run_id].training if run_id in self.views else None
                if streamed is not None and streamed.epochs:
                    curves[run_id] = streamed.history()  # streamed: the newest
            return curves, configs

        curves, configs = await asyncio.to_thread(read)
        await self.push_screen(HistoryScreen(rows, curves, configs))
