"""The host watchdog counts running time only (trainer/watchdog.py): a stop-mode host that was
stopped for hours must not hit its max runtime or budget for time it did not run."""

from __future__ import annotations

import json
import time
from pathlib import Path

from trainer.watchdog import RunningTime, WatchdogSettings, reason_to_stop


def test_a_boot_after_a_stop_goes_on_from_the_saved_running_time(tmp_path: Path) -> None:
    now = time.time()
    launched = now - 3 * 3600  # launched three hours ago, stopped for most of them
    first = RunningTime(tmp_path, launched, now - 3 * 3600 + 600)
    first.base = 600.0  # ran ten minutes, then AWS stopped it
    first.save()

    again = RunningTime(tmp_path, launched, now)  # the watchdog of the next boot
    assert 600 <= again.seconds() < 700
    assert json.loads((tmp_path / "watchdog.state.json").read_text())["running_s"] >= 600


def test_limits_count_running_time_not_wall_time(tmp_path: Path) -> None:
    now = time.time()
    settings = WatchdogSettings(
        launched_at=now - 7200, max_runtime_s=3600, budget_usd=0.3, price_per_hour=0.3
    )
    # Two hours since launch, but twenty minutes of it running: neither limit is reached.
    assert reason_to_stop(tmp_path, settings, now, now, running_s=1200) is None
    assert "max runtime" in (reason_to_stop(tmp_path, settings, now, now) or "")
    assert "max runtime" in (reason_to_stop(tmp_path, settings, now, now, running_s=3600) or "")
