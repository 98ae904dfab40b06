"""Stop mode's cost: a stopped instance bills only its root volume (EC2 pricing: no instance
usage and no public IPv4 while stopped; EBS volumes bill while they exist). Figures by hand.

The stopped stretches come from the host's own records (reconcile.stopped_stretches): the
trainer's `interrupted` event at the notice, EC2's two-minute lead to the stop, and the boot
service's line in output/boots.jsonl when the instance started again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pacerid_tui.core.kernel.host_records import stopped_stretches
from pacerid_tui.core.kernel.models import Instance, InstanceState, PricePoint, Run
from pacerid_tui.core.steps.cost import instance_parts, running_stretches
from pacerid_tui.core.steps.price_table import RegionPrices
from pacerid_tui.core.steps.status import row

T0 = 1_700_000_000.0
HOUR = 3600.0
PRICES = RegionPrices(gp3_gb_month=0.08, ipv4_hour=0.005)


def test_the_stopped_stretch_bills_the_volume_only() -> None:
    # $0.30/h, then $0.60/h from 1.5 h, inside the stopped hour (1 h to 2 h) of a 3-hour life.
    history = [PricePoint(T0 - 100, 0.30, "a"), PricePoint(T0 + 1.5 * HOUR, 0.60, "a")]
    parts = instance_parts(history, T0, T0 + 3 * HOUR, 100, PRICES, [(T0 + HOUR, T0 + 2 * HOUR)])
    assert parts.compute == pytest.approx(0.30 * 1 + 0.60 * 1)  # running hours 0-1 and 2-3
    assert parts.ipv4 == pytest.approx(0.005 * 2)
    assert parts.volume == pytest.approx(100 * 0.08 * 3 * HOUR / (30 * 86400))  # 0.03333
    assert parts.total == pytest.approx(0.90 + 0.010 + 0.033333, abs=1e-6)


def test_each_start_bills_at_least_a_minute() -> None:
    history = [PricePoint(T0, 0.30, "a")]
    stops = [(T0 + HOUR, T0 + 2 * HOUR)]
    parts = instance_parts(history, T0, T0 + 2 * HOUR + 20, 0, PRICES, stops)
    assert parts.compute == pytest.approx(0.30 * (3600 + 60) / 3600)  # 20 s billed as 60
    assert running_stretches(T0, T0 + 10, []) == [(T0, T0 + 10)]


def records(folder: Path, interrupted: list[float], boots: list[float]) -> Path:
    events = [{"event": "epoch", "epoch": 1, "time": T0 + 600}]
    events += [{"event": "interrupted", "time": t} for t in interrupted]
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    lines = [{"event": "boot", "time": t, "phase": "interrupted", "resumed": True} for t in boots]
    (folder / "boots.jsonl").write_text("".join(json.dumps(b) + "\n" for b in lines))
    return folder


def stop_mode_instance(state: InstanceState) -> Instance:
    return Instance(
        "i-0abc", "aws", state, launched_at=T0, region="us-east-1", spot_request_id="sir-1"
    )


def test_the_row_counts_running_stretches_from_the_host_records(tmp_path: Path) -> None:
    # Notice at 0.5 h, stopped 2 min later, booted at 1.5 h; a second notice at 2 h, still
    # stopped at 2.5 h (now).
    results = records(tmp_path / "r", [T0 + 1800, T0 + 7200], [T0 + 5400])
    stopped = stop_mode_instance(InstanceState.STOPPED)
    now = T0 + 9000
    stops = stopped_stretches(results, stopped, now)
    assert stops == [(T0 + 1920, T0 + 5400), (T0 + 7320, now)]

    run = Run("run-1", "aws", "c.yaml", T0, instance=stopped)
    found = row(run, [PricePoint(T0 - 60, 0.30, "a")], now, volume_gb=100, stops=stops)
    running_s = 1920 + (7320 - 5400)  # 3840 s running, 5160 s stopped
    assert found.cost_parts["compute"] == pytest.approx(0.30 * running_s / 3600)  # 0.32
    assert found.cost_parts["ipv4"] == pytest.approx(0.005 * running_s / 3600)  # 0.005333
    assert found.cost_parts["volume"] == pytest.approx(100 * 0.08 * 9000 / (30 * 86400))
    assert found.cost_usd == pytest.approx(0.32 + 0.005333 + 0.027778, abs=1e-6)


def test_a_boot_not_downloaded_yet_counts_as_running(tmp_path: Path) -> None:
    results = records(tmp_path / "r", [T0 + 1800], [])
    running = stop_mode_instance(InstanceState.RUNNING)
    assert stopped_stretches(results, running, T0 + 9000) == []  # never less than billed
    relaunch = Instance("i-0abc", "aws", InstanceState.STOPPED, launched_at=T0)
    assert stopped_stretches(results, relaunch, T0 + 9000) == []  # no spot request: no stops
