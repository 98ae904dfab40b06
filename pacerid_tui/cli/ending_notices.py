"""The CLI's word when a run it followed ends: the dashboard's notices, through the same core.

`all`, `train --follow` and `logs --follow` print the ending (the dashboard's toast), ring the
bell on a terminal, and hand it to `notify.announce` with the dashboard's keys: the desktop
notification and the webhook come once per ending on this machine, whichever of them saw it
first. They are announced when the command is done with the run (downloaded and terminated,
for `all`), so the cost in the webhook's JSON is the run's final one.
"""

from __future__ import annotations

import asyncio
import sys

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import MetricEvent
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise import notify


class Endings:
    """What the CLI saw end while following: per run, its notices in order and its best accuracy."""

    def __init__(self) -> None:
        self.notices: dict[str, list[notify.Notice]] = {}
        self.best: dict[str, float] = {}

    def saw(self, run_id: str, event: MetricEvent) -> None:
        if event.event == "epoch" and event.val_acc is not None:
            self.best[run_id] = max(event.val_acc, self.best.get(run_id, event.val_acc))
        notice = notify.of_event(event)
        if notice is not None:
            self.notices.setdefault(run_id, []).append(notice)

    def budget_stopped(self, run_id: str) -> None:
        self.notices.setdefault(run_id, []).append(notify.BUDGET)

    async def announce(self, lifecycle: Lifecycle) -> None:
        """Tell every ending seen (then forget them); never raises for a channel that fails."""
        pending, self.notices = self.notices, {}
        for run_id, notices in pending.items():
            for notice in notices:
                await self._announce(lifecycle, run_id, notice)

    async def _announce(self, lifecycle: Lifecycle, run_id: str, notice: notify.Notice) -> None:
        tty = sys.stderr.isatty()
        print(f"pacerid-tui: {run_id}: {notice.text}" + ("\a" if tty else ""), file=sys.stderr)
        try:
            run = lifecycle.registry.get(run_id)
            url = lifecycle.config_of(run).notify.webhook_url
            [row] = await lifecycle.statuses([run])
        except (PaceridError, OSError) as err:  # the run's own error, if any, is the news
            print(f"pacerid-tui: no notice sent for {run_id}: {err}", file=sys.stderr)
            return
        ending = notify.Ending(
            run_id=run_id,
            state=notice.state,
            best_val_acc=self.best.get(run_id, run.val_acc),
            cost_usd=round(row.cost_usd, 4),
            message=notice.text,
        )

        def terminal(escape: str) -> None:
            if tty:
                sys.stderr.write(escape)
                sys.stderr.flush()

        problem = await asyncio.to_thread(notify.announce, ending, notice.key, url, terminal)
        if problem:
            print(f"pacerid-tui: {problem}", file=sys.stderr)
