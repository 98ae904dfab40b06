"""The first frame is laid out for the terminal it is drawn on.

Textual gives a screen its breakpoint classes (`HORIZONTAL_BREAKPOINTS`, `VERTICAL_BREAKPOINTS`)
when the screen handles its first Resize event (textual/screen.py, `Screen._on_resize`): a
screen made without them is styled and laid out for no breakpoint first, then restyled
whole, before the first frame reaches the terminal (docs/benchmarks.md, cold start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacerid_tui.ui import app as shipped
from pacerid_tui.ui.app import PaceridApp, breakpoint_class
from tests.e2e.test_cli_local import tiny_config


class Watched(PaceridApp):
    """The dashboard as shipped, noting its screen's classes when the App mounts: after the
    screen exists and before Textual's first Resize reaches it."""

    CSS_PATH = str(Path(shipped.__file__).with_name("app.tcss"))  # not beside this file
    at_mount: set[str] = set()

    def on_mount(self) -> None:
        self.at_mount = set(self.dashboard.classes)
        super().on_mount()


@pytest.mark.parametrize(
    ("size", "classes"),
    [
        ((160, 45), {"-wide", "-tall"}),
        ((80, 24), {"-narrow", "-short"}),
        ((130, 30), {"-wide", "-short"}),
    ],
)
async def test_the_screen_has_its_breakpoint_classes_before_its_first_resize(
    tmp_path: Path, size: tuple[int, int], classes: set[str]
) -> None:
    app = Watched(tiny_config(tmp_path))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert app.at_mount == classes
        assert set(app.dashboard.classes) >= classes  # and Textual's resize agrees


def test_a_breakpoint_is_the_largest_threshold_reached() -> None:
    steps = [(0, "-narrow"), (120, "-wide")]
    assert breakpoint_class(119, steps) == ["-narrow"]
    assert breakpoint_class(120, steps) == ["-wide"]
    assert breakpoint_class(5, [(10, "-big")]) == []
