"""`pacerid-tui doctor`: the core's checks, printed as a table (or JSON for scripts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.checks import FAIL, OK, Check
from pacerid_tui.core.steps.doctor import exit_code, run_checks

STYLES = {OK: "green", FAIL: "bold red"}


def doctor(config_path: Path, as_json: bool) -> int:
    checks = run_checks(load_config(config_path))
    if as_json:
        print(json.dumps([check.as_dict() for check in checks], indent=2))
    else:
        console = Console() if sys.stdout.isatty() else Console(width=200)
        console.print(table(checks, config_path))
    return exit_code(checks)


def table(checks: list[Check], config_path: Path) -> Table:
    grid = Table(title=f"Doctor — {config_path}", title_justify="left")
    for name in ("Check", "Status", "Detail", "Fix"):
        grid.add_column(name, no_wrap=name in ("Check", "Status"))
    for check in checks:
        style = STYLES.get(check.status, "yellow")
        grid.add_row(check.check, f"[{style}]{check.status}[/]", check.detail, check.fix)
    return grid
