"""A stalled run in the real dashboard (issue 26, item 3): the host's `stall` event, from a
trainer made to hang after epoch 1 (trainer/fault_hooks.py), shows as an error toast naming why,
with a line in the run's log, and the run goes on (`instance.on_stall: notify`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacerid_tui.ui.app import PaceridApp
from tests.e2e.test_stall import POLL_S, stall_config
from tests.ui.test_app import wait_for


async def test_a_stalled_run_is_a_toast_on_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACERID_WATCHDOG_POLL_S", str(POLL_S))
    monkeypatch.setenv("PACERID_TEST_FAULT", "hang@1")
    app = PaceridApp(stall_config(tmp_path, "notify"), refresh_s=0.5)

    def stalled() -> list[str]:
        """The ending toasts (the notice, told once; the alert is a warning and a log line)."""
        return [n.message for n in app._notifications if n.severity == "error"]

    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: bool(stalled()), timeout=240)
        await pilot.pause(1.0)  # time for a second one, which must not come
        [toast] = stalled()
        run_id = next(iter(app.runs.rows))
        assert toast.startswith(f"{run_id}: stalled: no training step for")
        assert "still running (instance.on_stall: notify)" in toast
        log = app.runs.view(run_id).log
        assert any(line.startswith(f"» {run_id} stalled: no training step") for line in log)
        assert app.runs.rows[run_id].state == "running"
        assert app.runs.view(run_id).training.history()[-1].epoch == 1
