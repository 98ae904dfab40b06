"""The CLI's word when a run it supervised ends, or has news while it goes on: what the run's
supervisor told, shown.

The supervisor tells each ending once (`Listener.ended`: training finished, failed or was
interrupted; the budget stopped it); `all`, `train --follow` and `logs --follow` keep what they
were told and, when the command is done with the run (downloaded and terminated, for `all`, so
the cost in the webhook's JSON is the run's final one), print each ending (the dashboard's
toast), ring the bell on a terminal, and hand it to `notify.tell`: the desktop notification and
the webhook come once per ending on this machine, whichever face told it first. News while the
run goes on (`Listener.noticed`: its forecast passes its budget) cannot wait for the end: it is
printed and handed to `notify.tell` at once, in a task the command waits for before it exits.
"""

from __future__ import annotations

import asyncio
import sys

from pacerid_tui.core.kernel.models import Notice
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise import notify


class Endings:
    """The endings told while the command ran, in order, until `announce` shows them."""

    def __init__(self) -> None:
        self.told: list[tuple[str, Notice]] = []
        self.lifecycle: Lifecycle | None = None
        """The command's lifecycle, for the news told at once (`now`)."""
        self._telling: list[asyncio.Task[None]] = []

    def add(self, run_id: str, notice: Notice) -> None:
        self.told.append((run_id, notice))

    def now(self, run_id: str, notice: Notice) -> None:
        """Show this notice at once and start its channels (called in the command's loop)."""
        if self.lifecycle is None:  # no command runs: nothing can send it, so show it only
            _show(run_id, notice)
            return
        lifecycle = self.lifecycle
        self._telling.append(asyncio.ensure_future(_show_and_tell(lifecycle, run_id, notice)))

    async def announce(self, lifecycle: Lifecycle) -> None:
        """Show every ending told (then forget them), after the news still being sent; never
        raises for a channel that fails."""
        telling, self._telling = self._telling, []
        await asyncio.gather(*telling, return_exceptions=True)
        pending, self.told = self.told, []
        for run_id, notice in pending:
            await _show_and_tell(lifecycle, run_id, notice)


def _show(run_id: str, notice: Notice) -> None:
    tty = sys.stderr.isatty()
    print(f"pacerid-tui: {run_id}: {notice.text}" + ("\a" if tty else ""), file=sys.stderr)


async def _show_and_tell(lifecycle: Lifecycle, run_id: str, notice: Notice) -> None:
    """The line and the bell, then the once-per-machine channels; a failed one said in a line."""
    tty = sys.stderr.isatty()

    def terminal(escape: str) -> None:
        if tty:
            sys.stderr.write(escape)
            sys.stderr.flush()

    _show(run_id, notice)
    problem = await notify.tell(lifecycle, run_id, notice, terminal)
    if problem:
        print(f"pacerid-tui: {problem}", file=sys.stderr)
