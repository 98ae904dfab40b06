"""Choosing where in the dashboard (the real app through Textual's pilot), on moto in two
regions behind the placement stand-in: the launch form shows the ranked places with the reason
per row, enter launches in the first, and the market panel marks the run's place among them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from placement_standin import AdvisorStandIn, PlacementStandIn, two_regions
from textual.widgets import Static

from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens.launch_form import LaunchForm
from tests.ui.test_app import states, wait_for

REASON = "us-east-2b · $0.158/h · score 9 · <5 % interrupted"


async def test_the_launch_form_shows_why_and_launches_one_region_over(
    placement_standin: PlacementStandIn,
    advisor: AdvisorStandIn,
    aws_config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two_regions(placement_standin, advisor)
    raw = yaml.safe_load(aws_config.read_text())
    raw["instance"].update(regions=["us-east-1", "us-east-2"], advisor_url=advisor.url)
    aws_config.write_text(yaml.safe_dump(raw))
    app = PaceridApp(aws_config, refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("l")

        def side() -> str:
            screen = pilot.app.screen
            if not isinstance(screen, LaunchForm):
                return ""
            return str(screen.query_one("#zone-prices", Static).render())

        await wait_for(pilot, lambda: "1. " in side())
        shown = side()
        assert "1. us-east-2b · $0.158/h · ≈ $0.32 the run\n   score 9 · <5 % interrupted" in shown
        assert "2. us-east-1a · $0.151/h · ≈ $0.30 the run\n   score 2 · <5 % interrupted" in shown
        assert "Ranked by the expected cost of a 2 h run" in shown
        await pilot.press("enter")
        await wait_for(pilot, lambda: states(app) == ["running"])
        [row] = app.runs.rows.values()
        assert row.zone == "us-east-2b" and row.placement is not None
        assert row.placement.startswith(REASON)
        panel = app.query_one("#market-zones", Static)
        await wait_for(pilot, lambda: "▸1 us-east-2b · $0.158/h" in str(panel.render()))
        assert "score 9 · <5 % interrupted" in str(panel.render())
        await pilot.press("x")  # nothing trained: terminates at once
        await wait_for(pilot, lambda: states(app) == ["terminated"])
    assert placement_standin.launched_in == ["us-east-2b"]
