"""Spot price answers as AWS shapes them (strings, newest first) into PricePoints and cost."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pacerid_tui.core.cloud.aws_prices import on_demand_price, to_points
from pacerid_tui.core.kernel.cost import cost_usd

# DescribeSpotPriceHistory for g4dn.xlarge, us-east-1c, StartTime 09:17:30, EndTime 11:30:00:
# newest first, and the change at 08:02:11 that was in force at the start.
ANSWER = [
    {
        "AvailabilityZone": "us-east-1c",
        "InstanceType": "g4dn.xlarge",
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": "0.250000",
        "Timestamp": datetime(2025, 6, 1, 11, 0, 0, tzinfo=timezone.utc),
    },
    {
        "AvailabilityZone": "us-east-1c",
        "InstanceType": "g4dn.xlarge",
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": "0.210000",
        "Timestamp": datetime(2025, 6, 1, 10, 0, 0, tzinfo=timezone.utc),
    },
    {
        "AvailabilityZone": "us-east-1c",
        "InstanceType": "g4dn.xlarge",
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": "0.157800",
        "Timestamp": datetime(2025, 6, 1, 8, 2, 11, tzinfo=timezone.utc),
    },
]


def test_answer_becomes_oldest_first_points_that_cost_to_the_cent() -> None:
    points = to_points([*ANSWER, ANSWER[0]])  # a page boundary may repeat an entry
    assert [point.price for point in points] == [0.1578, 0.21, 0.25]
    assert points[0].timestamp == datetime(2025, 6, 1, 8, 2, 11, tzinfo=timezone.utc).timestamp()
    assert {point.zone for point in points} == {"us-east-1c"}
    launch = datetime(2025, 6, 1, 9, 17, 30, tzinfo=timezone.utc).timestamp()
    end = datetime(2025, 6, 1, 11, 30, tzinfo=timezone.utc).timestamp()
    assert round(cost_usd(points, launch, end), 2) == 0.45


def test_string_timestamps_are_utc() -> None:
    [point] = to_points(
        [{"AvailabilityZone": "a", "SpotPrice": "0.1", "Timestamp": "2006-01-02T15:04:05Z"}]
    )
    assert point.timestamp == datetime(2006, 1, 2, 15, 4, 5, tzinfo=timezone.utc).timestamp()


def test_bundled_on_demand_prices() -> None:
    assert on_demand_price("us-east-1", "g4dn.xlarge") == pytest.approx(0.526)
    assert on_demand_price("us-west-2", "g5.xlarge") == pytest.approx(1.006)
    assert on_demand_price("ap-south-1", "g4dn.xlarge") is None
