"""The footer composes its keys again only when the keys on show change.

Textual's `Footer` recomposes at every bindings signal of its screen (textual/widgets/_footer.py,
`bindings_changed`, published by `Screen.refresh_bindings` on every focus change): each time new
key widgets, mounted and styled, for the same keys. `KeysFooter` keeps them until what it
shows differs."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets._footer import FooterKey

from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.widgets.keys_footer import KeysFooter
from tests.e2e.test_cli_local import tiny_config
from tests.ui.test_first_frame import Watched


class Pane(Widget, can_focus=True):
    DEFAULT_CSS = "Pane { height: 3; }"


class ChartPane(Pane):
    BINDINGS = [Binding("z", "zoom", "Zoom")]


class Panes(App[None]):
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Pane(id="one")
        yield Pane(id="two")
        yield ChartPane(id="chart")
        yield KeysFooter()


def keys(footer: KeysFooter) -> list[FooterKey]:
    return list(footer.query(FooterKey))


async def test_focus_moving_between_panes_keeps_the_keys_and_new_bindings_show() -> None:
    app = Panes()
    async with app.run_test(size=(80, 12)) as pilot:
        footer = app.query_one(KeysFooter)
        app.query_one("#one").focus()
        await pilot.pause()
        await pilot.pause()
        first = keys(footer)
        assert [key.key for key in first] == ["q", "r", "ctrl+p"]

        app.query_one("#two").focus()  # the same bindings on show: the same key widgets
        await pilot.pause()
        await pilot.pause()
        assert keys(footer) == first

        app.query_one("#chart").focus()  # its own key: composed again, with it
        await pilot.pause()
        await pilot.pause()
        assert [key.key for key in keys(footer)] == ["z", "q", "r", "ctrl+p"]

        app.query_one("#one").focus()
        await pilot.pause()
        await pilot.pause()
        assert [key.key for key in keys(footer)] == ["q", "r", "ctrl+p"]
        # styled as Textual's keys end up: compact as the footer is, the palette's compact
        assert [key.has_class("-compact") for key in keys(footer)] == [False, False, True]


async def test_the_dashboards_keys_are_composed_once_and_kept_across_tab(tmp_path: Path) -> None:
    app: PaceridApp = Watched(tiny_config(tmp_path))
    async with app.run_test(size=(160, 45)) as pilot:
        await app.keys_drawn()
        await pilot.pause()
        footer = app.dashboard.query_one(KeysFooter)
        first = keys(footer)
        assert "Quit" in [key.description for key in first]
        await pilot.press("tab")
        await pilot.pause()
        await pilot.pause()
        assert keys(footer) == first
