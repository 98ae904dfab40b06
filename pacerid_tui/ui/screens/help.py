"""`?`: every key of the dashboard on one screen, made from the app's own bindings so the list
can never miss one; escape (or `?` again) goes back."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


def key_rows(
    bindings: Iterable[BindingType], shown: Callable[[Binding], str]
) -> list[tuple[str, str, str]]:
    """(keys as `shown`, what they do, more words) per action, in the bindings' order, then the
    palette's key."""
    keys: dict[str, list[str]] = {}
    about: dict[str, tuple[str, str]] = {}
    for binding in Binding.make_bindings(bindings):  # "f5,ctrl+r" comes as two
        keys.setdefault(binding.action, []).append(shown(binding))
        about[binding.action] = (binding.description, binding.tooltip)
    rows = [(" / ".join(each), *about[action]) for action, each in keys.items()]
    return [*rows, (shown(Binding("ctrl+p", "")), "Commands", "Every action and theme by name")]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss(None)", "Close", id="help.close"),
    ]

    def __init__(self, keys: Iterable[tuple[str, str, str]]) -> None:
        super().__init__()
        self.keys = list(keys)
        """(key as shown, what it does, more words) for every binding, in order."""

    def compose(self) -> ComposeResult:
        width = max(len(key) for key, _, _ in self.keys)
        lines = [
            f"[b]{escape(key):>{width}}[/b]  {escape(label):<12} [dim]{escape(more)}[/dim]"
            for key, label, more in self.keys
        ]
        with Vertical(id="help-dialog", classes="dialog"):
            yield Static("[b]Keys[/b] — every step is also a button and a command (ctrl+p)\n")
            yield Static("\n".join(lines), id="help-keys")
            yield Static("\n[dim]escape closes[/dim]")
