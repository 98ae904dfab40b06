"""A word when a run ends (finished, failed, interrupted, over budget): a toast, the terminal
bell, a desktop notification where one is available (notify-send, else OSC 9 on terminals
known to show it; nothing, never an error, elsewhere), and the config's webhook.

The toast and the bell come with every ending the dashboard sees; the desktop notification
and the webhook only the first time an ending is seen on this machine (`notify.announce`, which
the CLI uses too), so following a finished run again does not post twice. Kept apart from the
app (`ui/app.py`).
"""

from __future__ import annotations

import asyncio

from textual import work

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import MetricEvent
from pacerid_tui.core.steps.status import RunStatus
from pacerid_tui.core.supervise import notify
from pacerid_tui.ui.actions import RunActions


class Notices(RunActions):
    def announce_end(self, run_id: str, event: MetricEvent) -> None:
        """A terminal metrics event ("done", "error", "interrupted") of run `run_id`."""
        notice = notify.of_event(event)
        if notice is not None:
            self._announce(run_id, notice)

    def announce_stop(self, row: RunStatus) -> None:
        """A run whose instance changed state: announced when the budget stopped it."""
        if row.state_reason == "budget reached":
            self._announce(row.run_id, notify.BUDGET)

    def _announce(self, run_id: str, notice: notify.Notice) -> None:
        bad = notice.state in ("failed", "over budget")
        self.notify(
            f"{run_id}: {notice.text}", severity="error" if bad else "information", timeout=15
        )
        self.bell()
        row = self.rows.get(run_id)
        ending = notify.Ending(
            run_id=run_id,
            state=notice.state,
            best_val_acc=self._best_accuracy(run_id),
            cost_usd=round(row.cost_usd, 4) if row else 0.0,
            message=notice.text,
        )
        self.send_ending(ending, notice.key)

    def _best_accuracy(self, run_id: str) -> float | None:
        training = self.view(run_id).training
        seen = [e.val_acc for e in training.history() if e.val_acc is not None] if training else []
        return max(seen) if seen else self.lifecycle.registry.get(run_id).val_acc

    @work(group="notices", exit_on_error=False)
    async def send_ending(self, ending: notify.Ending, key: str) -> None:
        try:
            run = self.lifecycle.registry.get(ending.run_id)
            webhook = self.lifecycle.config_of(run).notify.webhook_url
        except PaceridError:
            webhook = None
        problem = await asyncio.to_thread(
            notify.announce,
            ending,
            key,
            webhook,
            lambda escape: self.call_from_thread(self._write_terminal, escape),
        )
        if problem:
            self.notify(problem, title="Webhook", severity="warning", timeout=15)

    def _write_terminal(self, escape: str) -> None:
        if self._driver is not None:
            self._driver.write(escape)
