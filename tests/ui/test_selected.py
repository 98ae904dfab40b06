"""The selected run is one typed reactive on the App (`PaceridApp.selected`) whose watcher draws
that run's log and panels from the runs' snapshot: moving through the table reads no file."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Log

from pacerid_tui import paths
from pacerid_tui.ui.widgets.run_details import RunDetails
from tests.ui.demo import AWS_RUN, LOCAL_RUN, SIZE, demo_app, settle, wait_or_fail


async def test_the_selection_draws_the_runs_log_and_details_from_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = demo_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.selected == AWS_RUN == app.table.selected_run_id
        log = app.query_one(Log)
        assert any("Epoch 3/10" in line for line in log.lines)  # the replayed follow's lines
        paths.registry_file().unlink()  # whatever draws now must not need it
        await pilot.press("up")
        await wait_or_fail(pilot, lambda: app.selected == LOCAL_RUN, "up never selected")
        details = app.query_one(RunDetails).shown
        assert details.startswith(f"[b]{LOCAL_RUN}[/b]  terminated")
        assert "epoch 3/3" in details and not any("Epoch" in line for line in log.lines)
        await pilot.press("down")
        await wait_or_fail(pilot, lambda: app.selected == AWS_RUN, "down never selected")
        assert app.query_one(RunDetails).shown.startswith(f"[b]{AWS_RUN}[/b]  running")
        assert any("Epoch 3/10" in line for line in log.lines)
