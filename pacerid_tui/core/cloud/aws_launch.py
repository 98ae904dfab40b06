"""Launching: which zone, type and market to ask for, in what order, and the request itself.

Spot capacity is per zone and per type and comes and goes by the minute, so a launch is a list
of attempts tried in order with a fail-fast client: every zone of the first type (cheapest spot
price first), then the fallback types, then the same again on-demand when the config allows it.
A capacity, price or missing-subnet error moves on to the next attempt at once; a quota error
skips every type under the same vCPU quota (another zone or a sibling type cannot help) and ends,
if nothing else works, with the quota's name, code and the way to raise it; any other error
stops the launch. Each attempt carries a ClientToken, so a request whose answer was lost is sent
again without ever starting a second instance.
The plan is a pure function so the order is tested without AWS.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_ami import Image, root_volume_gb
from pacerid_tui.core.cloud.aws_instances import IMAGE_NAME_TAG, INTERRUPTION_TAG, VOLUME_GB_TAG
from pacerid_tui.core.cloud.aws_network import no_default_vpc
from pacerid_tui.core.cloud.aws_quota import family, quota_for, refusal_message
from pacerid_tui.core.cloud.aws_session import error_code, error_message, user_error
from pacerid_tui.core.cloud.base import (
    MANAGED_TAG,
    NAME_TAG_VALUE,
    RUN_ID_TAG,
    Report,
    request_valid_until,
)
from pacerid_tui.core.kernel.boot_switch import user_data
from pacerid_tui.core.kernel.errors import CapacityError, ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "capacity-not-available",
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


@dataclass(frozen=True)
class Attempt:
    instance_type: str
    zone: str
    market: str
    price: float | None = None
    """The spot price in force in this zone when the plan was made (None: unknown/on-demand)."""


def zone_order(
    zones: Sequence[str], prices: Mapping[str, float], preferred: Sequence[str] = ()
) -> list[str]:
    """The `preferred` zones first, in their order (the ranking's, README "Choosing where");
    then cheapest spot price first; zones without a price (type not offered there?) last."""
    first = [zone for zone in dict.fromkeys(preferred) if zone in zones]
    rest = [zone for zone in zones if zone not in first]
    return first + sorted(rest, key=lambda zone: (zone not in prices, prices.get(zone, 0.0), zone))


def plan_attempts(
    instance_types: Sequence[str],
    zones: Sequence[str],
    prices: Mapping[str, Mapping[str, float]],
    market: str,
    on_demand_fallback: bool,
    preferred: Sequence[str] = (),
) -> list[Attempt]:
    """Every (type, zone, market) to try, in order; `prices` is type → zone → spot price.

    On-demand attempts keep the spot order too: a zone with cheap spot has capacity to spare.
    """
    markets = [market] if market == ON_DEMAND or not on_demand_fallback else [SPOT, ON_DEMAND]
    plan: list[Attempt] = []
    for kind in markets:
        for instance_type in dict.fromkeys(instance_types):
            type_prices = prices.get(instance_type, {})
            for zone in zone_order(zones, type_prices, preferred):
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
        # The request is ours too, one-time or persistent: `sweep` finds it by this tag, the
        # host role's cancel permission and the user's policy (docs/aws-policy.json) ask for it.
        request["TagSpecifications"].append(
            {"ResourceType": "spot-instances-request", "Tags": tags}
        )
        if host_profile is not None:
            stop_mode(request, spot_options, config, host_profile)
        # What this instance will do at an interruption, whatever the config asked: stop mode
        # falls back to relaunch where the account may not create or pass the role.
        mode = "stop" if host_profile is not None else "relaunch"
        request["TagSpecifications"][0]["Tags"].append({"Key": INTERRUPTION_TAG, "Value": mode})
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
    config: InstanceConfig,
    host_profile: str,
) -> None:
    """`instance.interruption: stop` (EC2 API reference, SpotMarketOptions; user guide,
    "Interruption behaviors" and "Spot Instance requests"):

    - a persistent request, the only kind RunInstances allows with interruption behaviour
      `stop`; EC2 starts the stopped instance again when capacity returns;
    - ValidUntil, supported only for persistent requests (default 7 days): the run's max
      runtime plus base.STOPPED_ALLOWANCE_S (7 days) for stretches spent stopped, as
      ValidUntil counts wall-clock time and max runtime running time;
    - shutdown behaviour `stop`: a persistent request reopens when its instance is terminated,
      so a power-off that terminated would launch a fresh instance; a stopped one is ended by
      the host's watchdog or the controller (request cancelled first);
    - the request tagged as ours at launch (run_request), which the host role's cancel
      permission requires.
    """
    until = request_valid_until(time.time(), config.max_runtime_minutes)
    valid_until = datetime.fromtimestamp(until, tz=timezone.utc)
    spot_options.update(
        SpotInstanceType="persistent",
        InstanceInterruptionBehavior="stop",
        ValidUntil=valid_until.replace(microsecond=0),
    )
    request["InstanceInitiatedShutdownBehavior"] = "stop"
    request["IamInstanceProfile"] = {"Arn": host_profile}


def too_expensive(attempt: Attempt, max_price: float | None) -> bool:
    """A spot zone whose price is already above the max would only be refused."""
    if attempt.market != SPOT or max_price is None or attempt.price is None:
        return False
    return attempt.price > max_price


def describe_attempt(attempt: Attempt) -> str:
    price = f" at ${attempt.price:.4f}/h" if attempt.price is not None else ""
    return f"{attempt.market} {attempt.instance_type} in {attempt.zone}{price}"


LOST_RESPONSE_TRIES = 3
"""RunInstances sent again (same ClientToken) after its answer was lost: EC2 returns the first
call's reservation instead of starting a second instance, so a retry can never double-bill."""

LOST_RESPONSE_WAIT_S = 1.0
"""Pause before sending again; the network hiccup that lost the answer is usually brief."""

AMBIGUOUS_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestLimitExceeded",
    }
)
"""Answers after which the instance may or may not exist: retried with the same token."""

NO_VPC_CODES = frozenset({"VPCIdNotSpecified"})
"""The account has no default VPC: no zone can help, only instance.subnet_id."""

NO_SUBNET_CODES = frozenset({"MissingInput", "InvalidSubnetID.NotFound"})
"""This zone has no (default) subnet: skip the zone, the others may have one."""

FindExisting = Callable[[], Mapping[str, Any] | None]


def client_token(run_id: str, launch: str, index: int) -> str:
    """RunInstances' idempotency token (at most 64 ASCII characters) for one attempt of one
    launch of one run: the same on a retry, different for the next zone, type or launch."""
    digest = hashlib.sha256(f"{run_id}|{launch}|{index}".encode()).hexdigest()
    return f"pacerid-{digest[:40]}-{index}"


@dataclass
class Refusals:
    """Why attempts failed, to say the most useful thing when all of them did."""

    quota: list[str] = field(default_factory=list)
    price: list[str] = field(default_factory=list)
    other: int = 0


def launch_first_available(
    client: EC2Client,
    plan: Sequence[Attempt],
    request_for: Callable[[Attempt], dict[str, Any]],
    max_price: float | None,
    report: Report,
    *,
    run_id: str | None = None,
    region: str = "",
    vcpus: Mapping[str, int] | None = None,
    find_existing: FindExisting | None = None,
) -> tuple[Mapping[str, Any], Attempt]:
    """Try the plan in order; the first instance EC2 accepts, and the attempt that got it.

    `request_for(attempt)` builds the RunInstances arguments; with `run_id` each attempt gets
    its ClientToken. A quota refusal skips every type under the same quota; capacity, price and
    missing-subnet refusals move to the next attempt. A lost answer is retried with the same
    token, and before such an attempt is given up `find_existing` looks for the run's instance.
    Raises CapacityError (the quota or price fix when that is what stopped every attempt).
    """
    launch = f"{time.time():.6f}"
    exhausted: set[str] = set()
    refusals = Refusals()
    for index, attempt in enumerate(plan):
        quota = quota_key(attempt)
        if quota in exhausted:
            continue
        if too_expensive(attempt, max_price):
            report(f"Skipping {describe_attempt(attempt)}: above max price ${max_price}/h.")
            refusals.price.append(price_fix(attempt, attempt.price, max_price))
            continue
        report(f"Requesting {describe_attempt(attempt)}…")
        request = request_for(attempt)
        if run_id is not None:
            request["ClientToken"] = client_token(run_id, launch, index)
        try:
            answer = send(client, request, report)
        except ClientError as err:
            code = error_code(err)
            if code in QUOTA_CODES:
                exhausted.add(quota)
                size = (vcpus or {}).get(attempt.instance_type)
                message = refusal_message(attempt.instance_type, attempt.market, region, size)
                refusals.quota.append(message)
                report(f"No {attempt.market} {attempt.instance_type} allowed: {code}; {message}")
                continue
            if code == "SpotMaxPriceTooLow":
                message = price_fix(attempt, asked_price(err, attempt.price), max_price)
                refusals.price.append(message)
                report(f"No {describe_attempt(attempt)}: {code}; {message}")
                continue
            if code in CAPACITY_CODES:
                refusals.other += 1
                report(f"No {describe_attempt(attempt)}: {code}; trying the next option.")
                continue
            if code in NO_VPC_CODES:
                raise ConfigError(no_default_vpc(region or "this region")) from err
            if code in NO_SUBNET_CODES:
                refusals.other += 1
                report(f"No subnet for {attempt.zone} ({code}); skipping the zone.")
                continue
            if code in AMBIGUOUS_CODES:
                return lost(err, attempt, find_existing, report)
            raise user_error(err, f"launch {describe_attempt(attempt)}") from err
        except BotoCoreError as err:
            return lost(err, attempt, find_existing, report)
        return answer["Instances"][0], attempt
    if refusals.quota and not refusals.other and not refusals.price:
        raise CapacityError(refusals.quota[0])
    if refusals.price and not refusals.other and not refusals.quota:
        raise CapacityError(refusals.price[0])
    raise CapacityError(no_capacity_message(plan, refusals))


def lost(
    err: Exception, attempt: Attempt, find_existing: FindExisting | None, report: Report
) -> tuple[Mapping[str, Any], Attempt]:
    """No answer even after asking again: the run's instance if it exists, else the error
    (never the next zone, which might start a second instance)."""
    existing = find_existing() if find_existing else None
    if existing is None:
        raise user_error(err, f"launch {describe_attempt(attempt)}") from err
    report(f"The answer was lost, but {existing['InstanceId']} is this run's; using it.")
    return existing, attempt


def send(client: EC2Client, request: dict[str, Any], report: Report) -> Mapping[str, Any]:
    """RunInstances, sent again with the same token when the answer was lost."""
    tries = LOST_RESPONSE_TRIES if "ClientToken" in request else 1  # only a token makes it safe
    for attempt in range(1, tries + 1):
        try:
            return client.run_instances(**request)
        except ClientError as err:
            if error_code(err) not in AMBIGUOUS_CODES or attempt == tries:
                raise
            problem: str = error_code(err)
        except (HTTPClientError, BotoConnectionError) as err:
            if attempt == tries:
                raise
            problem = type(err).__name__
        report(f"No answer to the launch request ({problem}); asking again with the same token.")
        time.sleep(LOST_RESPONSE_WAIT_S * attempt)
    raise AssertionError("unreachable: the last try returns or raises")


def quota_key(attempt: Attempt) -> str:
    """Attempts sharing a vCPU quota share this key: one refusal says the same for them all."""
    quota = quota_for(attempt.instance_type, attempt.market)
    if quota is not None:
        return quota.code
    return f"{attempt.market}:{family(attempt.instance_type)}"


def asked_price(err: ClientError, fallback: float | None) -> float | None:
    """The minimum fulfilment price in EC2's SpotMaxPriceTooLow message, if it says one."""
    found = re.findall(r"price of \$?(\d+(?:\.\d+)?)", error_message(err))
    return float(found[-1]) if found else fallback


def price_fix(attempt: Attempt, price: float | None, max_price: float | None) -> str:
    now = f"${price:.4f}/h" if price is not None else "above it"
    limit = f"${max_price:g}/h" if max_price is not None else "the max"
    return (
        f"The spot price of {attempt.instance_type} in {attempt.zone} is {now}, over "
        f"instance.max_price ({limit}); raise instance.max_price or try again later."
    )


def no_capacity_message(plan: Sequence[Attempt], refusals: Refusals | None = None) -> str:
    kinds = ", ".join(dict.fromkeys(attempt.instance_type for attempt in plan)) or "no type"
    markets = list(dict.fromkeys(attempt.market for attempt in plan)) or [SPOT]
    advice = ["retry later", "add instance.fallback_instance_types"]
    if SPOT in markets:
        advice.append("raise instance.max_price")
    advice.append("try another instance.region")
    if ON_DEMAND not in markets:
        advice.append("set instance.on_demand_fallback: true")
    quota = f" ({refusals.quota[0]})" if refusals and refusals.quota else ""
    return (
        f"No {' or '.join(markets)} capacity for {kinds} in any zone tried; "
        f"{', '.join(advice[:-1])}, or {advice[-1]}.{quota}"
    )
