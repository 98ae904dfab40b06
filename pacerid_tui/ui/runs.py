"""The dashboard's runs, without a widget: what it holds for each run and the rules for starting
their work, in one object that the App owns and its screens and widgets call.

What it holds: the registry's snapshot (read in a thread at each refresh and kept current from
the core's `run_changed` between refreshes, so nothing on the UI thread reads the file), the
table's rows, one `RunView` per run (`ui/run_view.py`: log, training, samples, market, busy
step, follow, watch, supervisor), the throughput measured, the orphans found. Its rules: one
step at a time per run; one follow and one watch per run; one supervisor per run, which its
steps, follow and watch share; every live run watched; terminate never blocked by a step.

The work itself runs wherever its `Face` starts it: the App, in Textual workers grouped by run
(`ui/actions.py`); a test, in plain asyncio tasks. So this module imports no Textual, and a test
drives it without an App (tests/ui/test_runs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Literal, Protocol

from pacerid_tui.config import Config, load_config
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import Instance, InstanceState, Leftover, MetricEvent, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.status import RunStatus
from pacerid_tui.core.steps.status import row as status_row
from pacerid_tui.core.supervise import orphans
from pacerid_tui.core.supervise.failure import follow_or_clean_up, run_all_or_clean_up
from pacerid_tui.core.supervise.supervisor import Supervisor
from pacerid_tui.ui.run_view import RunView
from pacerid_tui.ui.training import Training

Step = Callable[[Run], Awaitable[object]]
QUIET_STATES = ("terminated", "unknown", "not launched")
"""Rows whose instance has nothing left to watch."""
Termination = Literal["when launched", "now", "download first"]
"""How a run is terminated: what a launch in progress brings; now; its results saved first."""
Plan = Literal["nothing", "ask", "when launched", "now"]
"""What `x` does to a run: nothing to end; ask first (results would be lost); terminate."""


class Face(Protocol):
    """What the runs ask of whoever shows them: background work, a refresh, two questions."""

    def start_work(self, work: Coroutine[Any, Any, None], *, name: str, group: str) -> None:
        """Run `work` in the background; a group's work is cancelled together."""

    def cancel_work(self, group: str) -> None: ...

    def refresh_runs(self) -> object:
        """Ask the providers again and redraw the table (a step ended)."""

    async def keep_after_failure(self, sentence: str) -> bool:
        """Run all failed (`sentence` says how): keep the host (True) or terminate it."""

    async def ask_relaunch(self, run: Run) -> bool:
        """The run's instance is gone for no known reason: relaunch (True) or leave it ended."""


class Runs:
    def __init__(
        self, lifecycle: Lifecycle, *, clock: Callable[[], float] = time.time, poll_s: float = 5.0
    ) -> None:
        self.lifecycle = lifecycle
        self.clock = clock
        self.poll_s = poll_s
        """How often each run's supervisor checks its budget."""
        self.face: Face
        """Set by `attach`, once whoever shows the runs has them."""
        self.snapshot: dict[str, Run] = {}
        """The registry as last read or told, by run id, in its order."""
        self.rows: dict[str, RunStatus] = {}
        """The table's rows, replaced whole at each refresh."""
        self.views: dict[str, RunView] = {}
        self.throughput: dict[str, float] = {}
        """Measured training images per second by instance type ("local" for the local one)."""
        self.orphans: list[Instance] = []
        """Live instances of ours that no run knows, as last looked for (`a` adopts them)."""
        self._orphans_told: set[str] = set()
        self._made: set[str] = set()
        """Runs made here (launch, run all, adopt) that the table has not selected yet."""

    def attach(self, face: Face) -> None:
        self.face = face

    # -- what it holds ----------------------------------------------------------------------------
    def view(self, run_id: str) -> RunView:
        """The run's view state (ui/run_view.py), made on first use."""
        if run_id not in self.views:
            self.views[run_id] = RunView()
        return self.views[run_id]

    def run(self, run_id: str | None) -> Run | None:
        """The run as last read or told (None for none, or one the registry forgot)."""
        return self.snapshot.get(run_id) if run_id else None

    def create(self, config_path: Path, config: Config) -> Run:
        """A new run in the registry (the core tells `changed`, which selects it)."""
        run = self.lifecycle.create_run(config_path, config)
        self._made.add(run.run_id)
        return run

    def changed(self, run: Run) -> bool:
        """The core changed a run (or made one): kept, with a row until the next refresh
        prices it. True the first time for a run this dashboard made (the table selects it)."""
        self.snapshot[run.run_id] = run
        if run.run_id not in self.rows:
            self.rows[run.run_id] = status_row(run, [], self.clock())
        made = run.run_id in self._made
        self._made.discard(run.run_id)
        return made

    async def read(self) -> list[Run]:
        """The registry, and each run's frozen config (read once: the lifecycle keeps it), in a
        thread."""

        def read() -> tuple[list[Run], dict[str, Config]]:
            runs = self.lifecycle.registry.runs()
            configs = {}
            for run in runs:
                with contextlib.suppress(PaceridError):  # gone or broken: shown without terms
                    configs[run.run_id] = self.lifecycle.config_of(run)
            return runs, configs

        runs, configs = await asyncio.to_thread(read)
        for run_id, config in configs.items():
            self.view(run_id).config = config
        self.snapshot = {run.run_id: run for run in runs}
        return runs

    async def fresh(self, run_id: str) -> Run:
        """The registry's record of one run now, read in a thread (a decision that spends or
        ends money is made on it, not on the snapshot)."""
        run = await asyncio.to_thread(self.lifecycle.registry.get, run_id)
        self.snapshot[run_id] = run
        return run

    async def refresh(self) -> list[RunStatus]:
        """Read the registry, ask the providers about live instances, and price every run."""
        runs = await self.lifecycle.refresh(await self.read())
        self.snapshot.update((run.run_id, run) for run in runs)
        return await self.lifecycle.statuses(runs, now=self.clock())

    def take(self, rows: list[RunStatus]) -> list[str]:
        """The refreshed rows, kept; every live run watched. Says which runs changed state."""
        changes = []
        for row in rows:
            before = self.rows.get(row.run_id)
            if before is not None and before.state != row.state:
                reason = f" ({row.state_reason})" if row.state_reason else ""
                changes.append(f"{row.run_id}: {row.state}{reason}")
            if row.state not in QUIET_STATES:
                self.start_watch(row.run_id)  # its money rules, whatever else runs
        self.rows = {row.run_id: row for row in rows}
        return changes

    # -- starting work ----------------------------------------------------------------------------
    def start_step(self, run_id: str, name: str, step: Step) -> str | None:
        """Start `step` on the run's record as it is then, unless another step of the run is
        running: None, or the sentence saying why not. A refresh follows it."""
        view = self.view(run_id)
        refused = self.refusal(run_id)
        if refused:
            return refused
        view.busy = name

        async def body() -> None:
            try:
                await step(await self.fresh(run_id))
                self.lifecycle.listener.report(run_id, f"{name}: done.")
            finally:
                view.busy = None
                self.face.refresh_runs()

        self.face.start_work(body(), name=name, group=run_id)
        return None

    def refusal(self, run_id: str) -> str | None:
        """Why no step may start on the run now: a step runs, or its follow is recovering it
        (then only `x` acts on it). None when one may."""
        busy = self.view(run_id).busy_with()
        return None if busy is None else f"{run_id} is busy with {busy}; wait for it."

    def supervisor(self, run_id: str) -> Supervisor:
        """The run's one supervisor: its watch, its follow and its run all share it."""
        view = self.view(run_id)
        if view.supervisor is None:
            view.supervisor = Supervisor(
                self.lifecycle,
                run_id,
                clock=self.clock,
                poll_s=self.poll_s,
                ask=self.face.ask_relaunch,
            )
        return view.supervisor

    def start_watch(self, run_id: str) -> None:
        """A live run's own worker (no refresh cancels it) keeps its money rules until the
        instance ends; leaving the app cancels it."""
        view = self.view(run_id)
        if view.watching:
            return
        view.watching = True

        async def body() -> None:
            try:
                await self.supervisor(run_id).watch()
            finally:
                view.watching = False

        self.face.start_work(body(), name="supervise", group=f"watch-{run_id}")

    def start_follow(self, run_id: str) -> None:
        """Stream the run's training (recovering on the way, as run all does); its watch keeps
        the budget meanwhile."""
        view = self.view(run_id)
        if view.following:
            return
        view.following = True
        self.start_watch(run_id)

        async def body() -> None:
            try:  # a failed recovery asks keep or end, as run all does
                await follow_or_clean_up(
                    self.lifecycle,
                    self.supervisor(run_id),
                    keep=self.face.keep_after_failure,
                    budget=False,
                )
            finally:
                view.following = False

        self.face.start_work(body(), name="follow", group=f"follow-{run_id}")

    async def follow_trained(self) -> None:
        """At start: follow again every live run that trained (the dashboard was away)."""
        for run in await self.read():
            if "train" in run.steps_done and run.instance and run.instance.state.is_alive:
                self.start_follow(run.run_id)

    def needs_new_run(self, run: Run | None) -> bool:
        """`r` on this run (or none) starts a new one: none selected, or its instance ended (a
        vanished one is asked about once: one left ended is done with)."""
        state = run.instance.state if run and run.instance else None
        ended = state is not None and not state.is_alive
        return run is None or (ended and (state is not InstanceState.UNKNOWN or bool(run.ended)))

    def start_run_all(self, run_id: str) -> str | None:
        """Every step, launch to download, under the run's supervisor; as `start_step`."""
        view = self.view(run_id)

        async def run_all(run: Run) -> None:
            view.following = True  # only once the step is ours: a refused one leaves it be
            try:
                await run_all_or_clean_up(
                    self.lifecycle,
                    run,
                    keep=self.face.keep_after_failure,
                    supervisor=self.supervisor(run_id),
                )
            finally:
                view.following = False

        return self.start_step(run_id, "run all", run_all)

    def start_train(self, run_id: str) -> str | None:
        """Training started detached on the host, then followed."""

        async def train(run: Run) -> None:
            await self.lifecycle.train(run)
            self.start_follow(run_id)

        return self.start_step(run_id, "train", train)

    def stop_supervising(self) -> None:
        """Leaving: a budget stop halfway is cancelled with the app (the host's watchdog and
        the next supervising command take over)."""
        for view in self.views.values():
            if view.supervisor is not None:
                view.supervisor.cancel()

    # -- terminate --------------------------------------------------------------------------------
    def terminate_plan(self, run: Run) -> Plan:
        """What `x` does to the run as the registry has it now (`fresh`)."""
        view = self.view(run.run_id)
        if run.instance is None:
            launching = view.busy in ("launch", "run all") or self.recovering(run.run_id)
            return "when launched" if launching else "nothing"
        if not run.instance.state.is_alive:
            return "nothing"
        if "train" in run.steps_done and run.downloaded_at is None:
            return "ask"
        return "now"

    def recovering(self, run_id: str) -> bool:
        """A follow (`t`, `f`) is moving the run to a replacement: between two instances."""
        return self.view(run_id).recovering()

    def terminate(self, run_id: str, how: Termination) -> None:
        """Whatever step the run is in is cancelled first, and its follow (which may be
        recovering onto a new instance; a launch still completes and is recorded); then the
        instance is terminated, or the one a launch in progress brings."""
        self.face.cancel_work(run_id)
        self.face.cancel_work(f"follow-{run_id}")
        view = self.view(run_id)
        view.busy = None
        view.following = False  # cancelled: its recovery no longer makes the run busy
        self.face.cancel_work(f"watch-{run_id}")  # a budget stop still finishes
        if how == "when launched":
            self.start_step(run_id, "terminate once launched", self._terminate_when_launched)
        elif how == "download first":
            self.start_step(run_id, "download, then terminate", self._download_then_terminate)
        else:
            self.start_step(run_id, "terminate", self.lifecycle.terminate)

    async def _terminate_when_launched(self, run: Run) -> None:
        self.lifecycle.listener.report(
            run.run_id, "Terminating as soon as the launch in progress has an instance…"
        )
        while (current := await self.fresh(run.run_id)).instance is None:
            await asyncio.sleep(0.5)
        await self.lifecycle.terminate(current)

    async def _download_then_terminate(self, run: Run) -> None:
        try:
            await self.lifecycle.download(run)
        finally:
            await self.lifecycle.terminate(run)

    # -- what streams in --------------------------------------------------------------------------
    def metric(self, run_id: str, event: MetricEvent) -> None:
        view = self.view(run_id)
        if view.training is None:
            view.training = Training()
        view.training.add(event)
        if event.event == "epoch":
            self.measured(run_id, view.training)

    def loaded(self, run_id: str, training: Training) -> None:
        """A run's curve read back from its downloaded metrics (nothing streamed yet)."""
        view = self.view(run_id)
        if view.training is None:
            view.training = training
            self.measured(run_id, training)

    def measured(self, run_id: str, training: Training) -> None:
        history = training.history()
        row = self.rows.get(run_id)
        if history and history[-1].images_per_s and row is not None:
            kind = row.instance_type if row.provider == "aws" else "local"
            self.throughput[kind or "local"] = history[-1].images_per_s

    def training_live(self, run_id: str) -> bool:
        """Training runs now (its ETA means something)."""
        row = self.rows.get(run_id)
        training = self.view(run_id).training
        return row is not None and row.state == "running" and not (training and training.ended)

    # -- instances of ours that no run knows ------------------------------------------------------
    async def look_for_orphans(self, config_path: Path) -> list[Instance]:
        """Look again; the orphans not told about before."""
        config = await asyncio.to_thread(load_config, config_path)
        found = await orphans.orphans(self.lifecycle, config)
        # A run this dashboard is launching has its instance before the registry does.
        busy = {run_id for run_id, view in self.views.items() if view.busy_with() is not None}
        self.orphans = [i for i in found if i.run_id not in busy]
        new = [i for i in self.orphans if i.instance_id not in self._orphans_told]
        self._orphans_told.update(i.instance_id for i in new)
        return new

    async def look_for_leftovers(self, config_path: Path) -> list[Leftover]:
        """Whatever else of ours bills with no run using it, in every region: those not told
        about before (each is told once, as an unknown instance is)."""
        config = await asyncio.to_thread(load_config, config_path)
        found = await orphans.billing_leftovers(self.lifecycle, config)
        # A run being launched has its resources before the registry has its instance.
        busy = {run_id for run_id, view in self.views.items() if view.busy is not None}
        new = [
            item
            for item in found
            if item.run_id not in busy and item.resource_id not in self._orphans_told
        ]
        self._orphans_told.update(item.resource_id for item in new)
        return new

    async def adopt(self, config_path: Path) -> None:
        """Give every orphan a run (`x` then terminates it)."""
        for instance in list(self.orphans):
            run = await orphans.adopt(self.lifecycle, instance.instance_id, config_path)
            self._made.add(run.run_id)  # before its run_changed is handled: nothing awaited
            self.lifecycle.listener.report(
                run.run_id, f"Adopted {instance.instance_id}: x terminates it."
            )
        self.orphans = []
        self.face.refresh_runs()
