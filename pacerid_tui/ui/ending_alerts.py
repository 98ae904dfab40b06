"""A word when a run ends (finished, failed, interrupted, over budget), as its supervisor told
it (`Listener.ended`): a toast and the terminal bell with every ending the dashboard is told,
then `notify.tell` for the once-per-machine channels (a desktop notification where one is
available, notify-send or else OSC 9 written to this terminal; the config's webhook). Nothing
here decides what ended: the core does, once, for the CLI and the dashboard alike.
"""

from __future__ import annotations

from textual import work

from pacerid_tui.core.kernel.models import Notice
from pacerid_tui.core.supervise import notify
from pacerid_tui.ui.actions import RunActions

BAD_ENDINGS = ("failed", "over budget")
"""Endings shown as errors; the others (finished, interrupted) as news."""


class Notices(RunActions):
    def show_ending(self, run_id: str, notice: Notice) -> None:
        bad = notice.state in BAD_ENDINGS
        self.notify(
            f"{run_id}: {notice.text}", severity="error" if bad else "information", timeout=15
        )
        self.bell()
        self.tell_ending(run_id, notice)

    @work(group="notices", exit_on_error=False)
    async def tell_ending(self, run_id: str, notice: Notice) -> None:
        def terminal(escape: str) -> None:
            self.call_from_thread(self._write_terminal, escape)

        problem = await notify.tell(self.lifecycle, run_id, notice, terminal)
        if problem:
            self.notify(problem, title="Webhook", severity="warning", timeout=15)

    def _write_terminal(self, escape: str) -> None:
        if self._driver is not None:
            self._driver.write(escape)
