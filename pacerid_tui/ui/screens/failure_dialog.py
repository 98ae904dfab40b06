"""Shown when the dashboard's run all fails at a step: keep the host, or terminate it.

Nobody answering must not leave money running (the user may have walked away), so the dialog
counts down and terminates by itself after AUTO_TERMINATE_S.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

AUTO_TERMINATE_S = 60
"""Seconds without an answer before the host is terminated."""


class FailureDialog(ModalScreen[str]):
    """Dismisses with "keep" or "terminate" (also when the countdown ends)."""

    BINDINGS = [
        Binding(
            "k",
            "dismiss('keep')",
            "Keep the host",
            id="failure.keep",
            tooltip="Keep the host running (billing) to look at it; x terminates it later",
        ),
        Binding(
            "x",
            "dismiss('terminate')",
            "Terminate now",
            id="failure.terminate",
            tooltip="Stop billing now; what existed is already downloaded",
        ),
        Binding("escape", "dismiss('terminate')", "Terminate", show=False),
    ]

    def __init__(self, sentence: str) -> None:
        super().__init__()
        self.sentence = sentence
        self.left = AUTO_TERMINATE_S

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(f"[b]Run all failed[/b]\n\n{self.sentence}.", id="failure-text")
            yield Static(self.countdown(), id="failure-countdown")
            with Horizontal(id="confirm-buttons"):
                yield Button("Keep the host (k)", id="keep")
                yield Button("Terminate now (x)", id="terminate", variant="error")

    def on_mount(self) -> None:
        self.set_interval(1.0, self.tick)

    def countdown(self) -> str:
        return f"Terminating the host by itself in {self.left} s."

    def tick(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.dismiss("terminate")
            return
        self.query_one("#failure-countdown", Static).update(self.countdown())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "terminate")
