"""Snapshots of the dashboard's screens, from the fixed demo in `demo.py` (clock, runs, prices).

Regenerate after a deliberate change of the look with
`pytest tests/ui/test_snapshots.py --snapshot-update`, and look at the report before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Static

from pacerid_tui.ui import app as app_module
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens.doctor_screen import DoctorScreen
from pacerid_tui.ui.screens.history_screen import HistoryScreen
from pacerid_tui.ui.screens.launch_form import LaunchForm
from pacerid_tui.ui.screens.mistakes_screen import MistakesScreen
from tests.ui.demo import AWS_RUN, SIZE, demo_app, settle, wait_or_fail


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PaceridApp:
    monkeypatch.chdir(tmp_path)  # the header shows the config path as given: relative
    return demo_app(tmp_path)


def test_main_screen(demo: PaceridApp, snap_compare: Any) -> None:
    assert snap_compare(demo, terminal_size=SIZE, run_before=settle)


def test_terminate_asks_about_results_not_downloaded(demo: PaceridApp, snap_compare: Any) -> None:
    assert snap_compare(demo, terminal_size=SIZE, run_before=settle, press=["x"])


def test_help_lists_every_key(demo: PaceridApp, snap_compare: Any) -> None:
    assert snap_compare(demo, terminal_size=SIZE, run_before=settle, press=["question_mark"])


def test_light_theme(demo: PaceridApp, snap_compare: Any) -> None:
    assert snap_compare(demo, terminal_size=SIZE, run_before=settle, press=["ctrl+t"])


async def open_launch_form(pilot: Pilot[int]) -> None:
    await settle(pilot)
    await pilot.press("l")

    def priced() -> bool:
        screen = pilot.app.screen
        return isinstance(screen, LaunchForm) and "$" in str(
            screen.query_one("#zone-prices", Static).render()
        )

    await wait_or_fail(pilot, priced, "the launch form never showed the zone prices")
    await pilot.app.workers.wait_for_complete()
    app = pilot.app
    assert isinstance(app, PaceridApp)

    def table_sized() -> bool:  # a refresh under the form re-sizes the runs table at its idle
        return next(iter(app.table.columns.values())).content_width >= len(AWS_RUN)

    await wait_or_fail(pilot, table_sized, "the runs table behind the form was never sized")


def test_launch_form(demo: PaceridApp, snap_compare: Any) -> None:
    assert snap_compare(demo, terminal_size=SIZE, run_before=open_launch_form)


def test_an_80_by_24_terminal(demo: PaceridApp, snap_compare: Any) -> None:
    """The market panel and the buttons make room; keys and the footer still reach everything."""
    assert snap_compare(demo, terminal_size=(80, 24), run_before=settle)


def test_what_the_model_got_wrong(demo: PaceridApp, snap_compare: Any) -> None:
    """The finished local run (up from the selected AWS run), then w: worst classes first."""

    async def open_mistakes(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("up", "w")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, MistakesScreen))

    assert snap_compare(demo, terminal_size=SIZE, run_before=open_mistakes)


def test_history_overlays_the_selected_runs(demo: PaceridApp, snap_compare: Any) -> None:
    """h, then both runs selected with space: their curves over each other, their differences."""

    async def overlay(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen))
        await pilot.press("space", "down", "space")
        await pilot.pause()

    assert snap_compare(demo, terminal_size=SIZE, run_before=overlay)


async def wait_until(pilot: Pilot[int], check: Callable[[], bool]) -> None:
    await wait_or_fail(pilot, check, "the screen never opened")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


class DoctorOnly(App[None]):
    """The doctor screen on its own, over the app's stylesheet: what it shows depends only on
    the config, not on what the demo's dashboard behind it is doing."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))

    def __init__(self, config: Path) -> None:
        super().__init__()
        self.config = config

    def on_mount(self) -> None:
        self.push_screen(DoctorScreen(self.config))


async def doctor_done(pilot: Pilot[None]) -> None:
    def done() -> bool:
        screen = pilot.app.screen
        return isinstance(screen, DoctorScreen) and "kaggle" in str(
            screen.query_one("#doctor-checks", Static).render()
        )

    await wait_or_fail(pilot, done, "the doctor's checks never came")  # type: ignore[arg-type]
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_doctor_shows_every_check(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`c`: the core's checks for a local config, each ok and not needed."""
    monkeypatch.chdir(tmp_path)  # the title shows the config path as given: relative
    Path("local.yaml").write_text("instance:\n  provider: local\ndata:\n  source: synthetic\n")
    assert snap_compare(DoctorOnly(Path("local.yaml")), terminal_size=SIZE, run_before=doctor_done)
