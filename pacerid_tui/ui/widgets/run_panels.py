"""The selected run's panels: its details, market, host and loss curve, and what fills them.

`show` draws a run from the runs' state (`ui/runs.py`), as the App asks when its selection
changes and at its batched tick. On the way it asks, in workers of its own, for the run's market
(at most once per `MARKET_TTL_S`) and for the curve of a run trained before this dashboard
started (read back from its downloaded metrics); the answers are messages it owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static

from pacerid_tui.ui.run_view import RunView
from pacerid_tui.ui.widgets.host_panel import HostPanel
from pacerid_tui.ui.widgets.market_panel import MarketPanel
from pacerid_tui.ui.widgets.run_details import RunDetails

if TYPE_CHECKING:  # the core's and plotext's: imported after the dashboard's first frame
    from pacerid_tui.core.kernel.models import Run
    from pacerid_tui.ui.market import Market
    from pacerid_tui.ui.runs import Runs
    from pacerid_tui.ui.training import Training
    from pacerid_tui.ui.widgets.loss_chart import LossChart


class RunPanels(Vertical):
    @dataclass
    class MarketFetched(Message, bubble=False):
        run_id: str
        market: Market

    @dataclass
    class TrainingLoaded(Message, bubble=False):
        """A run's curve read back from its downloaded metrics.jsonl."""

        run_id: str
        training: Training

    def __init__(self, runs: Callable[[], Runs], *, id: str) -> None:
        super().__init__(id=id)
        self._runs = runs
        self.run_id: str | None = None
        """The run shown."""
        self.chart: LossChart | None = None
        """The loss chart, once `add_chart` put it in its place."""

    @property
    def runs(self) -> Runs:
        """The App's runs, asked for when a run is shown (they do not exist at the first frame)."""
        return self._runs()

    def compose(self) -> ComposeResult:
        with Horizontal(id="selected"):
            yield RunDetails(id="details")
            yield MarketPanel(id="market")
        yield HostPanel(id="host")
        yield Static(id="chart")  # the chart's place (and frame) until `add_chart`

    async def add_chart(self) -> None:
        """The loss chart in its place: after the first frame, as plotext costs a tenth of a
        second to import and to draw empty (the App imports it with the core, in a thread)."""
        from pacerid_tui.ui.widgets.loss_chart import LossChart

        await self.query_one("#chart").remove()
        self.chart = LossChart(id="chart")
        await self.mount(self.chart)
        if self.run_id is not None:
            self.show(self.run_id)

    def show(self, run_id: str | None) -> None:
        self.run_id = run_id
        runs = self.runs
        run = runs.run(run_id)
        view = runs.view(run.run_id) if run else RunView()
        config, training, market = view.config, view.training, view.market
        self.query_one(RunDetails).show(
            run,
            runs.rows.get(run.run_id) if run else None,
            training=training,
            max_price=config.instance.max_price if config else None,
            warning=market.ssh_warning if market else None,
            activity=view.activity,
        )
        self.query_one(MarketPanel).show(run, market)
        steps = list(training.steps) if training else []
        self.query_one(HostPanel).show(list(view.samples), steps)
        live = run is not None and runs.training_live(run.run_id)
        if self.chart is not None:
            self.chart.show(
                training.history() if training else [],
                steps,
                training.eta_seconds() if training and live else None,
            )
        if run is not None:
            self.ask_market(run)
            self.ask_results(run)

    def ask_market(self, run: Run) -> None:
        from pacerid_tui.ui.market import MARKET_TTL_S  # the core's, after the first frame

        instance_id = run.instance.instance_id if run.instance else None
        view = self.runs.view(run.run_id)
        asked, now = view.market_asked, self.runs.clock()
        if asked is None or asked[1] != instance_id or now - asked[0] >= MARKET_TTL_S:
            view.market_asked = (now, instance_id)
            self.fetch_market(run)

    @work(exclusive=True, group="market", exit_on_error=False)
    async def fetch_market(self, run: Run) -> None:
        from pacerid_tui.ui.market import fetch_market

        market = await fetch_market(self.runs.lifecycle, run, self.runs.clock())
        self.post_message(self.MarketFetched(run.run_id, market))

    @on(MarketFetched)
    def market_fetched(self, message: MarketFetched) -> None:
        self.runs.view(message.run_id).market = message.market
        if message.run_id == self.run_id:
            self.show(self.run_id)

    def ask_results(self, run: Run) -> None:
        """A run trained before this dashboard started: its curve from the downloaded metrics."""
        view = self.runs.view(run.run_id)
        if view.training is not None or view.results_asked:
            return
        view.results_asked = True
        if "download" in run.steps_done:
            self.load_results(run)

    @work(group="results", exit_on_error=False)
    async def load_results(self, run: Run) -> None:
        path = self.runs.lifecycle.results_dir(run) / "metrics.jsonl"
        from pacerid_tui.ui.training import read_metrics

        training = await asyncio.to_thread(read_metrics, path)
        if training.epochs:
            self.post_message(self.TrainingLoaded(run.run_id, training))

    @on(TrainingLoaded)
    def training_loaded(self, message: TrainingLoaded) -> None:
        self.runs.loaded(message.run_id, message.training)
        if message.run_id == self.run_id:
            self.show(self.run_id)
