"""The dashboard: every run; the selected one's instance, cost, market, loss curve and log.

The app receives its backend (a `Lifecycle` over a registry) by injection and never does I/O on
the UI thread: each step runs in a worker (group = the run), which calls the core and lets the
core's listener post messages back. One handler deals with every worker error. The run steps
themselves (launch form, export, sync-model, terminate…) live in `ui/actions.py`; what fills
the selected run's panels (its market, its curve read back) in `ui/selected.py`; what the
dashboard holds for each run, one `RunView` per run, in `ui/run_view.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Log
from textual.worker import Worker, WorkerState

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import PaceridError, UsageError
from pacerid_tui.core.kernel.models import Instance
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.core.steps.status import RunStatus
from pacerid_tui.ui import messages
from pacerid_tui.ui.actions import ORPHANS_S, RunActions
from pacerid_tui.ui.ending_alerts import Notices
from pacerid_tui.ui.key_actions import ACTIONS
from pacerid_tui.ui.listener import AppListener
from pacerid_tui.ui.messages import while_open
from pacerid_tui.ui.run_view import LOG_LINES_PER_RUN, RunView
from pacerid_tui.ui.screens.doctor_screen import DoctorScreen
from pacerid_tui.ui.screens.help import HelpScreen
from pacerid_tui.ui.selected import SelectedRun
from pacerid_tui.ui.training import Training
from pacerid_tui.ui.widgets.host_panel import HostPanel
from pacerid_tui.ui.widgets.loss_chart import LossChart
from pacerid_tui.ui.widgets.market_panel import MarketPanel
from pacerid_tui.ui.widgets.run_details import RunDetails
from pacerid_tui.ui.widgets.runs_table import RunsTable
from pacerid_tui.ui.widgets.stream_log import StreamLog

FRAME_S = 0.1
"""Streamed log lines and the details they change reach the screen together at most this often
(toolong's batching): one frame per tick, not one per message."""
REFRESH_S = 5.0
"""How often the providers are asked about live instances (and uptime and cost move on the
screen); PACERID_REFRESH_S overrides it. State changes slowly (a spot interruption comes with
two minutes' notice, handled on the host); each refresh redraws the table: 2 s cost 0.7 % of a
core more while following a run (docs/benchmarks.md)."""
THEMES = ("textual-dark", "textual-light")


class PaceridApp(SelectedRun, Notices, RunActions, App[int]):
    TITLE = "pacerid-tui"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    """Below 120 columns the market panel and the buttons give their room to the rest (keys,
    the footer and the palette still reach every action; the details show the price)."""
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        *(
            Binding(a.key, a.name, a.label, tooltip=a.tooltip, id=f"run.{a.name}", show=a.footer)
            for a in ACTIONS
        ),
        Binding(
            "f5,ctrl+r", "refresh", "Refresh", tooltip="Ask the providers now", id="app.refresh"
        ),
        Binding(
            "slash", "filter", "Filter log", tooltip="Show only matching lines", id="log.filter"
        ),
        Binding(
            "p",
            "pause_log",
            "Pause log",
            tooltip="Stop or resume auto-scroll",
            id="log.pause",
            show=False,
        ),
        Binding(
            "ctrl+t",
            "toggle_theme",
            "Light/dark",
            tooltip="Switch between the dark and the light theme",
            id="app.theme",
            show=False,
        ),
        Binding(
            "c",
            "doctor",
            "Doctor",
            tooltip="Check the account and config before anything is spent",
            id="app.doctor",
            show=False,
        ),
        Binding("question_mark", "help", "Keys", tooltip="Show every key", id="app.help"),
        Binding("q", "quit", "Quit", tooltip="Leave; instances keep running", id="app.quit"),
    ]

    def __init__(
        self,
        config_path: Path,
        registry: Registry | None = None,
        *,
        lifecycle: Lifecycle | None = None,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config_path = config_path
        self.lifecycle = lifecycle or Lifecycle(registry or Registry(paths.registry_file()))
        self.lifecycle.listener = AppListener(self)
        self.refresh_s = refresh_s
        self.clock = clock
        self.rows: dict[str, RunStatus] = {}
        self.views: dict[str, RunView] = {}
        """Each run's view state, by run id (`ui/run_view.py`); made on first use (`view`)."""
        self.unshown: deque[str] = deque(maxlen=LOG_LINES_PER_RUN)
        """Lines of the selected run not yet written to the log widget (see `tick`); no more
        than the widget keeps, however fast a catch-up streams."""
        self.details_stale = False
        """The selected run's panels need drawing at the next tick."""
        self.tick_due = False
        """A tick is scheduled (ticks come only while something streams in)."""
        self.throughput: dict[str, float] = {}
        """Measured training images per second by instance type ("local" for the local one)."""
        self.orphans: list[Instance] = []
        """Live instances of ours that no run knows, as last looked for (`a` adopts them)."""
        self.orphans_told: set[str] = set()
        self.log_filter = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="top"):  # its own clip: a frame elsewhere does not redraw the table
            yield RunsTable(id="runs")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                with Horizontal(id="selected"):
                    yield RunDetails(id="details")
                    yield MarketPanel(id="market")
                yield HostPanel(id="host")
                yield LossChart(id="chart")
            with Vertical(id="right"):
                with Grid(id="actions"):
                    for action in (a for a in ACTIONS if a.button):
                        button = Button(
                            f"{action.label} ({action.key})", id=f"do-{action.name}", compact=True
                        )
                        button.tooltip = action.tooltip
                        yield button
                yield Input(
                    placeholder="filter the log (enter to apply, empty to clear)", id="log-filter"
                )
                yield StreamLog(id="log", max_lines=LOG_LINES_PER_RUN)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"config {self.config_path} — instances keep running after you quit"
        # A closed terminal (window, SSH session): leave as `q` would, or Textual's input
        # thread spins on the dead terminal, a core at 80 % for ever. SIGHUP says so at once;
        # under `make run` it may not come, and the terminal stops being one (checked every 2 s).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
        if os.isatty(0):
            self.set_interval(2.0, self.exit_without_terminal)
        self.set_interval(self.refresh_s, self.refresh_runs)
        self.refresh_runs()
        self.set_interval(ORPHANS_S, self.look_for_orphans)
        self.look_for_orphans()
        for run in self.lifecycle.registry.runs():
            if "train" in run.steps_done and run.instance and run.instance.state.is_alive:
                self.start_follow(run)

    def exit_without_terminal(self) -> None:
        if not os.isatty(0):
            self.exit()

    def on_unmount(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        self.stop_supervising()

    def reload_log(self) -> None:
        log = self.dashboard.query_one(Log)
        log.clear()
        self.unshown.clear()
        run = self.selected_run()
        if run is not None:
            log.write_lines(self._visible(self.view(run.run_id).log))

    def _visible(self, lines: Iterable[str]) -> list[str]:
        if not self.log_filter:
            return list(lines)
        wanted = self.log_filter.lower()
        return [line for line in lines if wanted in line.lower()]

    def draw_soon(self, *, details: bool = False) -> None:
        """Draw at the next tick, FRAME_S from the first request: many messages, one frame."""
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
            self.show_selected()

    # -- refresh ----------------------------------------------------------------------------------
    @work(exclusive=True, group="refresh", exit_on_error=False)
    async def refresh_runs(self) -> None:
        runs = await self.lifecycle.refresh(self.lifecycle.registry.runs())
        rows = await self.lifecycle.statuses(runs, now=self.clock())
        self.post_message(messages.StatusesRefreshed(rows))

    @on(messages.StatusesRefreshed)
    @while_open
    def statuses_refreshed(self, message: messages.StatusesRefreshed) -> None:
        for row in message.rows:
            before = self.rows.get(row.run_id)
            if before is not None and before.state != row.state:
                reason = f" ({row.state_reason})" if row.state_reason else ""
                self.notify(f"{row.run_id}: {row.state}{reason}")
            if row.state not in ("terminated", "unknown", "not launched"):
                self.start_watch(row.run_id)  # its money rules, whatever else runs
        self.rows = {row.run_id: row for row in message.rows}
        selected = self.table.selected_run_id
        self.table.show(message.rows)
        if selected is None and message.rows:
            self.table.select(message.rows[-1].run_id)
        if self.table.selected_run_id != selected:  # the table does not always say so itself
            self.reload_log()
        self.show_selected()

    @on(DataTable.RowHighlighted)
    @while_open
    def row_highlighted(self) -> None:
        self.show_selected()
        self.reload_log()

    # -- messages from the core ----------------------------------------------------------------
    @on(messages.Reported)
    @while_open
    def reported(self, message: messages.Reported) -> None:
        self.view(message.run_id).activity = message.text
        self._append(message.run_id, [f"» {message.text}"])
        if message.run_id == self.table.selected_run_id:
            self.draw_soon(details=True)

    @on(messages.Alerted)
    @while_open
    def alerted(self, message: messages.Alerted) -> None:
        self.view(message.run_id).activity = message.text
        self._append(message.run_id, [f"» {message.text}"])
        self.notify(message.text, severity="warning", timeout=30)

    @on(messages.LinesReceived)
    @while_open
    def lines_received(self, message: messages.LinesReceived) -> None:
        self._append(message.run_id, message.lines)

    def _append(self, run_id: str, lines: list[str]) -> None:
        self.view(run_id).log.extend(lines)
        if run_id == self.table.selected_run_id:
            self.unshown.extend(lines)
            self.draw_soon()

    @on(messages.MetricReceived)
    @while_open
    def metric_received(self, message: messages.MetricReceived) -> None:
        event = message.event
        view = self.view(message.run_id)
        if view.training is None:
            view.training = Training()
        training = view.training
        training.add(event)
        if event.event == "epoch":
            self._measured(message.run_id, training)
        if message.run_id == self.table.selected_run_id:
            self.draw_soon(details=True)

    @on(messages.RunEnded)
    @while_open
    def run_ended(self, message: messages.RunEnded) -> None:
        self.show_ending(message.run_id, message.notice)

    @on(messages.RunChanged)
    @while_open
    def run_changed(self, message: messages.RunChanged) -> None:
        if message.run.run_id == self.table.selected_run_id:
            self.draw_soon(details=True)

    @on(messages.TransferProgressed)
    @while_open
    def transfer_progressed(self, message: messages.TransferProgressed) -> None:
        p = message.progress
        share = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
        self.view(message.run_id).activity = (
            f"{message.step}: {share:.0%} of {p.bytes_total / 1e6:.1f} MB, "
            f"{p.files_done}/{p.files_total} files"
        )
        if message.run_id == self.table.selected_run_id:
            self.draw_soon(details=True)

    # -- app-level actions ------------------------------------------------------------------------
    def action_refresh(self) -> None:
        for view in self.views.values():
            view.market_asked = None
        self.refresh_runs()

    def action_filter(self) -> None:
        box = self.dashboard.query_one("#log-filter", Input)
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
        self.push_screen(DoctorScreen(self.config_path))

    def action_help(self) -> None:
        keys: dict[str, list[str]] = {}  # by action, in the bindings' order
        about: dict[str, tuple[str, str]] = {}
        for binding in Binding.make_bindings(self.BINDINGS):  # "f5,ctrl+r" comes as two
            keys.setdefault(binding.action, []).append(self.get_key_display(binding))
            about[binding.action] = (binding.description, binding.tooltip)
        rows = [(" / ".join(shown), *about[action]) for action, shown in keys.items()]
        ctrl_p = self.get_key_display(Binding("ctrl+p", ""))
        rows.append((ctrl_p, "Commands", "Every action and theme by name"))
        self.push_screen(HelpScreen(rows))

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
            "Doctor",
            "Check the account and config before anything is spent",
            self.action_doctor,
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
        self.log_error(text)

    def log_error(self, text: str) -> None:
        run = self.selected_run()
        if run is not None:
            self._append(run.run_id, [f"! {text}"])


def refresh_interval(text: str | None) -> float:
    """PACERID_REFRESH_S as seconds (at least 0.2); unset or empty means the default."""
    if not text:
        return REFRESH_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0.2 <= seconds < math.inf:  # nan compares false: refused too
        raise UsageError(
            f"PACERID_REFRESH_S={text!r} is not a number of seconds ≥ 0.2; set it to e.g. 5."
        )
    return seconds


def run_dashboard(args: argparse.Namespace) -> int:
    config = paths.config_file(args.config)
    load_config(config)  # a broken config is a one-sentence error before the screen opens
    app = PaceridApp(config, refresh_s=refresh_interval(os.environ.get("PACERID_REFRESH_S")))
    app.run()
    live = [
        run
        for run in app.lifecycle.registry.runs()
        if run.instance is not None and run.instance.state.is_alive
    ]
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        for run in live:
            assert run.instance is not None
            print(
                f"{run.run_id}: instance {run.instance.instance_id} keeps running "
                f"({run.provider}); `pacerid-tui` follows it again, `pacerid-tui terminate "
                f"--run {run.run_id}` stops it."
            )
    return 0
