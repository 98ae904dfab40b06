"""The dashboard: every run; the selected one's instance, cost, market, loss curve and log.

The App is the composition root. It receives its runs (`ui/runs.py`: their state and the rules
for starting their work, over the core's `Lifecycle`) by injection and owns them; its screens
and widgets call that one object instead of sharing attributes. The run steps behind the keys
are `ui/actions.py`'s `RunActions`, which also gives the runs their Textual workers and dialogs;
the selected run's panels are a widget (`ui/widgets/run_panels.py`). What the App keeps itself:
the keys, the layout, the selected run (a reactive), and the messages from the core, which it
applies to the runs and draws at most once per `FRAME_S` (toolong's batching).

No I/O on the UI thread: the registry is read in a thread at every refresh and its snapshot
kept; each step runs in a worker, which calls the core and lets the core's listener post
messages back. One handler deals with every worker error.

The first frame comes before the core: this module imports Textual, the widgets and the
kernel's plain types only, so the dashboard draws as soon as a bare Textual app would. Once the
frame is on the terminal (Textual's Ready), a thread imports the core and checks the config;
then the runs are made and the refreshes start (`start_core`). The runs, the actions and the
alerts are properties that make them on first use, so a key pressed before that (or a test
that reads `app.runs` at once) waits for the core instead of finding nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Grid, Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, Input, Log
from textual.worker import Worker, WorkerState

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.ui import key_actions, messages
from pacerid_tui.ui.key_actions import ACTIONS
from pacerid_tui.ui.messages import while_open
from pacerid_tui.ui.run_view import LOG_LINES_PER_RUN
from pacerid_tui.ui.screens.help import HelpScreen, key_rows
from pacerid_tui.ui.widgets.keys_footer import KeysFooter
from pacerid_tui.ui.widgets.run_panels import RunPanels
from pacerid_tui.ui.widgets.runs_table import RunsTable
from pacerid_tui.ui.widgets.stream_log import StreamLog

if TYPE_CHECKING:  # imported after the first frame (`start_core`)
    from pacerid_tui.ui.actions import RunActions
    from pacerid_tui.ui.ending_alerts import EndingAlerts
    from pacerid_tui.ui.runs import Runs

FRAME_S = 0.1
"""Streamed log lines and the details they change reach the screen together at most this often
(toolong's batching): one frame per tick, not one per message."""
REFRESH_S = 5.0
"""How often the providers are asked about live instances (and uptime and cost move on the
screen); PACERID_REFRESH_S overrides it. State changes slowly (a spot interruption comes with
two minutes' notice, handled on the host); each refresh redraws the table: 2 s cost 0.7 % of a
core more while following a run (docs/benchmarks.md)."""
THEMES = ("textual-dark", "textual-light")
FILTER_HINT = "filter the log (enter to apply, empty to clear)"
CORE = (
    "pacerid_tui.config",
    "pacerid_tui.ui.actions",
    "pacerid_tui.ui.ending_alerts",
    "pacerid_tui.ui.widgets.loss_chart",
)
"""What the dashboard imports once its first frame is drawn (the rest of the core with them)."""
KEYS_WAIT_S = 1.0
"""The longest the core waits for the footer's keys (a headless app without focus has none)."""
ORPHANS_S = 60.0
"""How often to look for live instances of ours that no run knows (a lost registry)."""


def breakpoint_class(length: int, breakpoints: list[tuple[int, str]]) -> list[str]:
    """The class a screen of this width (or height) gets from these breakpoints, as Textual
    chooses it: the one of the largest threshold not above it."""
    reached = [(threshold, name) for threshold, name in breakpoints if length >= threshold]
    return [max(reached)[1]] if reached else []


class PaceridApp(App[int]):
    TITLE = "pacerid-tui"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    """Below 120 columns the market panel and the buttons give their room to the rest (keys,
    the footer and the palette still reach every action; the details show the price)."""
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = key_actions.BINDINGS

    selected: reactive[str | None] = reactive[str | None](None, repaint=False, init=False)
    """The run the table points at, by id; its watcher draws that run's log and panels."""

    def __init__(
        self,
        config_path: Path,
        *,
        runs: Runs | None = None,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config_path = config_path
        self.given_runs = runs
        self.clock = clock
        self.core: tuple[Runs, RunActions, EndingAlerts] | None = None
        """The runs, their actions and the ending alerts, once made (`made`)."""
        self.refreshing = False
        """The refreshes run (`start_refreshing`)."""
        self.start_error: PaceridError | None = None
        """Why the dashboard closed at start (a broken config): `run_dashboard` says it."""
        self.refresh_s = refresh_s
        self.unshown: deque[str] = deque(maxlen=LOG_LINES_PER_RUN)
        """Lines of the selected run not yet written to the log widget (see `tick`); no more
        than the widget keeps, however fast a catch-up streams."""
        self.details_stale = False
        """The selected run's panels need drawing at the next tick."""
        self.tick_due = False
        """A tick is scheduled (ticks come only while something streams in)."""
        self.log_filter = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="top"):  # its own clip: a frame elsewhere does not redraw the table
            yield RunsTable(id="runs")
        with Horizontal(id="main"):
            yield RunPanels(lambda: self.runs, id="left")
            with Vertical(id="right"):
                with Grid(id="actions"):
                    for action in (a for a in ACTIONS if a.button):
                        button = Button(
                            f"{action.label} ({action.key})", id=f"do-{action.name}", compact=True
                        )
                        button.tooltip = action.tooltip
                        yield button
                yield StreamLog(id="log", max_lines=LOG_LINES_PER_RUN)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = f"config {self.config_path} — instances keep running after you quit"
        # A closed terminal (window, SSH session): leave as `q` would, or Textual's input
        # thread spins on the dead terminal, a core at 80 % for ever. SIGHUP says so at once;
        # under `make run` it may not come, and the terminal stops being one (checked every 2 s).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
        if os.isatty(0):
            self.set_interval(2.0, self.exit_without_terminal)

    def on_ready(self) -> None:
        """The first frame is on the terminal: now the core."""
        self.start_core()

    async def keys_drawn(self) -> None:
        """Until the footer shows its keys (a frame or two after Ready: it composes them once
        the screen's bindings are known), so the core's imports do not hold up that frame."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KEYS_WAIT_S):
                while not self.dashboard.query_one(KeysFooter).children:
                    await asyncio.sleep(0.01)
                await self.dashboard.wait_for_refresh()

    @work(group="start", exit_on_error=False)
    async def start_core(self) -> None:
        """Import the core and read the config in a thread (a broken config closes the
        dashboard with its sentence), then make the runs and start refreshing and watching."""
        await self.keys_drawn()

        def load() -> None:
            for name in CORE:
                importlib.import_module(name)
            from pacerid_tui.config import load_config

            load_config(self.config_path)

        try:
            await asyncio.to_thread(load)
        except PaceridError as err:
            self.start_error = err
            self.exit(err.exit_code)
            return
        self.start_refreshing()
        await self.dashboard.query_one(RunPanels).add_chart()

    def start_refreshing(self) -> None:
        """Once, as soon as the core is up with the app running: the refreshes, the looks for
        orphans and leftovers, and the follows of live runs that trained."""
        if self.refreshing:
            return
        self.refreshing = True
        self.set_interval(self.refresh_s, self.refresh_runs)
        self.refresh_runs()
        self.set_interval(ORPHANS_S, self.actions.look_for_orphans)
        self.actions.look_for_orphans()
        self.set_interval(ORPHANS_S, self.actions.look_for_leftovers)
        self.actions.look_for_leftovers()
        self.run_worker(self.runs.follow_trained(), group="resume", exit_on_error=False)

    def made(self) -> tuple[Runs, RunActions, EndingAlerts]:
        """The runs, their actions and the ending alerts, made on first use."""
        if self.core is None:
            from pacerid_tui.core.steps.lifecycle import Lifecycle
            from pacerid_tui.ui.actions import RunActions
            from pacerid_tui.ui.ending_alerts import EndingAlerts
            from pacerid_tui.ui.listener import AppListener
            from pacerid_tui.ui.runs import Runs

            runs = self.given_runs or Runs(
                Lifecycle(), clock=self.clock, poll_s=min(self.refresh_s, 5.0)
            )
            runs.lifecycle.listener = AppListener(self)
            actions = RunActions(
                self, runs, self.config_path, lambda: self.selected, self.refresh_runs
            )
            self.core = (runs, actions, EndingAlerts(self, runs.lifecycle))
            if self.is_running:  # a key came before `start_core`: refresh as it would have
                self.start_refreshing()
        return self.core

    @property
    def runs(self) -> Runs:
        return self.made()[0]

    @property
    def actions(self) -> RunActions:
        return self.made()[1]

    @property
    def alerts(self) -> EndingAlerts:
        return self.made()[2]

    def exit_without_terminal(self) -> None:
        if not os.isatty(0):
            self.exit()

    def on_unmount(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self.core is not None:
            self.runs.stop_supervising()

    def get_default_screen(self) -> Screen[object]:
        """The main screen, already with the breakpoint classes of the terminal's size: given
        them at its first resize instead, every widget is styled and laid out once more before
        the first frame (Ready 26 ms sooner headless; docs/benchmarks.md). Textual's resize still
        sets them, so a wrong guess only costs that again."""
        screen = Screen[object](id="_default")
        width, height = self.size
        screen.add_class(
            *breakpoint_class(width, self.HORIZONTAL_BREAKPOINTS or []),
            *breakpoint_class(height, self.VERTICAL_BREAKPOINTS or []),
        )
        return screen

    @property
    def dashboard(self) -> Screen[object]:
        """The main screen, also while a dialog or the palette is on top of it."""
        return self.screen_stack[0]

    @property
    def table(self) -> RunsTable:
        return self.dashboard.query_one(RunsTable)

    # -- drawing ----------------------------------------------------------------------------------
    def watch_selected(self) -> None:
        self.reload_log()
        self.dashboard.query_one(RunPanels).show(self.selected)

    def reload_log(self) -> None:
        log = self.dashboard.query_one(Log)
        log.clear()
        self.unshown.clear()
        if self.selected is not None:
            log.write_lines(self._visible(self.runs.view(self.selected).log))

    def _visible(self, lines: Iterable[str]) -> list[str]:
        if not self.log_filter:
            return list(lines)
        wanted = self.log_filter.lower()
        return [line for line in lines if wanted in line.lower()]

    def draw_soon(self, run_id: str, *, details: bool = False) -> None:
        """Draw at the next tick, FRAME_S from the first request: many messages, one frame.
        Only the selected run is on screen."""
        if run_id != self.selected:
            return
        self.details_stale |= details
        if not self.tick_due:
            self.tick_due = True
            self.set_timer(FRAME_S, self.tick)

    def tick(self) -> None:
        """Draw what streamed in since the last tick: the new log lines in one write, and the
        selected run's panels if a message changed them."""
        self.tick_due = False
        if not self.is_running:
            return
        if self.unshown:
            lines = list(self.unshown)
            self.unshown.clear()
            self.dashboard.query_one(Log).write_lines(self._visible(lines))
        if self.details_stale:
            self.details_stale = False
            self.dashboard.query_one(RunPanels).show(self.selected)

    # -- refresh ----------------------------------------------------------------------------------
    @work(exclusive=True, group="refresh", exit_on_error=False)
    async def refresh_runs(self) -> None:
        self.post_message(messages.StatusesRefreshed(await self.runs.refresh()))

    @on(messages.StatusesRefreshed)
    @while_open
    def statuses_refreshed(self, message: messages.StatusesRefreshed) -> None:
        for change in self.runs.take(message.rows):
            self.notify(change)
        first = self.table.selected_run_id is None
        self.table.show(message.rows)
        if first and message.rows:  # the newest run, at first
            self.table.select(message.rows[-1].run_id)
        self.selected = self.table.selected_run_id  # the table does not always say so itself
        self.dashboard.query_one(RunPanels).show(self.selected)

    @on(DataTable.RowHighlighted)
    @while_open
    def row_highlighted(self) -> None:
        self.selected = self.table.selected_run_id

    # -- messages from the core ----------------------------------------------------------------
    @on(messages.Reported)
    @on(messages.Alerted)
    @while_open
    def reported(self, message: messages.Reported | messages.Alerted) -> None:
        self.runs.view(message.run_id).activity = message.text
        self._append(message.run_id, [f"» {message.text}"])
        self.draw_soon(message.run_id, details=True)
        if isinstance(message, messages.Alerted):
            self.notify(message.text, severity="warning", timeout=30)

    @on(messages.LinesReceived)
    @while_open
    def lines_received(self, message: messages.LinesReceived) -> None:
        self._append(message.run_id, message.lines)

    def _append(self, run_id: str, lines: list[str]) -> None:
        self.runs.view(run_id).log.extend(lines)
        if run_id == self.selected:
            self.unshown.extend(lines)
            self.draw_soon(run_id)

    @on(messages.MetricReceived)
    @while_open
    def metric_received(self, message: messages.MetricReceived) -> None:
        self.runs.metric(message.run_id, message.event)
        self.draw_soon(message.run_id, details=True)

    @on(messages.SystemSampled)
    @while_open
    def system_sampled(self, message: messages.SystemSampled) -> None:
        self.runs.view(message.run_id).samples.append(message.sample)
        self.draw_soon(message.run_id, details=True)

    @on(messages.RunChanged)
    @while_open
    def run_changed(self, message: messages.RunChanged) -> None:
        if self.runs.changed(message.run):  # made here (launch, run all, adopt): selected
            self.table.show(list(self.runs.rows.values()))
            self.table.select(message.run.run_id)
            self.selected = message.run.run_id
        self.draw_soon(message.run.run_id, details=True)

    @on(messages.RunEnded)
    @while_open
    def run_ended(self, message: messages.RunEnded) -> None:
        self.alerts.show(message.run_id, message.notice)

    @on(messages.TransferProgressed)
    @while_open
    def transfer_progressed(self, message: messages.TransferProgressed) -> None:
        p = message.progress
        share = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
        self.runs.view(message.run_id).activity = (
            f"{message.step}: {share:.0%} of {p.bytes_total / 1e6:.1f} MB, "
            f"{p.files_done}/{p.files_total} files"
        )
        self.draw_soon(message.run_id, details=True)

    # -- the run actions (ui/actions.py), by key, button and palette ----------------------------
    def action_launch(self) -> None:
        self.actions.launch()

    def action_upload(self) -> None:
        self.actions.step("upload", self.runs.lifecycle.upload)

    def action_setup(self) -> None:
        self.actions.step("setup", self.runs.lifecycle.setup)

    def action_data(self) -> None:
        self.actions.step("data", self.runs.lifecycle.data)

    def action_train(self) -> None:
        self.actions.on_selected(self.runs.start_train)

    def action_follow(self) -> None:
        self.actions.follow()

    def action_download(self) -> None:
        self.actions.step("download", self.runs.lifecycle.download)

    def action_terminate(self) -> None:
        self.actions.terminate()

    def action_run_all(self) -> None:
        self.actions.run_all()

    def action_ssh(self) -> None:
        self.actions.ssh()

    def action_export(self) -> None:
        self.actions.export()

    def action_sync_model(self) -> None:
        self.actions.sync_model()

    def action_adopt(self) -> None:
        self.actions.adopt()

    def action_mistakes(self) -> None:
        self.actions.mistakes()

    def action_history(self) -> None:
        self.actions.history()

    def action_log_scale(self) -> None:
        chart = self.dashboard.query_one(RunPanels).chart
        if chart is not None:
            chart.toggle_log_scale()

    # -- app-level actions ------------------------------------------------------------------------
    def action_refresh(self) -> None:
        for view in self.runs.views.values():
            view.market_asked = None
        self.refresh_runs()

    async def action_filter(self) -> None:
        """The filter box above the log, made when first asked for: hidden until then, it
        only cost the first frame an Input's styles (9 ms)."""
        found = self.dashboard.query("#log-filter")
        box = found.first(Input) if found else Input(placeholder=FILTER_HINT, id="log-filter")
        if not found:
            await self.dashboard.query_one("#right").mount(box, before="#log")
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
        log = self.dashboard.query_one(Log)
        log.auto_scroll = not log.auto_scroll
        self.notify("Log follows new lines." if log.auto_scroll else "Log paused.")

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    def action_doctor(self) -> None:
        from pacerid_tui.ui.screens.doctor_screen import DoctorScreen  # the core's checks

        self.push_screen(DoctorScreen(self.config_path))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(key_rows(self.BINDINGS, self.get_key_display)))

    @on(Button.Pressed)
    async def button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("do-"):
            await self.run_action(event.button.id.removeprefix("do-"))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in ACTIONS:
            yield SystemCommand(
                action.label, action.tooltip, partial(self.call_later, self.run_action, action.name)
            )
        yield SystemCommand(
            "Doctor", "Check the account and config before anything is spent", self.action_doctor
        )
        yield SystemCommand(
            "Light/dark theme",
            "Switch between the dark and the light theme",
            self.action_toggle_theme,
        )

    @on(Worker.StateChanged)
    def worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        text = str(error) if isinstance(error, PaceridError) else f"{type(error).__name__}: {error}"
        self.notify(text, title=event.worker.name, severity="error", timeout=10)
        if self.selected is not None:
            self._append(self.selected, [f"! {text}"])
