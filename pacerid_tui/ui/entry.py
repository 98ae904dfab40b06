"""How the command line opens the dashboard: the refresh interval from the environment, the
app run to its end, then a line for every instance left running (they keep billing)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os

from pacerid_tui import paths
from pacerid_tui.core.kernel.errors import UsageError
from pacerid_tui.ui.app import REFRESH_S, PaceridApp


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
    app = PaceridApp(config, refresh_s=refresh_interval(os.environ.get("PACERID_REFRESH_S")))
    app.run()
    if app.start_error is not None:  # a broken config: its one sentence, once the screen is gone
        raise app.start_error
    live = [
        run
        for run in app.runs.lifecycle.registry.runs()
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
