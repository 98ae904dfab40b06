"""A word when a run ends (finished, failed, interrupted, over budget) or stalls, or when its
forecast passes its budget, as its supervisor told it (`Listener.ended`, `Listener.noticed`): a
toast and the terminal bell with every notice the dashboard is told, then `notify.tell` for the
once-per-machine channels (a desktop notification where one is available, notify-send or else
OSC 9 written to this terminal; the config's webhook). Nothing here decides what ended: the
core does, once, for the CLI and the dashboard alike.
"""

from __future__ import annotations

from textual.app import App

from pacerid_tui.core.kernel.models import Notice
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise import notify

BAD_ENDINGS = ("failed", "over budget", "stalled", notify.AHEAD_OF_BUDGET)
"""Notices shown as errors; the others (finished, interrupted) as news."""


class EndingAlerts:
    def __init__(self, app: App[int], lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    def show(self, run_id: str, notice: Notice) -> None:
        bad = notice.state in BAD_ENDINGS
        self.app.notify(
            f"{run_id}: {notice.text}", severity="error" if bad else "information", timeout=15
        )
        self.app.bell()
        self.app.run_worker(self._tell(run_id, notice), group="notices", exit_on_error=False)

    async def _tell(self, run_id: str, notice: Notice) -> None:
        def terminal(escape: str) -> None:
            self.app.call_from_thread(self._write_terminal, escape)

        problem = await notify.tell(self.lifecycle, run_id, notice, terminal)
        if problem:
            self.app.notify(problem, title="Webhook", severity="warning", timeout=15)

    def _write_terminal(self, escape: str) -> None:
        driver = self.app._driver  # what Textual writes the screen through
        if driver is not None:
            driver.write(escape)
