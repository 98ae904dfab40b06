"""The selected run's panels: its details, market and loss curve, and what fills them.

`show_selected` draws the run the table points at; on the way it asks (in workers, at most once
per `MARKET_TTL_S`) for the run's market, and for the curve of a run trained before this
dashboard started (read back from its downloaded metrics). Kept apart from the app (`ui/app.py`)
so each file stays readable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual import on, work

from pacerid_tui.config import Config
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.steps import cost
from pacerid_tui.ui import messages
from pacerid_tui.ui.market import MARKET_TTL_S, Market, fetch_market
from pacerid_tui.ui.messages import while_open
from pacerid_tui.ui.run_view import RunView
from pacerid_tui.ui.training import Training, read_metrics
from pacerid_tui.ui.training_watch import Watching
from pacerid_tui.ui.widgets.market_panel import MarketPanel
from pacerid_tui.ui.widgets.run_details import RunDetails


class SelectedRun(Watching):
    clock: Callable[[], float]

    def config_for(self, run: Run) -> Config | None:
        """The run's config, read once (None when the file is gone or broken)."""
        view = self.view(run.run_id)
        if view.config is None:
            try:
                view.config = self.lifecycle.config_of(run)
            except PaceridError:
                return None
        return view.config

    def show_selected(self) -> None:
        run = self.selected_run()
        run_id = run.run_id if run else ""
        view = self.view(run_id) if run else RunView()
        config = self.config_for(run) if run else None
        training, market = view.training, view.market
        self.dashboard.query_one(RunDetails).show(
            run,
            self.rows.get(run_id),
            training=training,
            max_price=config.instance.max_price if config else None,
            projected_usd=self.projected(run, market, training),
            warning=market.ssh_warning if market else None,
            activity=view.activity,
        )
        self.dashboard.query_one(MarketPanel).show(run, market)
        self.show_watch(run_id)
        if run is not None:
            self.ask_market(run)
            self.ask_results(run)

    def projected(
        self, run: Run | None, market: Market | None, training: Training | None
    ) -> float | None:
        """Cost when the last epoch ends, at today's price; None unless training is measurable."""
        inst = run.instance if run else None
        if run is None or inst is None or market is None or training is None:
            return None
        if not inst.state.is_alive or inst.launched_at is None or not run.epochs:
            return None
        if (run.epoch or 0) >= run.epochs:
            return None  # trained: the cost so far is the answer
        total = cost.projected_cost(
            market.run_history, inst.launched_at, self.clock(), training.epoch_seconds(), run.epochs
        )
        return None if total is None else run.cost_usd + total

    def ask_market(self, run: Run) -> None:
        instance_id = run.instance.instance_id if run.instance else None
        view = self.view(run.run_id)
        asked = view.market_asked
        if asked is None or asked[1] != instance_id or self.clock() - asked[0] >= MARKET_TTL_S:
            view.market_asked = (self.clock(), instance_id)
            self.fetch_market(run)

    @work(exclusive=True, group="market", exit_on_error=False)
    async def fetch_market(self, run: Run) -> None:
        market = await fetch_market(self.lifecycle, run, self.clock())
        self.post_message(messages.MarketFetched(run.run_id, market))

    @on(messages.MarketFetched)
    @while_open
    def market_fetched(self, message: messages.MarketFetched) -> None:
        self.view(message.run_id).market = message.market
        if message.run_id == self.table.selected_run_id:
            self.show_selected()

    def ask_results(self, run: Run) -> None:
        """A run trained before this dashboard started: its curve from the downloaded metrics."""
        view = self.view(run.run_id)
        if view.training is not None or view.results_asked:
            return
        view.results_asked = True
        if "download" in run.steps_done:
            self.load_results(run)

    @work(group="results", exit_on_error=False)
    async def load_results(self, run: Run) -> None:
        path = self.lifecycle.results_dir(run) / "metrics.jsonl"
        training = await asyncio.to_thread(read_metrics, path)
        if training.epochs:
            self.post_message(messages.TrainingLoaded(run.run_id, training))

    @on(messages.TrainingLoaded)
    @while_open
    def training_loaded(self, message: messages.TrainingLoaded) -> None:
        view = self.view(message.run_id)
        if view.training is None:
            view.training = message.training
            self._measured(message.run_id, message.training)
        if message.run_id == self.table.selected_run_id:
            self.show_selected()

    def _measured(self, run_id: str, training: Training) -> None:
        history = training.history()
        row = self.rows.get(run_id)
        if history and history[-1].images_per_s and row is not None:
            kind = row.instance_type if row.provider == "aws" else "local"
            self.throughput[kind or "local"] = history[-1].images_per_s
