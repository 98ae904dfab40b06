"""Asks which version to publish the exported model as, before sync-model touches the iOS app.

The version is checked as it is typed with the core's own pattern (vMAJOR.MINOR.PATCH), so a
typo never reaches the install; the install's own rules (never lower, never different content
under the same version) are still the core's and come back as one sentence if they refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Regex
from textual.widgets import Button, Checkbox, Input, Static

from pacerid_tui.core.results.ios_sync import VERSION_RE


@dataclass(frozen=True)
class SyncRequest:
    version: str
    force: bool


class VersionPrompt(ModalScreen[SyncRequest | None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="sync.cancel", tooltip="Sync nothing"),
    ]

    def __init__(self, run_id: str, installed: str, suggestion: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.installed = installed
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="version-dialog", classes="dialog"):
            yield Static(
                f"[b]Sync the model exported from {self.run_id} into the iOS app[/b]\n"
                f"Installed now: {self.installed}",
                id="version-text",
            )
            yield Input(
                self.suggestion,
                placeholder="vMAJOR.MINOR.PATCH",
                id="version",
                validators=[
                    Regex(VERSION_RE.pattern, failure_description="not vMAJOR.MINOR.PATCH")
                ],
                valid_empty=False,
            )
            yield Static("", id="version-error")
            yield Checkbox("Replace even if refused (--force)", id="force")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Sync (enter)", id="sync", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    @on(Input.Changed, "#version")
    def version_changed(self, event: Input.Changed) -> None:
        ok = event.validation_result is None or event.validation_result.is_valid
        self.query_one("#version-error", Static).update(
            "" if ok else "Use the form vMAJOR.MINOR.PATCH, for example v1.2.0."
        )
        self.query_one("#sync", Button).disabled = not ok

    @on(Input.Submitted, "#version")
    @on(Button.Pressed, "#sync")
    def submit(self) -> None:
        box = self.query_one("#version", Input)
        result = box.validate(box.value)
        if result is not None and not result.is_valid:
            return
        self.dismiss(SyncRequest(box.value.strip(), self.query_one("#force", Checkbox).value))

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)
