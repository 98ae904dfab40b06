"""The CLI's word when a run it supervised ends: what the run's supervisor told, shown.

The supervisor tells each ending once (`Listener.ended`: training finished, failed or was
interrupted; the budget stopped it); `all`, `train --follow` and `logs --follow` keep what they
were told and, when the command is done with the run (downloaded and terminated, for `all`, so
the cost in the webhook's JSON is the run's final one), print each ending (the dashboard's
toast), ring the bell on a terminal, and hand it to `notify.tell`: the desktop notification and
the webhook come once per ending on this machine, whichever face told it first.
"""

from __future__ import annotations

import sys

from pacerid_tui.core.kernel.models import Notice
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise import notify


class Endings:
    """The endings told while the command ran, in order, until `announce` shows them."""

    def __init__(self) -> None:
        self.told: list[tuple[str, Notice]] = []

    def add(self, run_id: str, notice: Notice) -> None:
        self.told.append((run_id, notice))

    async def announce(self, lifecycle: Lifecycle) -> None:
        """Show every ending told (then forget them); never raises for a channel that fails."""
        pending, self.told = self.told, []
        tty = sys.stderr.isatty()

        def terminal(escape: str) -> None:
            if tty:
                sys.stderr.write(escape)
                sys.stderr.flush()

        for run_id, notice in pending:
            print(f"pacerid-tui: {run_id}: {notice.text}" + ("\a" if tty else ""), file=sys.stderr)
            problem = await notify.tell(lifecycle, run_id, notice, terminal)
            if problem:
                print(f"pacerid-tui: {problem}", file=sys.stderr)
