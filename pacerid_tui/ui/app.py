"""The dashboard: every run; the selected one's instance, cost, loss curve and log; keys for all.

The app receives its backend (a `Lifecycle` over a registry) by injection and never does I/O on
the UI thread: each step runs in a worker (group = the run), which calls the core and lets the
core's listener post messages back. One handler deals with every worker error.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Log
from textual.worker import Worker, WorkerState

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core import ssh
from pacerid_tui.core.errors import PaceridError
from pacerid_tui.core.lifecycle import Lifecycle
from pacerid_tui.core.models import MetricEvent, Run
from pacerid_tui.core.registry import Registry
from pacerid_tui.core.status import RunStatus
from pacerid_tui.ui import messages
from pacerid_tui.ui.listener import AppListener
from pacerid_tui.ui.screens.confirm_terminate import ConfirmTerminate
from pacerid_tui.ui.widgets.loss_chart import LossChart
from pacerid_tui.ui.widgets.run_details import RunDetails
from pacerid_tui.ui.widgets.runs_table import RunsTable

LOG_LINES_PER_RUN = 5000
"""Log lines kept per run: bounded memory however long a run streams."""
REFRESH_S = 2.0

Step = Callable[[Run], Awaitable[object]]

ACTIONS: list[tuple[str, str, str, str]] = [
    # key, action, label, tooltip
    ("n", "launch", "Launch", "Create a run from the config and start its instance"),
    ("u", "upload", "Upload", "Sync trainer/ and configs/ to the host (only changes)"),
    ("e", "setup", "Setup", "Prepare the host's Python (instant the second time)"),
    ("d", "data", "Data", "Fetch the dataset on the host"),
    ("t", "train", "Train", "Start training detached on the host (resumes)"),
    ("f", "follow", "Follow", "Stream the training log and metrics"),
    ("w", "download", "Download", "Fetch results (only new or changed files)"),
    ("x", "terminate", "Terminate", "Terminate the instance: stops billing"),
    ("a", "run_all", "Run all", "Every step from launch to download"),
    ("s", "ssh", "SSH", "Open a shell on the host; the dashboard comes back after"),
]


class PaceridApp(App[int]):
    TITLE = "pacerid-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        *(
            Binding(key, action, label, tooltip=tip, id=f"run.{action}")
            for key, action, label, tip in ACTIONS
        ),
        Binding("r", "refresh", "Refresh", tooltip="Ask the providers now", id="app.refresh"),
        Binding(
            "slash", "filter", "Filter log", tooltip="Show only matching lines", id="log.filter"
        ),
        Binding(
            "p", "pause_log", "Pause log", tooltip="Stop or resume auto-scroll", id="log.pause"
        ),
        Binding("question_mark", "toggle_help", "Keys", tooltip="Show every key", id="app.help"),
        Binding("q", "quit", "Quit", tooltip="Leave; instances keep running", id="app.quit"),
    ]

    def __init__(
        self,
        config_path: Path,
        registry: Registry | None = None,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config_path = config_path
        self.lifecycle = Lifecycle(registry or Registry(paths.registry_file()), AppListener(self))
        self.refresh_s = refresh_s
        self.clock = clock
        self.rows: dict[str, RunStatus] = {}
        self.logs: dict[str, deque[str]] = {}
        self.epochs: dict[str, list[MetricEvent]] = {}
        self.last_step: dict[str, MetricEvent] = {}
        self.activity: dict[str, str] = {}
        self.busy: dict[str, str] = {}
        self.following: set[str] = set()
        self.log_filter = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                yield RunsTable(id="runs")
                yield RunDetails(id="details")
                yield LossChart(id="chart")
            with Vertical(id="right"):
                with Horizontal(id="actions"):
                    for key, action, label, tip in ACTIONS[:9]:
                        button = Button(f"{label} [{key}]", id=f"do-{action}", compact=True)
                        button.tooltip = tip
                        yield button
                yield Input(
                    placeholder="filter the log (enter to apply, empty to clear)", id="log-filter"
                )
                yield Log(id="log", max_lines=LOG_LINES_PER_RUN)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"config {self.config_path} — instances keep running after you quit"
        self.set_interval(self.refresh_s, self.refresh_runs)
        self.refresh_runs()
        for run in self.lifecycle.registry.runs():
            if "train" in run.steps_done and run.instance and run.instance.state.is_alive:
                self.start_follow(run)

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    def selected_run(self) -> Run | None:
        run_id = self.table.selected_run_id
        return self.lifecycle.registry.get(run_id) if run_id else None

    def show_selected(self) -> None:
        run = self.selected_run()
        run_id = run.run_id if run else ""
        budget = None
        if run is not None:
            try:
                budget = self.lifecycle.config_of(run).instance.budget_usd
            except PaceridError:
                budget = None
        self.query_one(RunDetails).show(
            run,
            self.rows.get(run_id),
            self.last_step.get(run_id),
            budget,
            self.activity.get(run_id, ""),
        )
        self.query_one(LossChart).show_epochs(self.epochs.get(run_id, []))

    def reload_log(self) -> None:
        log = self.query_one(Log)
        log.clear()
        run = self.selected_run()
        if run is not None:
            log.write_lines(self._visible(self.logs.get(run.run_id, ())))

    def _visible(self, lines: Iterable[str]) -> list[str]:
        return [line for line in lines if self.log_filter.lower() in line.lower()]

    # -- refresh ----------------------------------------------------------------------------------
    @work(exclusive=True, group="refresh", exit_on_error=False)
    async def refresh_runs(self) -> None:
        runs = await self.lifecycle.refresh(self.lifecycle.registry.runs())
        rows = await self.lifecycle.statuses(runs, now=self.clock())
        self.post_message(messages.StatusesRefreshed(rows))

    @on(messages.StatusesRefreshed)
    def statuses_refreshed(self, message: messages.StatusesRefreshed) -> None:
        for row in message.rows:
            before = self.rows.get(row.run_id)
            if before is not None and before.state != row.state:
                reason = f" ({row.state_reason})" if row.state_reason else ""
                self.notify(f"{row.run_id}: {row.state}{reason}")
        self.rows = {row.run_id: row for row in message.rows}
        selected = self.table.selected_run_id
        self.table.show(message.rows)
        if selected is None and message.rows:
            self.table.select(message.rows[-1].run_id)
        self.show_selected()

    @on(DataTable.RowHighlighted)
    def row_highlighted(self) -> None:
        self.show_selected()
        self.reload_log()

    # -- messages from the core ----------------------------------------------------------------
    @on(messages.Reported)
    def reported(self, message: messages.Reported) -> None:
        self.activity[message.run_id] = message.text
        self._append(message.run_id, [f"» {message.text}"])
        self.show_selected()

    @on(messages.LinesReceived)
    def lines_received(self, message: messages.LinesReceived) -> None:
        self._append(message.run_id, message.lines)

    def _append(self, run_id: str, lines: list[str]) -> None:
        buffer = self.logs.setdefault(run_id, deque(maxlen=LOG_LINES_PER_RUN))
        buffer.extend(lines)
        if run_id == self.table.selected_run_id:
            self.query_one(Log).write_lines(self._visible(lines))

    @on(messages.MetricReceived)
    def metric_received(self, message: messages.MetricReceived) -> None:
        event = message.event
        if event.event == "epoch":
            history = self.epochs.setdefault(message.run_id, [])
            history[:] = [e for e in history if e.epoch != event.epoch] + [event]
        elif event.event == "step":
            self.last_step[message.run_id] = event
        elif event.event in ("done", "interrupted", "error"):
            text = {
                "done": "training finished",
                "interrupted": "training interrupted",
                "error": f"training failed: {event.message}",
            }[event.event]
            self.notify(
                f"{message.run_id}: {text}",
                severity="error" if event.event == "error" else "information",
            )
        if message.run_id == self.table.selected_run_id:
            self.show_selected()

    @on(messages.RunChanged)
    def run_changed(self, message: messages.RunChanged) -> None:
        if message.run.run_id == self.table.selected_run_id:
            self.show_selected()

    @on(messages.TransferProgressed)
    def transfer_progressed(self, message: messages.TransferProgressed) -> None:
        p = message.progress
        share = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
        self.activity[message.run_id] = (
            f"{message.step}: {share:.0%} of {p.bytes_total / 1e6:.1f} MB, "
            f"{p.files_done}/{p.files_total} files"
        )
        if message.run_id == self.table.selected_run_id:
            self.show_selected()

    # -- steps -----------------------------------------------------------------------------------
    def start_step(self, run: Run, name: str, step: Step) -> None:
        if run.run_id in self.busy:
            self.notify(
                f"{run.run_id} is busy with {self.busy[run.run_id]}; wait for it.",
                severity="warning",
            )
            return
        self.busy[run.run_id] = name

        async def body() -> None:
            try:
                await step(run)
                self.post_message(messages.Reported(run.run_id, f"{name}: done."))
            finally:
                self.busy.pop(run.run_id, None)
                self.refresh_runs()

        self.run_worker(body(), name=name, group=run.run_id, exit_on_error=False)

    def with_run(self, name: str, step: Step) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected; press n to launch one.", severity="warning")
            return
        self.start_step(run, name, step)

    def start_follow(self, run: Run) -> None:
        if run.run_id in self.following:
            return
        self.following.add(run.run_id)

        async def body() -> None:
            try:
                await self.lifecycle.follow(run)
            finally:
                self.following.discard(run.run_id)

        self.run_worker(body(), name="follow", group=f"follow-{run.run_id}", exit_on_error=False)

    def _new_run(self) -> Run:
        run = self.lifecycle.create_run(self.config_path, load_config(self.config_path))
        self.rows[run.run_id] = RunStatus(
            run.run_id,
            run.provider,
            None,
            None,
            None,
            "not launched",
            None,
            None,
            None,
            0.0,
            None,
            run.epochs,
            None,
            [],
        )
        self.table.show(list(self.rows.values()))
        self.table.select(run.run_id)
        return run

    def action_launch(self) -> None:
        try:
            run = self._new_run()
        except PaceridError as err:
            self.notify(str(err), severity="error")
            return
        self.start_step(run, "launch", self.lifecycle.launch)

    def action_run_all(self) -> None:
        run = self.selected_run()
        if run is None or (run.instance and not run.instance.state.is_alive):
            try:
                run = self._new_run()
            except PaceridError as err:
                self.notify(str(err), severity="error")
                return
        self.following.add(run.run_id)
        self.start_step(run, "run all", self.lifecycle.run_all)

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

    def action_terminate(self) -> None:
        run = self.selected_run()
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
        self.start_step(run, "terminate", self.lifecycle.terminate)

    def _terminate_choice(self, run: Run, choice: str | None) -> None:
        if choice == "terminate":
            self.workers.cancel_group(self, run.run_id)
            self.busy.pop(run.run_id, None)
            self.start_step(run, "terminate", self.lifecycle.terminate)
        elif choice == "download-terminate":

            async def both(run: Run) -> None:
                await self.lifecycle.download(run)
                await self.lifecycle.terminate(run)

            self.start_step(run, "download, then terminate", both)

    def action_ssh(self) -> None:
        run = self.selected_run()
        instance = run.instance if run else None
        if instance is None or not instance.state.is_alive:
            self.notify("The selected run has no live instance.", severity="warning")
            return
        argv = ssh.Target.of(instance, paths.known_hosts_file()).ssh_argv()
        with self.suspend():
            subprocess.run(argv, check=False)

    def action_refresh(self) -> None:
        self.refresh_runs()

    def action_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.add_class("visible")
        box.focus()

    @on(Input.Submitted, "#log-filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        self.log_filter = event.value.strip()
        if not self.log_filter:
            event.input.remove_class("visible")
        self.table.focus()
        self.reload_log()

    def action_pause_log(self) -> None:
        log = self.query_one(Log)
        log.auto_scroll = not log.auto_scroll
        self.notify("Log follows new lines." if log.auto_scroll else "Log paused.")

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    @on(Button.Pressed)
    async def button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("do-"):
            await self.run_action(event.button.id.removeprefix("do-"))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for _key, action, label, tip in ACTIONS:
            yield SystemCommand(label, tip, partial(self.call_later, self.run_action, action))

    @on(Worker.StateChanged)
    def worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        text = str(error) if isinstance(error, PaceridError) else f"{type(error).__name__}: {error}"
        self.notify(text, title=event.worker.name, severity="error", timeout=10)
        self.log_error(text)

    def log_error(self, text: str) -> None:
        run = self.selected_run()
        if run is not None:
            self._append(run.run_id, [f"! {text}"])


def run_dashboard(args: argparse.Namespace) -> int:
    config = Path(args.config) if args.config else Path("configs/local.yaml")
    load_config(config)  # a broken config is a one-sentence error before the screen opens
    PaceridApp(config).run()
    return 0
