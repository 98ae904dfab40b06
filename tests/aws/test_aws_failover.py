"""Capacity failover: the pure plan, then real launches where chosen zones refuse.

Refusals are EC2's real error responses, answered by a botocore `before-send` hook for the zones
and types a test names; every other request goes on to moto. Counting the requests also shows
the launch client never retries a refused zone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
from aws_seed import Reports, error_response
from botocore.awsrequest import AWSResponse

from pacerid_tui.core.cloud.aws_launch import Attempt, launch_first_available, plan_attempts
from pacerid_tui.core.kernel.errors import CapacityError, ProviderError
from pacerid_tui.core.kernel.models import InstanceSpec

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]

MESSAGES = {
    "InsufficientInstanceCapacity": "We currently do not have sufficient capacity in the "
    "Availability Zone you requested. Our system will be working on provisioning additional "
    "capacity.",
    "SpotMaxPriceTooLow": "Your Spot request price of 0.3 is lower than the minimum required "
    "Spot request fulfillment price of 0.3462.",
    "MaxSpotInstanceCountExceeded": "Max spot instance count exceeded",
    "VcpuLimitExceeded": "You have requested more vCPU capacity than your current vCPU limit of 0 "
    "allows for the instance bucket that the specified instance type belongs to.",
    "InvalidParameterValue": "Value (g4dn.xlarge) for parameter instanceType is invalid.",
}

Key = tuple[str, str, str]
"""(market, instance type, zone) of one RunInstances request."""


def refuse(provider: Any, refusals: dict[Key, str]) -> list[Key]:
    """Answer the named requests with EC2's error; return the list of every request seen."""
    seen: list[Key] = []

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        body = request.body
        fields = parse_qs(body.decode() if isinstance(body, bytes) else body)
        market = fields.get("InstanceMarketOptions.MarketType", ["on-demand"])[0]
        key = (market, fields["InstanceType"][0], fields["Placement.AvailabilityZone"][0])
        seen.append(key)
        code = refusals.get(key)
        if code is None:
            return None
        status = 500 if code.startswith("Insufficient") else 400
        return error_response(request.url, status, code, MESSAGES[code])

    provider.clients.launch.meta.events.register("before-send.ec2.RunInstances", answer)
    return seen


def test_plan_tries_cheapest_zones_then_fallback_types_then_on_demand() -> None:
    prices = {
        "g4dn.xlarge": {"us-east-1a": 0.21, "us-east-1b": 0.16, "us-east-1c": 0.18},
        "g5.xlarge": {"us-east-1c": 0.41, "us-east-1a": 0.39},
    }
    plan = plan_attempts(["g4dn.xlarge", "g5.xlarge", "g4dn.xlarge"], ZONES, prices, "spot", True)
    assert [(a.market, a.instance_type, a.zone, a.price) for a in plan] == [
        ("spot", "g4dn.xlarge", "us-east-1b", 0.16),
        ("spot", "g4dn.xlarge", "us-east-1c", 0.18),
        ("spot", "g4dn.xlarge", "us-east-1a", 0.21),
        ("spot", "g5.xlarge", "us-east-1a", 0.39),
        ("spot", "g5.xlarge", "us-east-1c", 0.41),
        ("spot", "g5.xlarge", "us-east-1b", None),
        # On-demand prices are the same in every zone; a cheap spot zone has room to spare.
        ("on-demand", "g4dn.xlarge", "us-east-1b", None),
        ("on-demand", "g4dn.xlarge", "us-east-1c", None),
        ("on-demand", "g4dn.xlarge", "us-east-1a", None),
        ("on-demand", "g5.xlarge", "us-east-1a", None),
        ("on-demand", "g5.xlarge", "us-east-1c", None),
        ("on-demand", "g5.xlarge", "us-east-1b", None),
    ]


def test_plan_without_fallback_or_on_demand_only() -> None:
    spot_only = plan_attempts(["g4dn.xlarge"], ZONES, {}, "spot", False)
    assert {a.market for a in spot_only} == {"spot"} and len(spot_only) == 3
    on_demand = plan_attempts(["g4dn.xlarge"], ZONES, {}, "on-demand", True)
    assert {a.market for a in on_demand} == {"on-demand"} and len(on_demand) == 3


def test_capacity_errors_move_to_the_next_zone_then_type(
    make_provider: Any, reports: Reports
) -> None:
    provider = make_provider(zones=ZONES, fallback_instance_types=["g5.xlarge"])
    refusals = {("spot", "g4dn.xlarge", zone): "InsufficientInstanceCapacity" for zone in ZONES}
    refusals[("spot", "g5.xlarge", "us-east-1a")] = "SpotMaxPriceTooLow"
    seen = refuse(provider, refusals)

    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)

    assert seen == [
        ("spot", "g4dn.xlarge", "us-east-1a"),
        ("spot", "g4dn.xlarge", "us-east-1b"),
        ("spot", "g4dn.xlarge", "us-east-1c"),
        ("spot", "g5.xlarge", "us-east-1a"),
        ("spot", "g5.xlarge", "us-east-1b"),
    ]
    assert (instance.market, instance.instance_type, instance.zone) == (
        "spot",
        "g5.xlarge",
        "us-east-1b",
    )
    steps = [line for line in reports if line.startswith(("Requesting", "No "))]
    assert steps[:2] == [
        "Requesting spot g4dn.xlarge in us-east-1a at $0.0000/h…",
        "No spot g4dn.xlarge in us-east-1a at $0.0000/h: InsufficientInstanceCapacity; "
        "trying the next option.",
    ]
    assert len(steps) == 9
    assert "SpotMaxPriceTooLow" in steps[7]


def test_quota_skips_every_type_under_it_and_on_demand_is_the_last_resort(
    make_provider: Any, reports: Reports
) -> None:
    """g5 launches under the same G/VT spot quota as g4dn: one refusal is enough for both."""
    provider = make_provider(
        zones=ZONES, fallback_instance_types=["g5.xlarge"], on_demand_fallback=True
    )
    seen = refuse(provider, {("spot", "g4dn.xlarge", "us-east-1a"): "MaxSpotInstanceCountExceeded"})

    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)

    assert seen == [
        ("spot", "g4dn.xlarge", "us-east-1a"),
        ("on-demand", "g4dn.xlarge", "us-east-1a"),
    ]
    assert instance.market == "on-demand"
    [refused] = [line for line in reports if "MaxSpotInstanceCountExceeded" in line]
    assert "'All G and VT Spot Instance Requests' (L-3819A6DF)" in refused
    assert "--quota-code L-3819A6DF --desired-value 4 --region us-east-1" in refused
    assert "Warning: no spot capacity anywhere; this instance is billed on-demand." in reports


def test_a_quota_refusal_everywhere_ends_with_the_quota_fix(
    make_provider: Any, reports: Reports
) -> None:
    provider = make_provider(zones=ZONES, fallback_instance_types=["g5.xlarge"])
    seen = refuse(provider, {("spot", "g4dn.xlarge", "us-east-1a"): "VcpuLimitExceeded"})
    with pytest.raises(CapacityError, match=r"L-3819A6DF.*request-service-quota-increase"):
        provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)
    assert len(seen) == 1


def test_max_price_too_low_says_the_price_and_the_key(make_provider: Any, reports: Reports) -> None:
    provider = make_provider(zones=["us-east-1a"])
    refuse(provider, {("spot", "g4dn.xlarge", "us-east-1a"): "SpotMaxPriceTooLow"})
    with pytest.raises(
        CapacityError, match=r"is \$0\.3462/h, over instance\.max_price \(\$0\.3/h\)"
    ):
        provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)


def test_no_capacity_anywhere_is_one_clear_error(make_provider: Any, reports: Reports) -> None:
    provider = make_provider(zones=ZONES)
    seen = refuse(
        provider, {("spot", "g4dn.xlarge", zone): "InsufficientInstanceCapacity" for zone in ZONES}
    )
    with pytest.raises(
        CapacityError, match=r"No spot capacity for g4dn\.xlarge .*on_demand_fallback: true\.$"
    ):
        provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)
    assert len(seen) == 3  # one request per zone: the 500s were not retried
    assert provider.find_managed() == []


def test_other_errors_stop_the_launch_at_once(make_provider: Any) -> None:
    provider = make_provider(zones=ZONES)
    seen = refuse(provider, {("spot", "g4dn.xlarge", "us-east-1a"): "InvalidParameterValue"})
    with pytest.raises(ProviderError, match=r"AWS refused to launch spot g4dn\.xlarge") as caught:
        provider.launch(InstanceSpec(run_id="r", provider="aws"))
    assert not isinstance(caught.value, CapacityError)
    assert len(seen) == 1


def test_zones_priced_above_the_max_are_skipped(make_provider: Any, reports: Reports) -> None:
    provider = make_provider()
    seen = refuse(provider, {})
    plan = [
        Attempt("g4dn.xlarge", "us-east-1a", "spot", 0.35),
        Attempt("g4dn.xlarge", "us-east-1b", "spot", 0.25),
    ]
    request = {"ImageId": "ami-0a1b2c3d4e5f60002", "MinCount": 1, "MaxCount": 1}
    raw, attempt = launch_first_available(
        provider.clients.launch,
        plan,
        lambda a: {
            **request,
            "InstanceType": a.instance_type,
            "Placement": {"AvailabilityZone": a.zone},
        },
        0.30,
        reports,
    )
    assert attempt.zone == "us-east-1b" and raw["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert seen == [("on-demand", "g4dn.xlarge", "us-east-1b")]
    assert reports[0] == (
        "Skipping spot g4dn.xlarge in us-east-1a at $0.3500/h: above max price $0.3/h."
    )
