"""The footer: Textual's `Footer`, composed again only when what it shows has changed.

Textual's footer throws its keys away and composes them anew at every bindings signal of its
screen (textual/widgets/_footer.py, `bindings_changed`): the screen's resume, its first focus,
every focus change. With the dashboard's thirteen keys that happened three times in the first
quarter second, each time the same keys, and again at every Tab between panes. Here a signal
recomposes only when the bindings on show (key, enabled, tooltip) or the palette key differ
from the ones last composed.

Each key is also made in the footer's style. Textual's `FooterKey` starts compact and is then
bound to its footer's `compact` (not compact here), so every key was styled twice on mount;
the palette's key is not bound and stays compact, as Textual draws it.
Both together: 70 ms of CPU less before the keys are on the screen (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeysFooter(Footer):
    composed_for: Hashable = None
    """What the keys on show were composed from (`shown`); None before the first compose."""

    def shown(self) -> Hashable:
        """Everything the footer's compose reads from its screen: the bindings it shows, in
        order, and the command palette's (shown apart, on the right)."""
        active = self.screen.active_bindings
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        return (
            self.show_command_palette,
            palette[1:] if palette else None,
            tuple(
                (binding, enabled, tooltip)
                for _, binding, enabled, tooltip in active.values()
                if binding.show
            ),
        )

    async def recompose(self) -> None:
        shown = self.shown()
        if self.children and shown == self.composed_for:
            return
        self.composed_for = shown
        await super().recompose()

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            # as its binding to `compact` would leave it (the palette's key has none: compact)
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget
