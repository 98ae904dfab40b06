"""Asked when a run's instance is gone and nobody knows why: relaunching spends money, so only
the user decides (EC2 forgets ended instances after about an hour, so the reason may be lost)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class VanishedDialog(ModalScreen[bool]):
    """Dismisses with True (relaunch and resume) or False (leave the run ended)."""

    BINDINGS = [
        Binding("r", "dismiss(True)", "Relaunch", tooltip="A new instance resumes the run"),
        Binding("escape", "dismiss(False)", "Leave it ended", tooltip="Nothing is launched"),
    ]

    def __init__(self, run_id: str, instance_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.instance_id = instance_id

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(
                f"Instance {self.instance_id} of {self.run_id} is gone and nobody knows why "
                "(EC2 forgets ended instances after about an hour). Relaunch it and resume "
                "from the newest checkpoint here?",
                id="vanished-text",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Relaunch (r)", id="relaunch", variant="primary")
                yield Button("Leave it ended (esc)", id="leave")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "relaunch")
