"""`c`: the doctor's checks for the dashboard's config, on one screen.

The checks are the core's (`core/steps/doctor.py`), asked in a worker since AWS answers take a
moment; the screen shows "checking…" until they come, then one row per check. Escape closes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.checks import FAIL, OK, Check
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.steps.doctor import run_checks

MARKS = {OK: "[green]ok  [/]", FAIL: "[b red]fail[/]"}


def rows(checks: list[Check]) -> str:
    lines = []
    width = max((len(check.check) for check in checks), default=0)
    for check in checks:
        mark = MARKS.get(check.status, "[yellow]warn[/]")
        lines.append(f"{mark} [b]{check.check:<{width}}[/b] {escape(check.detail)}")
        if check.fix:
            lines.append(f"{'':{width + 6}}[dim]→ {escape(check.fix)}[/dim]")
    return "\n".join(lines)


class DoctorScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,c,q", "dismiss(None)", "Close", id="doctor.close", tooltip="Back"),
    ]

    def __init__(self, config_path: Path) -> None:
        super().__init__()
        self.config_path = config_path

    def compose(self) -> ComposeResult:
        with Vertical(id="doctor-dialog", classes="dialog"):
            yield Static(f"[b]Doctor — {escape(str(self.config_path))}[/b]\n")
            with VerticalScroll():
                yield Static("Checking…", id="doctor-checks")
            yield Static("\n[dim]escape closes; `pacerid-tui doctor` prints the same[/dim]")

    def on_mount(self) -> None:
        self.check()

    @work(exclusive=True, group="doctor", exit_on_error=False)
    async def check(self) -> None:
        out = self.query_one("#doctor-checks", Static)
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
            checks = await asyncio.to_thread(run_checks, config)
        except PaceridError as err:
            out.update(f"[b red]{escape(str(err))}[/]")
            return
        out.update(rows(checks))
