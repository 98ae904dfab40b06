"""Removing what aws_leftovers.py found no run uses, in the one order that leaves nothing
behind (`pacerid-tui sweep --yes`).

1. Spot requests are cancelled first, ours and those behind our instances: a persistent request
   reopens when its instance terminates and EC2 launches a fresh one (EC2 user guide, "Spot
   Instance requests"); cancelling never ends the instance.
2. Instances are terminated, and waited for until EC2 says `terminated`: their root volumes go
   with them (DeleteOnTermination), and a group still holding an instance cannot be deleted. An
   instance whose request could not be cancelled is not terminated (it would come back).
3. Volumes no instance holds, listed again after the wait: a volume kept by a terminated
   instance (DeleteOnTermination false) is free now too.
4. Security groups (EC2 answers DependencyViolation for a while after their instances end, while
   the network interfaces go: retried for GROUP_RETRY_S), then key pairs.
5. Last, once every region is done, the role and its instance profile (IAM): the profile loses
   its role and goes, then the role's inline policies, then the role. Kept while an instance that
   uses the profile could not be ended: its host may still need to end itself.

Only what the inventory listed is removed (all of it carrying our tag); the requests behind our
instances are the one exception, cancelled as `terminate` cancels them. Each failure is one
sentence and costs only its own resource.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud.aws_leftovers import OURS
from pacerid_tui.core.cloud.aws_role import HOST_ROLE
from pacerid_tui.core.cloud.aws_session import error_code, user_error
from pacerid_tui.core.cloud.base import Report
from pacerid_tui.core.kernel.models import Leftover, Swept

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

TERMINATED_WAIT_S = 300.0
"""Terminating takes 30–90 s; five minutes covers a slow shutdown (as aws.TERMINATE_TIMEOUT_S)."""
GROUP_RETRY_S = 120.0
"""A terminated instance's network interface lingers for seconds to a minute or two; until it
is gone its group answers DependencyViolation."""
POLL_S = 5.0
"""Seconds between asks while waiting (EC2 moves in steps of seconds)."""


@dataclass
class Sweeping:
    """What one sweep removed so far and what it could not."""

    report: Report
    removed: list[Leftover] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, item: Leftover, action: str) -> Iterator[None]:
        """One removal: recorded and said when it worked, one sentence when it did not."""
        try:
            yield
        except (BotoCoreError, ClientError) as err:
            self.failures.append(
                str(user_error(err, f"{action} {item.resource_id} in {item.region}"))
            )
            return
        self.removed.append(item)
        self.report(f"Removed {item.kind} {item.resource_id} ({item.region}).")

    def result(self) -> Swept:
        return Swept(tuple(self.removed), tuple(self.failures))


def sweep_region(
    ec2: EC2Client, region: str, items: Sequence[Leftover], report: Report
) -> tuple[Swept, set[str]]:
    """Remove these leftovers of one region; also the ids of instances still alive after."""
    sweeping = Sweeping(report)
    by_kind: dict[str, list[Leftover]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    instances = by_kind.get("instance", [])
    blocked = cancel_requests(ec2, region, by_kind.get("spot request", []), instances, sweeping)
    ending = [item for item in instances if item.resource_id not in blocked]
    alive = set(blocked)
    if ending:
        alive |= terminate(ec2, region, ending, sweeping)
    volumes = {item.resource_id: item for item in by_kind.get("volume", [])}
    try:  # what the terminated instances left behind is unattached now
        for volume in ec2.describe_volumes(
            Filters=[*OURS, {"Name": "status", "Values": ["available"]}]
        ).get("Volumes", []):
            volume_id = str(volume["VolumeId"])
            if volume_id not in volumes:
                volumes[volume_id] = Leftover(
                    "aws", region, "volume", volume_id, "available", None, "left by an instance"
                )
    except (BotoCoreError, ClientError) as err:
        sweeping.failures.append(str(user_error(err, f"list the unattached volumes in {region}")))
    for item in volumes.values():
        with sweeping.step(item, "delete volume"):
            ec2.delete_volume(VolumeId=item.resource_id)
    for item in by_kind.get("security group", []):
        with sweeping.step(item, "delete security group"):
            delete_group(ec2, item.resource_id)
    for item in by_kind.get("key pair", []):
        with sweeping.step(item, "delete key pair"):
            ec2.delete_key_pair(KeyName=item.resource_id)
    return sweeping.result(), alive


def cancel_requests(
    ec2: EC2Client,
    region: str,
    requests: Sequence[Leftover],
    instances: Sequence[Leftover],
    sweeping: Sweeping,
) -> set[str]:
    """Cancel our requests and those behind our instances; the instances whose request could
    not be cancelled (they would come back if terminated)."""
    behind: dict[str, str] = {}
    if instances:
        try:
            answer = ec2.describe_instances(
                Filters=[{"Name": "instance-id", "Values": [i.resource_id for i in instances]}]
            )
            for reservation in answer.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    if raw.get("SpotInstanceRequestId"):
                        behind[str(raw["SpotInstanceRequestId"])] = str(raw["InstanceId"])
        except (BotoCoreError, ClientError) as err:
            sweeping.failures.append(str(user_error(err, f"look up the instances in {region}")))
            return {item.resource_id for item in instances}
    listed = {item.resource_id: item for item in requests}
    blocked: set[str] = set()
    for request_id in sorted(set(listed) | set(behind)):
        item = listed.get(request_id) or Leftover(
            "aws", region, "spot request", request_id, "active", 0.0, f"behind {behind[request_id]}"
        )
        failed = len(sweeping.failures)
        with sweeping.step(item, "cancel spot request"):
            try:
                ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[request_id])
            except ClientError as err:
                if error_code(err) != "InvalidSpotInstanceRequestID.NotFound":
                    raise
        if len(sweeping.failures) > failed and request_id in behind:
            blocked.add(behind[request_id])
            reason = sweeping.failures.pop().rstrip(".")
            sweeping.failures.append(
                f"{reason}; so {behind[request_id]} was left running (terminating it would "
                "launch another)."
            )
    return blocked


def terminate(
    ec2: EC2Client, region: str, items: Sequence[Leftover], sweeping: Sweeping
) -> set[str]:
    """Terminate and wait until EC2 says so; the ids still not terminated."""
    ids = [item.resource_id for item in items]
    try:
        ec2.terminate_instances(InstanceIds=ids)
    except (BotoCoreError, ClientError) as err:
        sweeping.failures.append(str(user_error(err, f"terminate {', '.join(ids)} in {region}")))
        return set(ids)
    deadline = time.monotonic() + TERMINATED_WAIT_S
    left = set(ids)
    while left:
        try:
            answer = ec2.describe_instances(
                Filters=[{"Name": "instance-id", "Values": sorted(left)}]
            )
            states = {
                str(raw["InstanceId"]): str(raw.get("State", {}).get("Name"))
                for reservation in answer.get("Reservations", [])
                for raw in reservation.get("Instances", [])
            }
        except (BotoCoreError, ClientError) as err:
            sweeping.failures.append(
                str(user_error(err, f"wait for {', '.join(left)} in {region}"))
            )
            break
        left = {instance for instance in left if states.get(instance, "terminated") != "terminated"}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    for item in items:
        if item.resource_id in left:
            sweeping.failures.append(
                f"{item.resource_id} ({region}) is still shutting down after "
                f"{TERMINATED_WAIT_S:.0f} s; AWS is ending it, run `pacerid-tui sweep` again."
            )
        else:
            sweeping.removed.append(item)
            sweeping.report(f"Terminated instance {item.resource_id} ({region}).")
    return left


def delete_group(ec2: EC2Client, group_id: str) -> None:
    deadline = time.monotonic() + GROUP_RETRY_S
    while True:
        try:
            ec2.delete_security_group(GroupId=group_id)
            return
        except ClientError as err:
            if error_code(err) != "DependencyViolation" or time.monotonic() >= deadline:
                raise
        time.sleep(POLL_S)


def sweep_iam(iam: Any, items: Sequence[Leftover], report: Report) -> Swept:
    """The instance profile (without its role), then the role (without its inline policies)."""
    sweeping = Sweeping(report)
    for item in sorted(items, key=lambda item: item.kind != "instance profile"):
        if item.kind == "instance profile":
            with sweeping.step(item, "delete instance profile"):
                profile = iam.get_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"]
                for role in profile.get("Roles", []):
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=HOST_ROLE, RoleName=role["RoleName"]
                    )
                iam.delete_instance_profile(InstanceProfileName=HOST_ROLE)
        elif item.kind == "role":
            with sweeping.step(item, "delete role"):
                for name in iam.list_role_policies(RoleName=HOST_ROLE).get("PolicyNames", []):
                    iam.delete_role_policy(RoleName=HOST_ROLE, PolicyName=name)
                iam.delete_role(RoleName=HOST_ROLE)
    return sweeping.result()
