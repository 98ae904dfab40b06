"""What of ours is still there on AWS, in every region the account has enabled, and what each
thing costs a day: the inventory behind `pacerid-tui sweep`, doctor's leftovers check and the
dashboard's notice (core/leftovers.py).

Only resources carrying our tag (`pacerid:managed` = `true`, base.MANAGED_TAG) are listed; a
look-alike without it (the same name, the same kind of instance) is never listed nor touched.
Launch tags everything it creates (instances, their volumes and spot requests in aws_launch,
the security group in aws_firewall, the key pair in aws_keypair, the role and its instance
profile in aws_role), so everything can always be found again, whatever the registry says.

The regions are those DescribeRegions says the account has enabled (opt-in status
`opt-in-not-required` or `opted-in`). Most hold nothing of ours, so each region is asked once,
with DescribeTags filtered on our tag, and only a region that answers with something gets one
filtered describe per kind. Regions are asked side by side (REGION_THREADS); one that refuses
(an organization's policy denying it, a network failure) becomes one "cannot tell" sentence and
the others are still listed. IAM is global: the role and its profile are listed once.

Costs a day, from the price table (core/price_table.py) and the prices the provider already
reads: a running instance pays its compute (the spot price in force in its zone, or the bundled
on-demand price), its volumes (gp3 per GB-month) and its public IPv4 address; a stopped one its
volumes only; an unattached volume its size; requests, groups, key pairs and IAM cost nothing,
but an open spot request may launch an instance at any time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud.aws_instances import tag_value
from pacerid_tui.core.cloud.aws_prices import current_prices, on_demand_price
from pacerid_tui.core.cloud.aws_role import HOST_ROLE
from pacerid_tui.core.cloud.aws_session import AwsClients, aws_errors, error_code, user_error
from pacerid_tui.core.cloud.base import MANAGED_TAG, RUN_ID_TAG
from pacerid_tui.core.kernel.cost import SECONDS_PER_BILLED_MONTH, SECONDS_PER_DAY, daily_parts
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import EVERY_REGION, Inventory, Leftover, Unreadable
from pacerid_tui.core.kernel.price_table import prices_for

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

REGION_THREADS = 8
"""Regions asked at once: a sweep of the ~17 enabled regions takes about as long as the slowest
one, without opening dozens of connections."""

ENABLED = ("opt-in-not-required", "opted-in")
"""DescribeRegions' opt-in statuses of the regions an account may use."""

ALIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]
RUNNING = ("pending", "running")
LIVE_REQUESTS = ["open", "active", "disabled"]
"""Spot request states that still matter: open may launch, active has an instance, disabled
has a stopped one. Closed, cancelled and failed requests can launch nothing again."""

OURS: list[Any] = [{"Name": f"tag:{MANAGED_TAG}", "Values": ["true"]}]
GLOBAL = "global"
"""The region of IAM's role and instance profile."""


@dataclass
class RegionFound:
    """One region's findings, and which of its instances use the host profile (by run id, or
    None for an instance no run knows), so the role is kept while a run needs it."""

    found: list[Leftover] = field(default_factory=list)
    profile_users: list[str | None] = field(default_factory=list)


def enabled_regions(ec2: EC2Client) -> list[str]:
    """The regions the account has enabled, by name."""
    with aws_errors("list the account's regions"):
        regions = ec2.describe_regions().get("Regions", [])
    return sorted(
        str(region["RegionName"]) for region in regions if region.get("OptInStatus") in ENABLED
    )


def find_leftovers(
    home: AwsClients, clients_for: Callable[[str], AwsClients], kept: Mapping[str, str]
) -> Inventory:
    """Everything of ours in every enabled region, plus the role and its profile."""
    try:
        regions = enabled_regions(home.ec2)
    except PaceridError as err:
        return Inventory(unreadable=(Unreadable("aws", EVERY_REGION, str(err)),))

    def scan(region: str) -> RegionFound | Unreadable:
        try:
            return region_leftovers(clients_for(region).ec2, region, kept)
        except (BotoCoreError, ClientError) as err:
            return Unreadable("aws", region, str(user_error(err, f"list what is ours in {region}")))
        except PaceridError as err:
            return Unreadable("aws", region, str(err))

    with ThreadPoolExecutor(REGION_THREADS) as pool:
        answers = list(pool.map(scan, regions))
    found = [item for answer in answers if isinstance(answer, RegionFound) for item in answer.found]
    unreadable = [answer for answer in answers if isinstance(answer, Unreadable)]
    users = [
        run for answer in answers if isinstance(answer, RegionFound) for run in answer.profile_users
    ]
    try:
        found += iam_leftovers(home.iam, users)
    except (BotoCoreError, ClientError) as err:
        reason = str(user_error(err, f"look up the instance role {HOST_ROLE}"))
        unreadable.append(Unreadable("aws", GLOBAL, reason))
    return Inventory(tuple(found), tuple(unreadable))


def region_leftovers(ec2: EC2Client, region: str, kept: Mapping[str, str]) -> RegionFound:
    """One region: nothing but a DescribeTags call unless something of ours is there."""
    kinds: set[str] = set()
    for page in ec2.get_paginator("describe_tags").paginate(
        Filters=[
            {"Name": "key", "Values": [MANAGED_TAG]},
            {"Name": "value", "Values": ["true"]},
        ]
    ):
        kinds.update(str(tag.get("ResourceType", "")) for tag in page.get("Tags", []))
    if not kinds:
        return RegionFound()
    instances = [
        raw
        for page in ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": ALIVE}]
        )
        for reservation in page.get("Reservations", [])
        for raw in reservation.get("Instances", [])
    ]
    ours = [raw for raw in instances if tag_value(raw, MANAGED_TAG) == "true"]
    leaving = {raw["InstanceId"] for raw in ours if raw["InstanceId"] not in kept}
    result = RegionFound()
    result.found += instance_rows(ec2, region, ours, kept)
    for raw in ours:
        arn = str((raw.get("IamInstanceProfile") or {}).get("Arn", ""))
        if arn.endswith(f"instance-profile/{HOST_ROLE}"):
            result.profile_users.append(kept.get(raw["InstanceId"]))
    if any(kind.startswith("spot-instance") for kind in kinds):  # spot-instances-request
        result.found += request_rows(ec2, region, kept)
    if "volume" in kinds:
        result.found += volume_rows(ec2, region)

    # What keeps a group or a key pair: an instance that stays (a run's, or one not ours).
    groups: dict[str, str] = {}
    keys: dict[str, str] = {}
    for raw in instances:
        if raw["InstanceId"] in leaving:
            continue
        keeper = kept.get(raw["InstanceId"]) or f"{raw['InstanceId']} (not tagged {MANAGED_TAG})"
        for group in raw.get("SecurityGroups", []):
            groups.setdefault(str(group["GroupId"]), keeper)
        if raw.get("KeyName"):
            keys.setdefault(str(raw["KeyName"]), keeper)
    if "security-group" in kinds:
        for group in ec2.describe_security_groups(Filters=OURS).get("SecurityGroups", []):
            result.found.append(
                Leftover(
                    "aws",
                    region,
                    "security group",
                    group["GroupId"],
                    "exists",
                    0.0,
                    f"{group.get('GroupName')} in {group.get('VpcId')}",
                    in_use_by=groups.get(group["GroupId"]),
                )
            )
    if "key-pair" in kinds:
        for pair in ec2.describe_key_pairs(Filters=OURS).get("KeyPairs", []):
            name = str(pair.get("KeyName"))
            result.found.append(
                Leftover(
                    "aws",
                    region,
                    "key pair",
                    name,
                    "exists",
                    0.0,
                    "its private key stays on this machine",
                    in_use_by=keys.get(name),
                )
            )
    return result


def instance_rows(
    ec2: EC2Client, region: str, ours: list[Any], kept: Mapping[str, str]
) -> list[Leftover]:
    """Our instances in any state but terminated, each with its cost a day."""
    if not ours:
        return []
    sizes: dict[str, int] = {}
    ids = [raw["InstanceId"] for raw in ours]
    for page in ec2.get_paginator("describe_volumes").paginate(
        Filters=[{"Name": "attachment.instance-id", "Values": ids}]
    ):
        for volume in page.get("Volumes", []):
            for attachment in volume.get("Attachments", []):
                owner = str(attachment.get("InstanceId"))
                sizes[owner] = sizes.get(owner, 0) + int(volume.get("Size", 0))
    spot_types = sorted(
        {raw["InstanceType"] for raw in ours if raw.get("InstanceLifecycle") == "spot"}
    )
    try:
        spot_prices = current_prices(ec2, spot_types, time.time()) if spot_types else {}
    except PaceridError:
        spot_prices = {}  # the price is then unknown, and the row says so
    table = prices_for("aws", region)
    rows = []
    for raw in ours:
        state = str(raw.get("State", {}).get("Name", "unknown"))
        kind = str(raw.get("InstanceType", "unknown"))
        zone = raw.get("Placement", {}).get("AvailabilityZone", "")
        market = "spot" if raw.get("InstanceLifecycle") == "spot" else "on-demand"
        hourly = (
            spot_prices.get(kind, {}).get(zone)
            if market == "spot"
            else on_demand_price(region, kind)
        )
        running = state in RUNNING
        gb = sizes.get(raw["InstanceId"], 0)
        public = bool(raw.get("PublicIpAddress"))
        parts = daily_parts(hourly or 0.0, gb, public, running, table)
        if running:
            compute = f"${hourly:.4f}/h" if hourly is not None else "price unknown"
            detail = f"{market} {kind} in {zone}: compute {compute}, {gb} GB gp3" + (
                ", public IPv4" if public else ""
            )
        else:
            detail = f"{market} {kind} in {zone}, {state}: its {gb} GB gp3 only"
        rows.append(
            Leftover(
                "aws",
                region,
                "instance",
                raw["InstanceId"],
                state,
                None if running and hourly is None else parts.total,
                detail,
                run_id=tag_value(raw, RUN_ID_TAG),
                in_use_by=kept.get(raw["InstanceId"]),
            )
        )
    return rows


def request_rows(ec2: EC2Client, region: str, kept: Mapping[str, str]) -> list[Leftover]:
    """Our spot requests that can still launch or hold an instance."""
    answer = ec2.describe_spot_instance_requests(
        Filters=[*OURS, {"Name": "state", "Values": LIVE_REQUESTS}]
    )
    rows = []
    for request in answer.get("SpotInstanceRequests", []):
        state = str(request.get("State"))
        instance = request.get("InstanceId")
        kind = str(request.get("Type", "one-time"))
        if state == "open":
            why = f"{kind}: EC2 launches an instance whenever capacity allows"
        elif state == "disabled":
            why = f"{kind}: its instance {instance} is stopped"
        else:
            why = f"{kind}: holds instance {instance}"
        rows.append(
            Leftover(
                "aws",
                region,
                "spot request",
                str(request["SpotInstanceRequestId"]),
                state,
                0.0,
                why,
                run_id=tag_value(request, RUN_ID_TAG),
                in_use_by=kept.get(str(instance)) if instance else None,
            )
        )
    return rows


def volume_rows(ec2: EC2Client, region: str) -> list[Leftover]:
    """Our volumes that no instance holds (an attached one is in its instance's cost)."""
    answer = ec2.describe_volumes(Filters=[*OURS, {"Name": "status", "Values": ["available"]}])
    gb_month = prices_for("aws", region).gp3_gb_month
    rows = []
    for volume in answer.get("Volumes", []):
        size = int(volume.get("Size", 0))
        rows.append(
            Leftover(
                "aws",
                region,
                "volume",
                str(volume["VolumeId"]),
                "available",
                size * gb_month * SECONDS_PER_DAY / SECONDS_PER_BILLED_MONTH,
                f"unattached, {size} GB {volume.get('VolumeType', 'gp3')}",
                run_id=tag_value(volume, RUN_ID_TAG),
            )
        )
    return rows


def iam_leftovers(iam: Any, profile_users: list[str | None]) -> list[Leftover]:
    """The host role and its instance profile, when they carry our tag; a run whose instance
    uses the profile keeps both."""
    user = next((run for run in profile_users if run), None)
    rows = []
    for kind, read in (
        ("role", lambda: iam.get_role(RoleName=HOST_ROLE)["Role"]),
        (
            "instance profile",
            lambda: iam.get_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"],
        ),
    ):
        try:
            found = read()
        except ClientError as err:
            if error_code(err) == "NoSuchEntity":
                continue
            raise
        if tag_value(found, MANAGED_TAG) != "true":
            continue
        rows.append(
            Leftover(
                "aws",
                GLOBAL,
                kind,
                HOST_ROLE,
                "exists",
                0.0,
                "stop mode's instance role (IAM is free); a launch makes it again",
                in_use_by=user,
            )
        )
    return rows
