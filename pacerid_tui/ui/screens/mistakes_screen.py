"""`w`: what the selected finished run's model got wrong (per class, worst first, and the most
confused pairs), the lines of `core.mistakes`; escape goes back."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class MistakesScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,w,q", "dismiss(None)", "Close", id="mistakes.close")]

    def __init__(self, run_id: str, lines: list[str]) -> None:
        super().__init__()
        self.run_id = run_id
        self.lines = lines

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="mistakes-dialog", classes="dialog"):
            yield Static(f"[b]What the model got wrong[/b] — {self.run_id}\n")
            yield Static("\n".join(self.lines), id="mistakes-text", markup=False)
            yield Static("\n[dim]escape closes[/dim]")
