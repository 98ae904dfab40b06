"""The dashboard's run all when a step fails: the error dialog keeps the host on request, and
terminates it by itself when nobody answers (real app through its pilot, local provider)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from pacerid_tui import paths
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens import failure_dialog
from pacerid_tui.ui.screens.failure_dialog import FailureDialog
from tests.e2e.test_cli_local import tiny_config
from tests.host.images import BASE
from tests.ui.test_app import busy, states, wait_for


@pytest.fixture(autouse=True)
def host_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local host trains with this interpreter, which has no torch: setup fails there."""
    monkeypatch.setenv("PACERID_PYTHON", str(BASE))


async def test_keep_the_host_from_the_error_dialog(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("r")
        # pushed is not yet composed: wait for its text, or the query races the mount
        await wait_for(pilot, lambda: bool(app.screen.query("#failure-text")), timeout=120)
        assert isinstance(app.screen, FailureDialog)
        text = str(app.screen.query_one("#failure-text", Static).render())
        assert "the setup step failed on the host" in text and "setup.log" in text
        assert "by itself in" in str(app.screen.query_one("#failure-countdown", Static).render())
        await pilot.press("k")
        await wait_for(pilot, lambda: not busy(app))
        await pilot.pause(0.5)
        assert states(app) == ["running"]
    run = Registry(paths.registry_file()).get()
    assert run.instance is not None and run.instance.state.value == "running"


async def test_nobody_answering_terminates_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failure_dialog, "AUTO_TERMINATE_S", 2)
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, FailureDialog), timeout=120)
        await wait_for(pilot, lambda: states(app) == ["terminated"])
        assert not isinstance(app.screen, FailureDialog)
    run = Registry(paths.registry_file()).get()
    assert (tmp_path / "results" / run.run_id / "setup.log").exists()  # fetched first
