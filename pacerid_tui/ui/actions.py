"""The run steps behind the keys, buttons and palette entries (`ui/key_actions.py`), and the
dashboard's side of the runs' work: Textual workers for what `Runs` starts, dialogs for what it
asks (`Face`, ui/runs.py).

The App owns one `RunActions` and calls it from its `action_*` methods. The rules (one step at a
time per run, what terminate does, when run all starts a new run) are the runs' own; this reads
the selected run, opens the dialogs, reads what they need in threads, and says what was refused.
Steps report through the core's listener, whose messages the App turns into what is on screen.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.app import App

from pacerid_tui.config import Config, load_config
from pacerid_tui.core.kernel import host_records
from pacerid_tui.core.kernel.errors import PaceridError, RunNotFound
from pacerid_tui.core.kernel.models import MetricEvent, Run
from pacerid_tui.core.results import delivery, history, mistakes
from pacerid_tui.core.steps import leftovers
from pacerid_tui.ui.runs import Runs, Step
from pacerid_tui.ui.screens.confirm_terminate import ConfirmTerminate
from pacerid_tui.ui.screens.failure_dialog import FailureDialog
from pacerid_tui.ui.screens.history_screen import HistoryScreen
from pacerid_tui.ui.screens.launch_form import LaunchForm, LaunchRequest
from pacerid_tui.ui.screens.mistakes_screen import MistakesScreen
from pacerid_tui.ui.screens.vanished import VanishedDialog
from pacerid_tui.ui.screens.version_prompt import SyncRequest, VersionPrompt


class RunActions:
    def __init__(
        self,
        app: App[int],
        runs: Runs,
        config_path: Path,
        selected: Callable[[], str | None],
        refresh: Callable[[], object],
    ) -> None:
        self.app = app
        self.runs = runs
        self.config_path = config_path
        self.selected = selected
        """The id of the run the table points at (the App's `selected`)."""
        self.refresh = refresh
        runs.attach(self)

    # -- what the runs ask for (ui/runs.py's Face) ----------------------------------------------
    def start_work(self, work: Coroutine[Any, Any, None], *, name: str, group: str) -> None:
        self.app.run_worker(work, name=name, group=group, exit_on_error=False)

    def cancel_work(self, group: str) -> None:
        self.app.workers.cancel_group(self.app, group)

    def refresh_runs(self) -> object:
        return self.refresh()

    async def keep_after_failure(self, sentence: str) -> bool:
        """Run all failed: ask whether to keep the host (the dialog times out to terminate)."""
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.app.push_screen(FailureDialog(sentence), answer.set_result)
        return await answer == "keep"

    async def ask_relaunch(self, run: Run) -> bool:
        """The run's instance is gone for no known reason: relaunch (True) only if the user
        says so in the dialog."""
        instance_id = run.instance.instance_id if run.instance else "-"
        answer: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self.app.push_screen(VanishedDialog(run.run_id, instance_id), answer.set_result)
        return bool(await answer)

    # -- steps on the selected run ----------------------------------------------------------------
    def selected_run(self) -> Run | None:
        return self.runs.run(self.selected())

    def warn(self, text: str) -> None:
        self.app.notify(text, severity="warning")

    def on_selected(self, start: Callable[[str], str | None]) -> None:
        """Start something on the selected run; say why not where the runs refuse."""
        run = self.selected_run()
        if run is None:
            self.warn("No run selected; press l to launch one.")
            return
        refused = start(run.run_id)
        if refused:
            self.warn(refused)

    def step(self, name: str, step: Step) -> None:
        self.on_selected(lambda run_id: self.runs.start_step(run_id, name, step))

    def launch(self) -> None:
        form = LaunchForm(self.config_path, dict(self.runs.throughput))
        self.app.push_screen(form, self._launch_chosen)

    def _launch_chosen(self, request: LaunchRequest | None) -> None:
        if request is None:
            return
        run = self._new_run(request.config_path, request.config)
        if run is None:
            return
        if request.config_path != self.config_path:
            say = self.runs.lifecycle.listener.report
            say(run.run_id, f"Launching with the edited config {request.config_path}.")
        self.runs.start_step(run.run_id, "launch", self.runs.lifecycle.launch)

    def _new_run(self, config_path: Path, config: Config | None = None) -> Run | None:
        """A new run (the table selects it when the core says it exists), or None, said why."""
        try:
            return self.runs.create(config_path, config or load_config(config_path))
        except PaceridError as err:
            self.app.notify(str(err), severity="error")
            return None

    def run_all(self) -> None:
        run = self.selected_run()
        if run is not None and self.runs.recovering(run.run_id):
            refused = self.runs.refusal(run.run_id)  # its old instance ended: not one to redo
            if refused:
                self.warn(refused)
            return
        if self.runs.needs_new_run(run):
            run = self._new_run(self.config_path)
        if run is not None:
            refused = self.runs.start_run_all(run.run_id)
            if refused:
                self.warn(refused)

    def follow(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.runs.start_follow(run.run_id)

    def ssh(self) -> None:
        run = self.selected_run()
        instance = run.instance if run else None
        if run is None or instance is None or not instance.state.is_alive:
            self.warn("The selected run has no live instance.")
            return
        try:
            argv = self.runs.lifecycle.connections.login_argv(run)
        except PaceridError as err:
            self.warn(str(err))
            return
        with self.app.suspend():
            subprocess.run(argv, check=False)

    # -- terminate --------------------------------------------------------------------------------
    def terminate(self) -> None:
        """One key, never blocked: whatever step the run is in is cancelled first. Decided on
        the registry's record of the run, read in a worker."""
        run_id = self.selected()
        if run_id is None:
            self.app.notify("Nothing to terminate: no run is selected.")
            return
        self.app.run_worker(self._terminate(run_id), group="terminate", exit_on_error=False)

    async def _terminate(self, run_id: str) -> None:
        try:
            run = await self.runs.fresh(run_id)
        except RunNotFound:  # a failed first launch is forgotten
            run = None
        plan = self.runs.terminate_plan(run) if run is not None else "nothing"
        if plan == "nothing":
            self.app.notify("Nothing to terminate: the selected run has no live instance.")
        elif plan == "ask":
            lost = (
                "Its results (checkpoints, metrics, logs) have not been downloaded and "
                "would be lost with the instance."
            )
            self.app.push_screen(
                ConfirmTerminate(run_id, lost),
                lambda choice: self._terminate_choice(run_id, choice),
            )
        else:
            self.runs.terminate(run_id, plan)

    def _terminate_choice(self, run_id: str, choice: str | None) -> None:
        if choice == "terminate":
            self.runs.terminate(run_id, "now")
        elif choice == "download-terminate":
            self.runs.terminate(run_id, "download first")

    # -- the model --------------------------------------------------------------------------------
    def export(self) -> None:
        run = self.selected_run()
        if run is None or "download" not in run.steps_done:
            self.app.notify("Download the run's results first (d); export reads them.")
            return
        say = self.runs.lifecycle.listener.report

        async def export(run: Run) -> None:
            say(run.run_id, "Exporting to Core ML (a child process; takes a while)…")
            result = await delivery.export(
                self.runs.lifecycle, run, report=lambda line: say(run.run_id, line)
            )
            text = delivery.export_summary(result)
            say(run.run_id, text)
            self.app.notify(text, title="Export")

        self.runs.start_step(run.run_id, "export", export)

    def sync_model(self) -> None:
        run = self.selected_run()
        if run is None:
            self.app.notify("No run selected.")
            return
        self.app.run_worker(self._ask_version(run), group="sync-model", exit_on_error=False)

    async def _ask_version(self, run: Run) -> None:
        """What is installed where, read in a thread; then the version prompt."""
        lifecycle = self.runs.lifecycle

        def read() -> VersionPrompt | None:
            if not delivery.exported(lifecycle, run):
                return None
            current = delivery.installed(lifecycle, run)
            where = delivery.models_dir(lifecycle, run)
            installed = f"{current.version} in {where}" if current else f"nothing in {where}"
            return VersionPrompt(run.run_id, installed, delivery.next_version(current))

        prompt = await asyncio.to_thread(read)
        if prompt is None:
            self.app.notify("Export the run's model first (m); sync-model installs that export.")
            return
        self.app.push_screen(prompt, lambda request: self._sync_chosen(run, request))

    def _sync_chosen(self, run: Run, request: SyncRequest | None) -> None:
        if request is None:
            return

        async def sync(run: Run) -> None:
            result = await asyncio.to_thread(
                delivery.sync_model, self.runs.lifecycle, run, request.version, force=request.force
            )
            text = delivery.sync_summary(result, request.version)
            self.runs.lifecycle.listener.report(run.run_id, text)
            self.app.notify(text, title="Sync model")

        self.runs.start_step(run.run_id, "sync-model", sync)

    # -- instances of ours that no run knows -----------------------------------------------------
    def look_for_orphans(self) -> None:
        self.app.run_worker(
            self._look_for_orphans(), group="orphans", exclusive=True, exit_on_error=False
        )

    async def _look_for_orphans(self) -> None:
        for instance in await self.runs.look_for_orphans(self.config_path):
            self.app.notify(
                f"{instance.instance_id} ({instance.provider}, {instance.state.value}) is ours "
                "but no run knows it; press a to adopt it, then x terminates it.",
                title="Unknown instance",
                severity="warning",
                timeout=60,
            )

    def look_for_leftovers(self) -> None:
        self.app.run_worker(
            self._look_for_leftovers(), group="leftovers", exclusive=True, exit_on_error=False
        )

    async def _look_for_leftovers(self) -> None:
        for item in await self.runs.look_for_leftovers(self.config_path):
            self.app.notify(
                f"{leftovers.named(item)} is ours but no run uses it; `pacerid-tui sweep` "
                "lists it and `pacerid-tui sweep --yes` removes it.",
                title="Left over",
                severity="warning",
                timeout=60,
            )

    def adopt(self) -> None:
        if not self.runs.orphans:
            self.app.notify("Every live instance of ours belongs to a run.")
            return
        self.start_work(self.runs.adopt(self.config_path), name="adopt", group="adopt")

    # -- looking back -----------------------------------------------------------------------------
    def mistakes(self) -> None:
        run = self.selected_run()
        if run is None:
            self.warn("No run selected; pick a finished, downloaded run.")
            return
        self.app.run_worker(
            self._mistakes(run), group="mistakes", exclusive=True, exit_on_error=False
        )

    async def _mistakes(self, run: Run) -> None:
        path = self.runs.lifecycle.results_dir(run) / "report.json"
        try:
            found = await asyncio.to_thread(mistakes.read_report, path)
        except PaceridError as err:
            self.app.notify(str(err), title="Mistakes", severity="warning", timeout=10)
            return
        await self.app.push_screen(MistakesScreen(run.run_id, mistakes.lines(found)))

    def history(self) -> None:
        self.app.run_worker(self._history(), group="history", exclusive=True, exit_on_error=False)

    async def _history(self) -> None:
        lifecycle, views = self.runs.lifecycle, self.runs.views
        rows = await history.history(lifecycle, self.runs.clock())

        def read() -> tuple[dict[str, list[MetricEvent]], dict[str, Config]]:
            curves, configs = {}, {}
            for run in lifecycle.registry.runs():
                config = history.config_of(lifecycle, run)
                if config is not None:
                    configs[run.run_id] = config
                    curves[run.run_id] = host_records.epoch_curve(
                        lifecycle.results_dir(run) / "metrics.jsonl"
                    )
                streamed = views[run.run_id].training if run.run_id in views else None
                if streamed is not None and streamed.epochs:
                    curves[run.run_id] = streamed.history()  # streamed: the newest
            return curves, configs

        curves, configs = await asyncio.to_thread(read)
        await self.app.push_screen(HistoryScreen(rows, curves, configs))
