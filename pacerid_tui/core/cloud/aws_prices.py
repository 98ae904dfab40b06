"""Prices: live spot prices per zone, a zone's spot price history, and on-demand list prices.

Spot prices come from DescribeSpotPriceHistory: asked from a start time, AWS returns the changes
since then plus the last change before it, so the history always covers the start. Prices
arrive as strings, newest first, paginated; they are returned here oldest first as PricePoints.
On-demand prices change rarely and the Pricing API lives in another region with its own
permissions, so the common GPU types are bundled below with the date they were taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pacerid_tui.core.cloud.aws_session import aws_errors
from pacerid_tui.core.kernel.models import PricePoint

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

PRODUCT = "Linux/UNIX"

ON_DEMAND_PRICES_DATE = "2025-06"
"""When ON_DEMAND_USD_PER_HOUR was copied from aws.amazon.com/ec2/pricing/on-demand (Linux)."""

_US = {
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g4dn.4xlarge": 1.204,
    "g4dn.8xlarge": 2.176,
    "g4dn.12xlarge": 3.912,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g5.4xlarge": 1.624,
    "g5.12xlarge": 5.672,
    "g6.xlarge": 0.8048,
    "g6.2xlarge": 0.9776,
    "p3.2xlarge": 3.06,
}

ON_DEMAND_USD_PER_HOUR: dict[str, dict[str, float]] = {
    "us-east-1": _US,
    "us-east-2": _US,
    "us-west-2": _US,
    "eu-west-1": {
        "g4dn.xlarge": 0.587,
        "g4dn.2xlarge": 0.838,
        "g5.xlarge": 1.123,
        "p3.2xlarge": 3.305,
    },
}
"""USD per hour, Linux, by region then instance type. Missing pairs are unknown (cost 0)."""


def on_demand_price(region: str, instance_type: str) -> float | None:
    """The bundled on-demand list price, or None when this table does not have it."""
    return ON_DEMAND_USD_PER_HOUR.get(region, {}).get(instance_type)


def to_points(entries: Iterable[Any]) -> list[PricePoint]:
    """DescribeSpotPriceHistory entries (any order, string prices) → points, oldest first."""
    points = {
        (entry["AvailabilityZone"], timestamp(entry["Timestamp"])): float(entry["SpotPrice"])
        for entry in entries
    }
    return sorted(
        (PricePoint(timestamp=at, price=price, zone=zone) for (zone, at), price in points.items()),
        key=lambda point: (point.timestamp, point.zone),
    )


def timestamp(value: datetime | str) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def price_entries(
    ec2: EC2Client,
    instance_types: Sequence[str],
    start: float,
    end: float | None = None,
    zone: str | None = None,
) -> list[Any]:
    """Raw DescribeSpotPriceHistory entries in force from `start` to `end`, all pages."""
    query: dict[str, Any] = {
        "InstanceTypes": list(instance_types),
        "ProductDescriptions": [PRODUCT],
        "StartTime": datetime.fromtimestamp(start, timezone.utc),
    }
    if end is not None:
        query["EndTime"] = datetime.fromtimestamp(end, timezone.utc)
    if zone is not None:
        query["Filters"] = [{"Name": "availability-zone", "Values": [zone]}]
    entries: list[Any] = []
    with aws_errors("read spot prices"):
        for page in ec2.get_paginator("describe_spot_price_history").paginate(**query):
            entries.extend(page.get("SpotPriceHistory", []))
    if zone is not None:
        entries = [entry for entry in entries if entry.get("AvailabilityZone") == zone]
    return entries


def spot_history(
    ec2: EC2Client, instance_type: str, zone: str, start: float, end: float
) -> list[PricePoint]:
    """The spot price steps of one type in one zone in force from `start` to `end`."""
    return to_points(price_entries(ec2, [instance_type], start, end, zone))


def current_prices(
    ec2: EC2Client, instance_types: Sequence[str], now: float
) -> dict[str, dict[str, float]]:
    """The spot price in force now, by instance type then zone."""
    entries = sorted(
        price_entries(ec2, instance_types, now), key=lambda e: timestamp(e["Timestamp"])
    )
    prices: dict[str, dict[str, float]] = {}
    for entry in entries:
        by_zone = prices.setdefault(entry["InstanceType"], {})
        by_zone[entry["AvailabilityZone"]] = float(entry["SpotPrice"])
    return prices
