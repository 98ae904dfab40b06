"""A word when a run ends (finished, failed, interrupted, over budget): a toast, the terminal
bell, a desktop notification where one is available (notify-send, else OSC 9 on terminals
known to show it; nothing, never an error, elsewhere), and the config's webhook.

The toast and the bell come with every ending the dashboard sees; the desktop notification
and the webhook only the first time an ending is seen on this machine (`notify.first_time`),
so following a finished run again does not post twice. Kept apart from the app (`ui/app.py`).
"""

from __future__ import annotations

import asyncio
import os

from textual import work

from pacerid_tui.core import notify
from pacerid_tui.core.errors import PaceridError
from pacerid_tui.core.models import MetricEvent
from pacerid_tui.core.status import RunStatus
from pacerid_tui.ui.actions import RunActions
from pacerid_tui.ui.training import Training

STATES = {"done": "finished", "error": "failed", "interrupted": "interrupted"}
OSC9_TERMINALS = ("iTerm.app", "WezTerm", "ghostty")
"""TERM_PROGRAM values of terminals that show OSC 9 as a desktop notification."""


class Notices(RunActions):
    training: dict[str, Training]

    def announce_end(self, run_id: str, event: MetricEvent) -> None:
        """A terminal metrics event ("done", "error", "interrupted") of run `run_id`."""
        state = STATES[event.event]
        text = f"training {state}" + (f": {event.message}" if event.event == "error" else "")
        self._announce(run_id, state, text, f"{event.event}@{event.time}")

    def announce_stop(self, row: RunStatus) -> None:
        """A run whose instance changed state: announced when the budget stopped it."""
        if row.state_reason == "budget reached":
            self._announce(row.run_id, "over budget", "stopped: budget reached", "budget")

    def _announce(self, run_id: str, state: str, text: str, key: str) -> None:
        bad = state in ("failed", "over budget")
        self.notify(f"{run_id}: {text}", severity="error" if bad else "information", timeout=15)
        self.bell()
        row = self.rows.get(run_id)
        ending = notify.Ending(
            run_id=run_id,
            state=state,
            best_val_acc=self._best_accuracy(run_id),
            cost_usd=round(row.cost_usd, 4) if row else 0.0,
            message=text,
        )
        self.send_ending(ending, key)

    def _best_accuracy(self, run_id: str) -> float | None:
        training = self.training.get(run_id)
        seen = [e.val_acc for e in training.history() if e.val_acc is not None] if training else []
        return max(seen) if seen else self.lifecycle.registry.get(run_id).val_acc

    @work(group="notices", exit_on_error=False)
    async def send_ending(self, ending: notify.Ending, key: str) -> None:
        if not await asyncio.to_thread(notify.first_time, ending.run_id, key):
            return
        title = f"pacerid-tui: {ending.run_id} {ending.state}"
        body = ending.message + (
            f" (best val acc {ending.best_val_acc:.1%})" if ending.best_val_acc is not None else ""
        )
        if not await asyncio.to_thread(notify.desktop, title, body):
            self._osc9(f"{title}: {body}")
        try:
            url = self.lifecycle.config_of(self.lifecycle.registry.get(ending.run_id)).notify
        except PaceridError:
            return
        if url.webhook_url:
            problem = await asyncio.to_thread(notify.post_webhook, url.webhook_url, ending)
            if problem:
                self.notify(problem, title="Webhook", severity="warning", timeout=15)

    def _osc9(self, text: str) -> None:
        driver = self._driver
        if driver is not None and os.environ.get("TERM_PROGRAM") in OSC9_TERMINALS:
            clean = "".join(c for c in text if c.isprintable())  # no escape can end it early
            driver.write(f"\x1b]9;{clean}\x07")
