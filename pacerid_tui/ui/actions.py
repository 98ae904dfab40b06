"""The run steps behind the keys, buttons and palette entries (see `ui/key_actions.py`).

Each step runs as a worker in the run's group; `busy` keeps two steps of one run from racing
(terminate may cancel whatever runs). Steps call the core and report through messages; the
app (`ui/app.py`) turns those into what is on screen. Kept apart from the app so each file
stays readable.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.screen import Screen

from pacerid_tui.config import Config, load_config
from pacerid_tui.core.kernel.errors import PaceridError, RunNotFound
from pacerid_tui.core.kernel.models import Instance, InstanceState, Run
from pacerid_tui.core.results import delivery
from pacerid_tui.core.steps import leftovers
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.status import RunStatus
from pacerid_tui.core.supervise import orphans
from pacerid_tui.core.supervise.failure import follow_or_clean_up, run_all_or_clean_up
from pacerid_tui.core.supervise.supervisor import Supervisor
from pacerid_tui.ui import messages
from pacerid_tui.ui.run_view import RunView
from pacerid_tui.ui.screens.confirm_terminate import ConfirmTerminate
from pacerid_tui.ui.screens.failure_dialog import FailureDialog
from pacerid_tui.ui.screens.launch_form import LaunchForm, LaunchRequest
from pacerid_tui.ui.screens.vanished import VanishedDialog
from pacerid_tui.ui.screens.version_prompt import SyncRequest, VersionPrompt
from pacerid_tui.ui.widgets.runs_table import RunsTable

Step = Callable[[Run], Awaitable[object]]


ORPHANS_S = 60.0
"""How often to look for live instances of ours that no run knows (a lost registry)."""


class RunActions(App[int]):
    orphans: list[Instance]
    orphans_told: set[str]
    config_path: Path
    lifecycle: Lifecycle
    rows: dict[str, RunStatus]
    views: dict[str, RunView]
    throughput: dict[str, float]
    clock: Callable[[], float]
    refresh_s: float

    def refresh_runs(self) -> object:
        raise NotImplementedError

    @property
    def dashboard(self) -> Screen[object]:
        """The main screen, also while a dialog or the palette is on top of it."""
        return self.screen_stack[0]

    @property
    def table(self) -> RunsTable:
        return self.dashboard.query_one(RunsTable)

    def selected_run(self) -> Run | None:
        run_id = self.table.selected_run_id
        try:
            return self.lifecycle.registry.get(run_id) if run_id else None
        except RunNotFound:  # a failed first launch is forgotten; the next refresh drops its row
            return None

    def view(self, run_id: str) -> RunView:
        """The run's view state (ui/run_view.py), made on first use."""
        if run_id not in self.views:
            self.views[run_id] = RunView()
        return self.views[run_id]

    def say(self, run_id: str, text: str) -> None:
        self.post_message(messages.Reported(run_id, text))

    # -- running steps ----------------------------------------------------------------------------
    def start_step(self, run: Run, name: str, step: Step) -> None:
        view = self.view(run.run_id)
        if self.refused_while_busy(run):
            return
        view.busy = name

        async def body() -> None:
            try:
                await step(run)
                self.say(run.run_id, f"{name}: done.")
            finally:
                view.busy = None
                self.refresh_runs()

        self.run_worker(body(), name=name, group=run.run_id, exit_on_error=False)

    def refused_while_busy(self, run: Run) -> bool:
        """A step or a recovery runs for this run: say so (only `x` acts on it then)."""
        busy = self.view(run.run_id).busy_with()
        if busy is not None:
            self.notify(f"{run.run_id} is busy with {busy}; wait for it.", severity="warning")
        return busy is not None

    def with_run(self, name: str, step: Step) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected; press l to launch one.", severity="warning")
            return
        self.start_step(run, name, step)

    # -- supervising live runs ----------------------------------------------------------------
    def supervisor(self, run_id: str) -> Supervisor:
        """The run's one supervisor: its watch, its follow and its run all share it."""
        view = self.view(run_id)
        if view.supervisor is None:
            view.supervisor = Supervisor(
                self.lifecycle,
                run_id,
                clock=self.clock,
                poll_s=min(self.refresh_s, 5.0),
                ask=self.ask_relaunch,
            )
        return view.supervisor

    def start_watch(self, run_id: str) -> None:
        """A live run's own worker (not exclusive: no refresh cancels it) keeps its money rules
        until the instance ends; the app's exit cancels it."""
        view = self.view(run_id)
        if view.watching:
            return
        view.watching = True

        async def body() -> None:
            try:
                await self.supervisor(run_id).watch()
            finally:
                view.watching = False

        self.run_worker(body(), name="supervise", group=f"watch-{run_id}", exit_on_error=False)

    def start_follow(self, run: Run) -> None:
        view = self.view(run.run_id)
        if view.following:
            return
        view.following = True
        self.start_watch(run.run_id)

        async def body() -> None:
            try:  # recovers on the way, as run all does; a failed recovery asks keep or end
                await follow_or_clean_up(
                    self.lifecycle,
                    self.supervisor(run.run_id),
                    keep=self.keep_after_failure,
                    budget=False,  # its own watch worker keeps the budget
                )
            finally:
                view.following = False

        self.run_worker(body(), name="follow", group=f"follow-{run.run_id}", exit_on_error=False)

    def stop_supervising(self) -> None:
        """Leaving: a budget stop halfway is cancelled with the app (the host's watchdog and
        the next supervising command take over)."""
        for view in self.views.values():
            if view.supervisor is not None:
                view.supervisor.cancel()

    def new_run(self, config_path: Path, config: Config) -> Run:
        run = self.lifecycle.create_run(config_path, config)
        self.rows[run.run_id] = RunStatus(
            run.run_id, run.provider, None, None, None, "not launched", None, None, None, 0.0,
            None, run.epochs, None, [],
        )  # fmt: skip
        self.table.show(list(self.rows.values()))
        self.table.select(run.run_id)
        return run

    # -- launch -----------------------------------------------------------------------------------
    def action_launch(self) -> None:
        self.push_screen(LaunchForm(self.config_path, dict(self.throughput)), self._launch_chosen)

    def _launch_chosen(self, request: LaunchRequest | None) -> None:
        if request is None:
            return
        try:
            run = self.new_run(request.config_path, request.config)
        except PaceridError as err:
            self.notify(str(err), severity="error")
            return
        if request.config_path != self.config_path:
            self.say(run.run_id, f"Launching with the edited config {request.config_path}.")
        self.start_step(run, "launch", self.lifecycle.launch)

    def action_run_all(self) -> None:
        run = self.selected_run()
        if run is not None and self.view(run.run_id).recovering():
            self.refused_while_busy(run)  # its old instance has ended: not a run to start anew
            return
        state = run.instance.state if run and run.instance else None
        ended = state is not None and not state.is_alive
        # A vanished instance's run is asked about, once: one left ended is done with.
        if run is None or (ended and (state is not InstanceState.UNKNOWN or run.ended)):
            try:
                run = self.new_run(self.config_path, load_config(self.config_path))
            except PaceridError as err:
                self.notify(str(err), severity="error")
                return
        view = self.view(run.run_id)

        async def run_all(run: Run) -> None:
            view.following = True  # only once the step is ours: a refused one leaves it be
            try:
                await run_all_or_clean_up(
                    self.lifecycle,
                    run,
                    keep=self.keep_after_failure,
                    supervisor=self.supervisor(run.run_id),
                )
            finally:
                view.following = False

        self.start_step(run, "run all", run_all)

    async def keep_after_failure(self, sentence: str) -> bool:
        """Run all failed: ask whether to keep the host (the dialog times out to terminate)."""
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.push_screen(FailureDialog(sentence), answer.set_result)
        return await answer == "keep"

    async def ask_relaunch(self, run: Run) -> bool:
        """The run's instance is gone for no known reason: relaunch (True) only if the user
        says so in the dialog."""
        instance_id = run.instance.instance_id if run.instance else "-"
        answer: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self.push_screen(VanishedDialog(run.run_id, instance_id), answer.set_result)
        return bool(await answer)

    # -- the steps on the host --------------------------------------------------------------------
    def action_upload(self) -> None:
        self.with_run("upload", self.lifecycle.upload)

    def action_setup(self) -> None:
        self.with_run("setup", self.lifecycle.setup)

    def action_data(self) -> None:
        self.with_run("data", self.lifecycle.data)

    def action_train(self) -> None:
        async def train(run: Run) -> None:
            await self.lifecycle.train(run)
            self.start_follow(run)

        self.with_run("train", train)

    def action_follow(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.start_follow(run)

    def action_download(self) -> None:
        self.with_run("download", self.lifecycle.download)

    def action_ssh(self) -> None:
        run = self.selected_run()
        instance = run.instance if run else None
        if run is None or instance is None or not instance.state.is_alive:
            self.notify("The selected run has no live instance.", severity="warning")
            return
        try:
            argv = self.lifecycle.connections.login_argv(run)
        except PaceridError as err:
            self.notify(str(err), severity="warning")
            return
        with self.suspend():
            subprocess.run(argv, check=False)

    # -- instances of ours that no run knows -----------------------------------------------------
    @work(exclusive=True, group="orphans", exit_on_error=False)
    async def look_for_orphans(self) -> None:
        found = await orphans.orphans(self.lifecycle, load_config(self.config_path))
        self.post_message(messages.OrphansFound(found))

    @work(exclusive=True, group="leftovers", exit_on_error=False)
    async def look_for_leftovers(self) -> None:
        """Whatever else of ours bills with no run using it, in every region; each is told
        once, as an unknown instance is."""
        found = await orphans.billing_leftovers(self.lifecycle, load_config(self.config_path))
        self.post_message(messages.LeftoversFound(found))

    @on(messages.OrphansFound)
    def orphans_found(self, message: messages.OrphansFound) -> None:
        # A run this dashboard is launching has its instance before the registry does.
        busy = {run_id for run_id, view in self.views.items() if view.busy_with() is not None}
        self.orphans = [i for i in message.instances if i.run_id not in busy]
        for instance in self.orphans:
            if instance.instance_id not in self.orphans_told:
                self.orphans_told.add(instance.instance_id)
                self.notify(
                    f"{instance.instance_id} ({instance.provider}, {instance.state.value}) is ours "
                    "but no run knows it; press a to adopt it, then x terminates it.",
                    title="Unknown instance",
                    severity="warning",
                    timeout=60,
                )

    @on(messages.LeftoversFound)
    def leftovers_found(self, message: messages.LeftoversFound) -> None:
        # A run being launched has its resources before the registry has its instance.
        busy = {run_id for run_id, view in self.views.items() if view.busy is not None}
        for item in message.leftovers:
            if item.run_id in busy or item.resource_id in self.orphans_told:
                continue
            self.orphans_told.add(item.resource_id)
            self.notify(
                f"{leftovers.named(item)} is ours but no run uses it; `pacerid-tui sweep` "
                "lists it and `pacerid-tui sweep --yes` removes it.",
                title="Left over",
                severity="warning",
                timeout=60,
            )

    def action_adopt(self) -> None:
        if not self.orphans:
            self.notify("Every live instance of ours belongs to a run.")
            return
        self.run_worker(self._adopt(list(self.orphans)), group="orphans", exit_on_error=False)

    async def _adopt(self, instances: list[Instance]) -> None:
        for instance in instances:
            run = await orphans.adopt(self.lifecycle, instance.instance_id, self.config_path)
            self.say(run.run_id, f"Adopted {instance.instance_id}: x terminates it.")
        self.orphans = []
        self.refresh_runs()

    # -- terminate --------------------------------------------------------------------------------
    def action_terminate(self) -> None:
        """One key, never blocked: whatever step the run is in is cancelled first."""
        run = self.selected_run()
        if (
            run is not None
            and run.instance is None
            and (self.view(run.run_id).busy in ("launch", "run all") or self._recovering(run))
        ):
            self._take_over(run)
            self.start_step(run, "terminate once launched", self._terminate_when_launched)
            return
        if run is None or run.instance is None or not run.instance.state.is_alive:
            self.notify("Nothing to terminate: the selected run has no live instance.")
            return
        if "train" in run.steps_done and run.downloaded_at is None:
            lost = (
                "Its results (checkpoints, metrics, logs) have not been downloaded and "
                "would be lost with the instance."
            )
            self.push_screen(
                ConfirmTerminate(run.run_id, lost),
                lambda choice: self._terminate_choice(run, choice),
            )
            return
        self._take_over(run)
        self.start_step(run, "terminate", self.lifecycle.terminate)

    def _recovering(self, run: Run) -> bool:
        """A follow (`t`, `f`) is moving the run to a replacement: between two instances."""
        return self.view(run.run_id).recovering()

    def _take_over(self, run: Run) -> None:
        """Cancel the run's running step and its follow, which may be recovering onto a new
        instance (a launch still completes and is recorded)."""
        self.workers.cancel_group(self, run.run_id)
        self.workers.cancel_group(self, f"follow-{run.run_id}")
        view = self.view(run.run_id)
        view.busy = None
        view.following = False  # cancelled: its recovery no longer makes the run busy
        self.workers.cancel_group(self, f"watch-{run.run_id}")  # a budget stop still finishes

    async def _terminate_when_launched(self, run: Run) -> None:
        self.say(run.run_id, "Terminating as soon as the launch in progress has an instance…")
        while (current := self.lifecycle.registry.get(run.run_id)).instance is None:
            await asyncio.sleep(0.5)
        await self.lifecycle.terminate(current)

    def _terminate_choice(self, run: Run, choice: str | None) -> None:
        if choice == "terminate":
            self._take_over(run)
            self.start_step(run, "terminate", self.lifecycle.terminate)
        elif choice == "download-terminate":

            async def both(run: Run) -> None:
                try:
                    await self.lifecycle.download(run)
                finally:
                    await self.lifecycle.terminate(run)

            self._take_over(run)
            self.start_step(run, "download, then terminate", both)

    # -- the model --------------------------------------------------------------------------------
    def action_export(self) -> None:
        run = self.selected_run()
        if run is None or "download" not in run.steps_done:
            self.notify("Download the run's results first (d); export reads them.")
            return

        async def export(run: Run) -> None:
            self.say(run.run_id, "Exporting to Core ML (a child process; takes a while)…")
            result = await delivery.export(
                self.lifecycle, run, report=lambda line: self.say(run.run_id, line)
            )
            text = delivery.export_summary(result)
            self.say(run.run_id, text)
            self.notify(text, title="Export")

        self.start_step(run, "export", export)

    def action_sync_model(self) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected.")
            return
        if not delivery.exported(self.lifecycle, run):
            self.notify("Export the run's model first (m); sync-model installs that export.")
            return
        current = delivery.installed(self.lifecycle, run)
        where = delivery.models_dir(self.lifecycle, run)
        installed = f"{current.version} in {where}" if current else f"nothing in {where}"
        prompt = VersionPrompt(run.run_id, installed, delivery.next_version(current))
        self.push_screen(prompt, lambda request: self._sync_chosen(run, request))

    def _sync_chosen(self, run: Run, request: SyncRequest | None) -> None:
        if request is None:
            return

        async def sync(run: Run) -> None:
            result = await asyncio.to_thread(
                delivery.sync_model, self.lifecycle, run, request.version, force=request.force
            )
            text = delivery.sync_summary(result, request.version)
            self.say(run.run_id, text)
            self.notify(text, title="Sync model")

        self.start_step(run, "sync-model", sync)
