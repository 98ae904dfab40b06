"""Cost math on real-shaped spot histories, checked against sums worked out by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pacerid_tui.core.kernel.cost import (
    CostParts,
    billed_seconds,
    budget_runway_s,
    cost_usd,
    egress_cost,
    instance_parts,
    ipv4_cost,
    price_at,
    remaining_seconds,
    volume_cost,
)
from pacerid_tui.core.kernel.models import PricePoint
from pacerid_tui.core.kernel.price_table import PRICES_AS_OF, prices_for
from pacerid_tui.core.steps import budget_rule


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


ZONE = "us-east-1c"

# g4dn.xlarge in one zone, as DescribeSpotPriceHistory reports it for a launch at 09:17:30:
# the step in force before launch first, then the changes.
HISTORY = [
    PricePoint(at("2025-06-01 08:02:11"), 0.1578, ZONE),
    PricePoint(at("2025-06-01 10:00:00"), 0.2100, ZONE),
    PricePoint(at("2025-06-01 11:00:00"), 0.2500, ZONE),
    PricePoint(at("2025-06-01 13:45:00"), 0.1812, ZONE),
]
LAUNCH = at("2025-06-01 09:17:30")


def cents(value: float) -> float:
    return round(value, 2)


def test_launch_in_the_middle_of_a_step_and_several_steps() -> None:
    end = at("2025-06-01 11:30:00")
    # 42.5 min at 0.1578 + 60 min at 0.2100 + 30 min at 0.2500
    expected = 0.1578 * 42.5 / 60 + 0.2100 + 0.2500 * 0.5
    assert cost_usd(HISTORY, LAUNCH, end) == pytest.approx(expected)
    assert cents(cost_usd(HISTORY, LAUNCH, end)) == 0.45


def test_a_terminated_run_stops_at_termination_and_ignores_later_prices() -> None:
    terminated = at("2025-06-01 14:05:00")
    # 42.5 min at 0.1578, 1 h at 0.21, 2 h 45 min at 0.25, 20 min at 0.1812
    expected = 0.1578 * 42.5 / 60 + 0.21 + 0.25 * 2.75 + 0.1812 / 3
    later = [*HISTORY, PricePoint(at("2025-06-01 15:00:00"), 9.99, ZONE)]
    assert cost_usd(later, LAUNCH, terminated) == pytest.approx(expected)
    assert cents(cost_usd(later, LAUNCH, terminated)) == 1.07


def test_under_a_minute_is_billed_as_a_minute() -> None:
    flat = [PricePoint(LAUNCH, 0.526)]
    assert billed_seconds(LAUNCH, LAUNCH + 20) == 60
    assert cost_usd(flat, LAUNCH, LAUNCH + 20) == pytest.approx(0.526 / 60)
    assert cost_usd(flat, LAUNCH, LAUNCH) == pytest.approx(0.526 / 60)
    assert cents(cost_usd(flat, LAUNCH, LAUNCH + 20)) == 0.01


def test_seconds_are_whole_and_rounded_up() -> None:
    assert billed_seconds(0.0, 90.2) == 91
    flat = [PricePoint(0.0, 3.6)]
    assert cost_usd(flat, 0.0, 90.2) == pytest.approx(0.091)


def test_on_demand_is_one_flat_step() -> None:
    day = [PricePoint(LAUNCH, 0.526)]
    assert cents(cost_usd(day, LAUNCH, LAUNCH + 24 * 3600)) == 12.62


def test_order_of_the_history_does_not_matter() -> None:
    end = at("2025-06-01 12:00:00")
    assert cost_usd(list(reversed(HISTORY)), LAUNCH, end) == pytest.approx(
        cost_usd(HISTORY, LAUNCH, end)
    )


def test_unknown_price_costs_nothing_and_truncated_history_assumes_its_first_price() -> None:
    assert cost_usd([], LAUNCH, LAUNCH + 3600) == 0.0
    truncated = [PricePoint(LAUNCH + 1800, 0.30)]
    assert cost_usd(truncated, LAUNCH, LAUNCH + 3600) == pytest.approx(0.30)


def test_price_in_force() -> None:
    assert price_at(HISTORY, LAUNCH) == 0.1578
    assert price_at(HISTORY, at("2025-06-01 11:00:00")) == 0.2500
    assert price_at(HISTORY, at("2025-06-01 20:00:00")) == 0.1812
    assert price_at(HISTORY, at("2025-06-01 00:00:00")) == 0.1578
    assert price_at([], LAUNCH) == 0.0


def test_time_left_uses_recent_epochs() -> None:
    """The first epoch is slow (warm-up); the last three average 300 s (the cost at the end:
    tests/core/test_forecast.py)."""
    assert remaining_seconds([540.0, 310.0, 290.0, 300.0], 20) == pytest.approx(16 * 300)
    assert remaining_seconds([], 20) is None
    assert remaining_seconds([300.0, 300.0], 2) == 0.0


def test_budget_helpers() -> None:
    assert budget_runway_s(4.0, 5.0, 0.5) == pytest.approx(7200)
    assert budget_runway_s(6.0, 5.0, 0.5) == 0.0
    assert budget_runway_s(1.0, None, 0.5) is None
    assert budget_runway_s(1.0, 5.0, 0.0) is None


US_EAST_1 = prices_for("aws", "us-east-1")


def test_root_volume_costs_gb_months_per_second() -> None:
    # 100 GB gp3 at $0.08/GB-month for 12 h of a 30-day month: 100 * 0.08 * 12 / 720 = $0.1333
    assert volume_cost(100, 0.0, 12 * 3600, US_EAST_1) == pytest.approx(0.13333, abs=1e-5)
    assert volume_cost(100, 50.0, 10.0, US_EAST_1) == 0.0


def test_a_public_ipv4_address_costs_half_a_cent_an_hour() -> None:
    assert ipv4_cost(0.0, 3 * 3600, US_EAST_1) == pytest.approx(0.015)
    assert ipv4_cost(0.0, 90.0, US_EAST_1) == pytest.approx(0.000125)


def test_egress_is_billed_per_gib_downloaded() -> None:
    # 3.8 GiB of checkpoints at $0.09/GB: $0.342 (the densenet121 over 20 epochs)
    assert egress_cost(int(3.8 * 1024**3), US_EAST_1) == pytest.approx(0.342)
    assert egress_cost(10**9, prices_for("local", "local")) == 0.0


def test_the_parts_add_up_and_the_budget_leaves_egress_out_unless_asked() -> None:
    # One hour at $0.20 spot, 100 GB: 0.20 + 100 * 0.08 / 720 + 0.005 = $0.21611, + $0.09 egress
    parts = instance_parts([PricePoint(0.0, 0.20)], 0.0, 3600.0, 100, US_EAST_1)
    parts += CostParts(egress=egress_cost(1024**3, US_EAST_1))
    assert (parts.compute, parts.ipv4) == (pytest.approx(0.20), pytest.approx(0.005))
    assert parts.volume == pytest.approx(0.011111, abs=1e-6)
    assert parts.total == pytest.approx(0.306111, abs=1e-6)
    assert budget_rule.counted(parts, include_egress=False) == pytest.approx(0.216111, abs=1e-6)
    assert budget_rule.counted(parts, include_egress=True) == parts.total
    assert prices_for("aws", "nowhere-1") == US_EAST_1  # unlisted regions: us-east-1's figures
    assert PRICES_AS_OF
