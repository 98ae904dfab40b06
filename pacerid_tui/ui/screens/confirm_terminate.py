"""Asked before terminating a run whose results are still only on the host."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmTerminate(ModalScreen[str]):
    """Dismisses with "download-terminate", "terminate" or "cancel"."""

    BINDINGS = [
        Binding(
            "escape",
            "dismiss('cancel')",
            "Cancel",
            id="confirm.cancel",
            tooltip="Keep the instance running",
        ),
        Binding(
            "d",
            "dismiss('download-terminate')",
            "Download, then terminate",
            id="confirm.download",
            tooltip="Fetch results first, then stop billing",
        ),
        Binding(
            "x",
            "dismiss('terminate')",
            "Terminate now",
            id="confirm.terminate",
            tooltip="Stop billing now; results on the host are lost",
        ),
    ]

    def __init__(self, run_id: str, what_is_lost: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.what_is_lost = what_is_lost

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(
                f"[b]Terminate {self.run_id}?[/b]\n\n{self.what_is_lost}", id="confirm-text"
            )
            with Horizontal(id="confirm-buttons"):
                yield Button(
                    "Download, then terminate (d)", id="download-terminate", variant="primary"
                )
                yield Button("Terminate now (x)", id="terminate", variant="error")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")
