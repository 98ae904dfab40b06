"""What the core tells the CLI or the dashboard about a run: the `Listener` callback surface.

The steps (`lifecycle.py`) and the supervisor report through it, so neither knows which face
is listening: the CLI prints (`cli/commands.Printer`), the dashboard posts messages
(`ui/listener.AppListener`). Every callback has a default (most drop what they hear), so a
face overrides only what it shows.
"""

from __future__ import annotations

from pacerid_tui.core.kernel.host_records import SystemSample
from pacerid_tui.core.kernel.models import MetricEvent, Notice, Run
from pacerid_tui.core.remote import sync


class Listener:
    """What the lifecycle tells its caller. Override what you need; the rest is dropped."""

    def report(self, run_id: str, message: str) -> None:
        """One sentence of progress."""

    def lines(self, run_id: str, source: str, lines: list[str]) -> None:
        """Log lines from the host: source is setup, data or train."""

    def metric(self, run_id: str, event: MetricEvent) -> None:
        """One metrics.jsonl event from the trainer."""

    def progress(self, run_id: str, step: str, progress: sync.Progress) -> None:
        """Transfer progress of upload or download."""

    def system(self, run_id: str, sample: SystemSample) -> None:
        """One host sample from the trainer's system.jsonl."""

    def run_changed(self, run: Run) -> None:
        """The registry entry of a run changed."""

    def alert(self, run_id: str, message: str) -> None:
        """Something the user must notice (budget warnings, stops); by default a report."""
        self.report(run_id, message)

    def ended(self, run_id: str, notice: Notice) -> None:
        """The run's training ended, its budget stopped it, or it stalled: told once, by its
        supervisor."""

    def noticed(self, run_id: str, notice: Notice) -> None:
        """News while the run goes on (its forecast passed the budget), to show and send now."""
        self.alert(run_id, notice.text)
