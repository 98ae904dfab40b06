"""Launching: which zone, type and market to ask for, in what order, and the request itself.

Spot capacity is per zone and per type and comes and goes by the minute, so a launch is a list
of attempts tried in order with a fail-fast client: every zone of the first type (cheapest spot
price first), then the fallback types, then the same again on-demand when the config allows it.
A capacity or price error moves on to the next attempt at once; a quota error skips the rest of
that type in that market (another zone cannot help); any other error stops the launch.
The plan is a pure function so the order is tested without AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.boot import user_data
from pacerid_tui.core.cloud.aws_ami import Image, root_volume_gb
from pacerid_tui.core.cloud.aws_instances import IMAGE_NAME_TAG, VOLUME_GB_TAG
from pacerid_tui.core.cloud.aws_session import error_code, user_error
from pacerid_tui.core.cloud.base import MANAGED_TAG, NAME_TAG_VALUE, RUN_ID_TAG, Report
from pacerid_tui.core.errors import CapacityError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "capacity-not-available",
        "SpotMaxPriceTooLow",
        "Unsupported",
    }
)
"""Errors that belong to one zone: the next zone may well succeed."""

QUOTA_CODES = frozenset(
    {"MaxSpotInstanceCountExceeded", "VcpuLimitExceeded", "InstanceLimitExceeded"}
)
"""Errors that hold for the whole region, type and market: skip that type's other zones."""

SPOT = "spot"
ON_DEMAND = "on-demand"

STOP_REQUEST_HOURS = 12.0
"""How long a stop-mode spot request stays valid when no max runtime is set: ValidUntil bounds
the request (not the instance), so an unattended run cannot be restarted by EC2 for ever."""


@dataclass(frozen=True)
class Attempt:
    instance_type: str
    zone: str
    market: str
    price: float | None = None
    """The spot price in force in this zone when the plan was made (None: unknown/on-demand)."""


def zone_order(zones: Sequence[str], prices: Mapping[str, float]) -> list[str]:
    """Cheapest spot price first; zones without a price (type not offered there?) last."""
    return sorted(zones, key=lambda zone: (zone not in prices, prices.get(zone, 0.0), zone))


def plan_attempts(
    instance_types: Sequence[str],
    zones: Sequence[str],
    prices: Mapping[str, Mapping[str, float]],
    market: str,
    on_demand_fallback: bool,
) -> list[Attempt]:
    """Every (type, zone, market) to try, in order; `prices` is type → zone → spot price.

    On-demand attempts keep the spot order too: a zone with cheap spot has capacity to spare.
    """
    markets = [market] if market == ON_DEMAND or not on_demand_fallback else [SPOT, ON_DEMAND]
    plan: list[Attempt] = []
    for kind in markets:
        for instance_type in dict.fromkeys(instance_types):
            type_prices = prices.get(instance_type, {})
            for zone in zone_order(zones, type_prices):
                price = type_prices.get(zone) if kind == SPOT else None
                plan.append(Attempt(instance_type, zone, kind, price))
    return plan


def run_request(
    attempt: Attempt,
    image: Image,
    key_name: str,
    group_id: str,
    config: InstanceConfig,
    run_id: str,
    host_profile: str | None = None,
) -> dict[str, Any]:
    """The RunInstances arguments for one attempt.

    `host_profile` (an instance profile ARN, aws_role.py) asks for stop mode on spot attempts.
    """
    volume_gb = root_volume_gb(image, config.root_volume_gb)
    tags = [
        {"Key": "Name", "Value": NAME_TAG_VALUE},
        {"Key": RUN_ID_TAG, "Value": run_id},
        {"Key": MANAGED_TAG, "Value": "true"},
    ]
    request: dict[str, Any] = {
        "ImageId": image.image_id,
        "InstanceType": attempt.instance_type,
        "KeyName": key_name,
        "SecurityGroupIds": [group_id],
        "MinCount": 1,
        "MaxCount": 1,
        "Placement": {"AvailabilityZone": attempt.zone},
        "InstanceInitiatedShutdownBehavior": "terminate",
        "BlockDeviceMappings": [
            {
                "DeviceName": image.root_device_name,
                "Ebs": {
                    "VolumeSize": volume_gb,
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                },
            }
        ],
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [
                    *tags,
                    {"Key": IMAGE_NAME_TAG, "Value": image.name[:255]},
                    {"Key": VOLUME_GB_TAG, "Value": str(volume_gb)},
                ],
            },
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    if attempt.market == SPOT:
        spot_options: dict[str, Any] = {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        }
        if host_profile is not None:
            stop_mode(request, spot_options, tags, config, host_profile)
        if config.max_price is not None:
            spot_options["MaxPrice"] = f"{config.max_price:g}"
        request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot_options}
    # First boot arms the dead-man switch (and the max-runtime timer): with shutdown behaviour
    # `terminate`, powering off ends the instance and its bill even if this machine is gone (in
    # stop mode it stops, and the host or the controller ends it, request cancelled first).
    request["UserData"] = user_data(config.boot_grace_minutes, config.max_runtime_minutes)
    return request


def stop_mode(
    request: dict[str, Any],
    spot_options: dict[str, Any],
    tags: list[dict[str, str]],
    config: InstanceConfig,
    host_profile: str,
) -> None:
    """`instance.interruption: stop` (EC2 API reference, SpotMarketOptions; user guide,
    "Interruption behaviors" and "Spot Instance requests"):

    - a persistent request, the only kind RunInstances allows with interruption behaviour
      `stop`; EC2 starts the stopped instance again when capacity returns;
    - ValidUntil, supported only for persistent requests (default 7 days): the run's max
      runtime, else STOP_REQUEST_HOURS;
    - shutdown behaviour `stop`: a persistent request reopens when its instance is terminated,
      so a power-off that terminated would launch a fresh instance; a stopped one is ended by
      the host's watchdog or the controller (request cancelled first);
    - the request tagged as ours at launch, which the host role's cancel permission requires.
    """
    hours = (config.max_runtime_minutes or STOP_REQUEST_HOURS * 60) / 60
    valid_until = datetime.fromtimestamp(time.time() + hours * 3600, tz=timezone.utc)
    spot_options.update(
        SpotInstanceType="persistent",
        InstanceInterruptionBehavior="stop",
        ValidUntil=valid_until.replace(microsecond=0),
    )
    request["InstanceInitiatedShutdownBehavior"] = "stop"
    request["IamInstanceProfile"] = {"Arn": host_profile}
    request["TagSpecifications"].append({"ResourceType": "spot-instances-request", "Tags": tags})


def too_expensive(attempt: Attempt, max_price: float | None) -> bool:
    """A spot zone whose price is already above the max would only be refused."""
    if attempt.market != SPOT or max_price is None or attempt.price is None:
        return False
    return attempt.price > max_price


def describe_attempt(attempt: Attempt) -> str:
    price = f" at ${attempt.price:.4f}/h" if attempt.price is not None else ""
    return f"{attempt.market} {attempt.instance_type} in {attempt.zone}{price}"


def launch_first_available(
    client: EC2Client,
    plan: Sequence[Attempt],
    request_for: Callable[[Attempt], dict[str, Any]],
    max_price: float | None,
    report: Report,
) -> tuple[Mapping[str, Any], Attempt]:
    """Try the plan in order; the first instance EC2 accepts, and the attempt that got it.

    `request_for(attempt)` builds the RunInstances arguments. Raises CapacityError when every
    attempt failed for capacity, price or quota; other errors stop the launch at once.
    """
    exhausted: set[tuple[str, str]] = set()
    for attempt in plan:
        if (attempt.market, attempt.instance_type) in exhausted:
            continue
        if too_expensive(attempt, max_price):
            report(f"Skipping {describe_attempt(attempt)}: above max price ${max_price}/h.")
            continue
        report(f"Requesting {describe_attempt(attempt)}…")
        try:
            answer = client.run_instances(**request_for(attempt))
        except ClientError as err:
            code = error_code(err)
            if code in QUOTA_CODES:
                exhausted.add((attempt.market, attempt.instance_type))
                report(f"No {attempt.market} {attempt.instance_type} allowed: {code}; moving on.")
                continue
            if code in CAPACITY_CODES:
                report(f"No {describe_attempt(attempt)}: {code}; trying the next option.")
                continue
            raise user_error(err, f"launch {describe_attempt(attempt)}") from err
        except BotoCoreError as err:
            raise user_error(err, f"launch {describe_attempt(attempt)}") from err
        return answer["Instances"][0], attempt
    raise CapacityError(no_capacity_message(plan))


def no_capacity_message(plan: Sequence[Attempt]) -> str:
    kinds = ", ".join(dict.fromkeys(attempt.instance_type for attempt in plan)) or "no type"
    markets = list(dict.fromkeys(attempt.market for attempt in plan)) or [SPOT]
    advice = ["retry later", "add instance.fallback_instance_types"]
    if SPOT in markets:
        advice.append("raise instance.max_price")
    advice.append("try another instance.region")
    if ON_DEMAND not in markets:
        advice.append("set instance.on_demand_fallback: true")
    return (
        f"No {' or '.join(markets)} capacity for {kinds} in any zone tried; "
        f"{', '.join(advice[:-1])}, or {advice[-1]}."
    )
