"""Reading EC2's description of an instance into the provider-neutral `Instance`.

Everything the dashboard needs must come from one DescribeInstances answer, so launch stores
the run id and the image name in tags; the end time is parsed from StateTransitionReason, which
is where EC2 records when an instance was stopped or terminated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_ami import login_user
from pacerid_tui.core.cloud.aws_keypair import key_path_for
from pacerid_tui.core.cloud.base import RUN_ID_TAG
from pacerid_tui.core.kernel.models import Instance, InstanceState

IMAGE_NAME_TAG = "pacerid:image"
"""The AMI name, kept on the instance so status needs no DescribeImages call (and the login
user follows from it)."""

VOLUME_GB_TAG = "pacerid:volume-gb"
"""The root volume's size, so the cost of its storage reads back from DescribeInstances."""

INTERRUPTION_TAG = "pacerid:interruption"
"""On spot instances: `stop` or `relaunch`, what an interruption does to this one (the config's
`instance.interruption`, or `relaunch` where stop mode fell back), for a person in the console."""

ALIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]
"""Instance states that may still bill (a stopped one, its volume)."""

STATE_REASONS = {
    "Server.SpotInstanceTermination": "interrupted by AWS",
    "Server.SpotInstanceShutdown": "interrupted by AWS",
    "Server.InsufficientInstanceCapacity": "AWS ran out of capacity",
    "Server.InternalError": "failed inside AWS",
    "Server.ScheduledStop": "retired by AWS",
    "Client.UserInitiatedShutdown": "terminated by request",
    "Client.InstanceInitiatedShutdown": "shut down from inside the instance",
    "Client.VolumeLimitExceeded": "hit the EBS volume limit",
    "Client.InternalError": "failed to boot",
    "Client.InvalidSnapshot.NotFound": "failed to boot: its image snapshot is gone",
}
"""EC2 StateReason codes as the dashboard says them."""

REASON_TIME = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")

FINGERPRINTS_BLOCK = re.compile(
    r"-----BEGIN SSH HOST KEY FINGERPRINTS-----(.*?)-----END SSH HOST KEY FINGERPRINTS-----",
    re.DOTALL,
)
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]+=*")


def tag_value(raw: Mapping[str, Any], key: str) -> str | None:
    for tag in raw.get("Tags", []):
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None


def state_of(raw: Mapping[str, Any]) -> InstanceState:
    try:
        return InstanceState(raw.get("State", {}).get("Name", "unknown"))
    except ValueError:
        return InstanceState.UNKNOWN


def state_reason(raw: Mapping[str, Any]) -> str | None:
    """A human phrase for why the instance left `running`, or None while nothing happened."""
    reason = raw.get("StateReason") or {}
    code = reason.get("Code")
    if not code:
        return None
    return STATE_REASONS.get(code) or str(reason.get("Message") or code)


def ended_at(raw: Mapping[str, Any], state: InstanceState) -> float | None:
    """When the instance stopped billing: EC2 writes "User initiated (… GMT)" and the like."""
    if state not in (InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED):
        return None
    match = REASON_TIME.search(str(raw.get("StateTransitionReason") or ""))
    if match is None:
        return None
    moment = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
    return moment.replace(tzinfo=timezone.utc).timestamp()


def to_instance(raw: Mapping[str, Any], config: InstanceConfig) -> Instance:
    """One DescribeInstances/RunInstances instance entry as an `Instance`."""
    state = state_of(raw)
    launch_time = raw.get("LaunchTime")
    key_name = raw.get("KeyName")
    host = raw.get("PublicIpAddress")
    if host is None and config.ssh_proxy_command:  # a bastion in the VPC reaches private ones
        host = raw.get("PrivateIpAddress")
    image_name = tag_value(raw, IMAGE_NAME_TAG)
    volume = tag_value(raw, VOLUME_GB_TAG)
    return Instance(
        instance_id=raw["InstanceId"],
        provider="aws",
        state=state,
        host=host,
        port=22,
        user=config.ssh_user or login_user(image_name),
        key_path=str(key_path_for(config, key_name)) if key_name else None,
        launched_at=launch_time.timestamp() if isinstance(launch_time, datetime) else None,
        ended_at=ended_at(raw, state),
        region=config.region,
        zone=raw.get("Placement", {}).get("AvailabilityZone"),
        instance_type=raw.get("InstanceType", "unknown"),
        market="spot" if raw.get("InstanceLifecycle") == "spot" else "on-demand",
        state_reason=state_reason(raw),
        image_name=image_name,
        volume_gb=int(volume) if volume and volume.isdigit() else None,
        run_id=tag_value(raw, RUN_ID_TAG),
        spot_request_id=raw.get("SpotInstanceRequestId"),
        state_code=(raw.get("StateReason") or {}).get("Code"),
    )


def host_key_fingerprints(console_output: str) -> list[str]:
    """The SHA256 host key fingerprints cloud-init prints to the console on first boot."""
    block = FINGERPRINTS_BLOCK.search(console_output)
    if block is None:
        return []
    return FINGERPRINT.findall(block.group(1))
