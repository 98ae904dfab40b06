"""`history` and `mistakes`: every run side by side, and what a finished run's model got wrong.

Both print what the dashboard's views show, from the same formatting (`core/results/history.py`,
`core/results/mistakes.py`); `--json` gives the data for scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from rich.console import Console
from rich.table import Table

from pacerid_tui import paths
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.results import history, mistakes
from pacerid_tui.core.steps.lifecycle import Lifecycle


async def show_history(lifecycle: Lifecycle, args: argparse.Namespace) -> int:
    rows = history.sort_rows(await history.history(lifecycle, time.time()), args.sort)
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return 0
    if not rows:
        print(f"No runs yet. Start one: pacerid-tui launch --config {paths.DEFAULT_CONFIG}")
        return 0
    grid = Table(title=f"Every run, by {args.sort}", title_justify="left")
    for name in history.HEADERS:
        grid.add_column(name)
    for row in rows:
        grid.add_row(*row.cells())
    console = Console() if sys.stdout.isatty() else Console(width=240)  # pipes: never truncate
    console.print(grid)
    return 0


def show_mistakes(lifecycle: Lifecycle, run: Run, args: argparse.Namespace) -> int:
    found = mistakes.read_report(lifecycle.results_dir(run) / "report.json")
    if args.json:
        print(json.dumps(dataclasses.asdict(found), indent=2))
        return 0
    print(f"{run.run_id}:")
    print("\n".join(mistakes.lines(found)))
    return 0
