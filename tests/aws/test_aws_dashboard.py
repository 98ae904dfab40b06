"""The dashboard on AWS (moto's server): launch from the form, price and cost shown, terminate."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacerid_tui.ui.app import PaceridApp
from tests.ui.test_app import wait_for


async def test_launch_and_terminate_a_spot_instance_from_the_dashboard(
    aws_env: str, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    app = PaceridApp(aws_config, refresh_s=0.5)
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
