"""The dashboard on AWS (moto's server): launch from the form, price and cost shown, terminate."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from aws_seed import REGION
from textual.pilot import Pilot

from pacerid_tui.ui.app import PaceridApp

REPO = Path(__file__).resolve().parents[2]


async def wait_for(pilot: Pilot[int], check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the dashboard"
        await pilot.pause(0.1)


async def test_launch_and_terminate_a_spot_instance_from_the_dashboard(
    aws_env: str, caller_ip_url: str, key_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    config = yaml.safe_load((REPO / "configs" / "base.yaml").read_text())
    config["instance"].update(
        region=REGION, key_path=str(key_dir / "pacerid-ml-key.pem"), caller_ip_url=caller_ip_url
    )
    config["data"]["source"] = "synthetic"
    path = tmp_path / "aws.yaml"
    path.write_text(yaml.safe_dump(config))
    app = PaceridApp(path, refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("l")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: [r.state for r in app.rows.values()] == ["running"])
        [row] = app.rows.values()
        assert (row.provider, row.instance_type) == ("aws", "g4dn.xlarge")
        assert row.price_per_hour is not None and row.cost_usd > 0  # the first billed minute
        await pilot.press("x")  # nothing trained: terminates at once
        await wait_for(pilot, lambda: [r.state for r in app.rows.values()] == ["terminated"])
