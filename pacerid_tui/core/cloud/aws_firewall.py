"""The security group: SSH in, from this machine only.

The guide's group let SSH in from anywhere. Here the allowed range is this machine's public IP
(/32, or /128 for IPv6), looked up at launch from `instance.caller_ip_url`; when the look-up
fails we refuse rather than guess, unless `instance.ssh_cidr` names a range. A world-open range
is honoured only when written explicitly, and then it is warned about; a world-open SSH rule
left in the group by the old script is removed when it was not asked for.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_session import aws_errors, error_code, user_error
from pacerid_tui.core.cloud.base import MANAGED_TAG, Report
from pacerid_tui.core.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

CALLER_IP_TIMEOUT_S = 5
"""checkip.amazonaws.com answers in milliseconds; five seconds covers a slow link."""

SSH_PORT = 22
WORLD = frozenset({"0.0.0.0/0", "::/0"})
GROUP_DESCRIPTION = "pacerid-tui: SSH to training instances"


def caller_ip(url: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """This machine's public IP address as the look-up service sees it."""
    try:
        with urllib.request.urlopen(url, timeout=CALLER_IP_TIMEOUT_S) as answer:
            text = answer.read(100).decode("ascii", "replace").strip()
        return ipaddress.ip_address(text)
    except (OSError, ValueError) as err:
        raise ProviderError(
            f"Cannot find this machine's public IP at {url} ({err}); set instance.ssh_cidr "
            "(for example 203.0.113.7/32) to say who may SSH to the instance."
        ) from err


def allowed_cidr(config: InstanceConfig) -> str:
    """The range SSH is opened to: `instance.ssh_cidr`, else this machine's address alone."""
    if config.ssh_cidr:
        try:
            return str(ipaddress.ip_network(config.ssh_cidr, strict=False))
        except ValueError:
            raise ConfigError(
                f"instance.ssh_cidr = {config.ssh_cidr!r} is not a CIDR range "
                "(for example 203.0.113.7/32)."
            ) from None
    address = caller_ip(config.caller_ip_url)
    return f"{address}/{address.max_prefixlen}"


def ssh_warning(config: InstanceConfig) -> str | None:
    """A warning to keep on screen when SSH is open to the whole internet."""
    if config.ssh_cidr is None:
        return None
    try:
        cidr = str(ipaddress.ip_network(config.ssh_cidr, strict=False))
    except ValueError:
        return None
    if cidr not in WORLD:
        return None
    return f"SSH is open to the whole internet (instance.ssh_cidr = {cidr}); narrow it to your IP."


def ensure_security_group(ec2: EC2Client, config: InstanceConfig, cidr: str, report: Report) -> str:
    """The id of the group named `instance.security_group`, with an SSH rule for `cidr`."""
    name = config.security_group
    with aws_errors(f"look up security group {name}"):
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [name]}]
        ).get("SecurityGroups", [])
    if groups:
        group_id = groups[0]["GroupId"]
        rules = ssh_ranges(groups[0].get("IpPermissions", []))
    else:
        with aws_errors(f"create security group {name}"):
            group_id = ec2.create_security_group(
                GroupName=name,
                Description=GROUP_DESCRIPTION,
                TagSpecifications=[
                    {
                        "ResourceType": "security-group",
                        "Tags": [{"Key": MANAGED_TAG, "Value": "true"}],
                    }
                ],
            )["GroupId"]
        report(f"Created security group {name}.")
        rules = {}
    if cidr not in rules:
        allow_ssh(ec2, group_id, cidr)
        report(f"Security group {name} allows SSH from {cidr}.")
    for stale in sorted(WORLD.intersection(rules) - {cidr}):
        with aws_errors(f"remove the open SSH rule from {name}"):
            ec2.revoke_security_group_ingress(
                GroupId=group_id, IpPermissions=[permission(stale, rules[stale])]
            )
        report(f"Removed the rule letting SSH into {name} from anywhere ({stale}).")
    return group_id


def ssh_ranges(permissions: list[Any]) -> dict[str, tuple[int, int]]:
    """The CIDR ranges that TCP port 22 is already open to, with their rule's port range."""
    ranges: dict[str, tuple[int, int]] = {}
    for rule in permissions:
        ports = (rule.get("FromPort", 0), rule.get("ToPort", 65535))
        if rule.get("IpProtocol") != "tcp" or not ports[0] <= SSH_PORT <= ports[1]:
            continue
        for entry in rule.get("IpRanges", []):
            ranges[entry["CidrIp"]] = ports
        for entry in rule.get("Ipv6Ranges", []):
            ranges[entry["CidrIpv6"]] = ports
    return ranges


def permission(cidr: str, ports: tuple[int, int] = (SSH_PORT, SSH_PORT)) -> Any:
    key, field = ("Ipv6Ranges", "CidrIpv6") if ":" in cidr else ("IpRanges", "CidrIp")
    return {
        "IpProtocol": "tcp",
        "FromPort": ports[0],
        "ToPort": ports[1],
        key: [{field: cidr}],
    }


def allow_ssh(ec2: EC2Client, group_id: str, cidr: str) -> None:
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission(cidr)])
    except ClientError as err:
        if error_code(err) != "InvalidPermission.Duplicate":
            raise user_error(err, f"allow SSH from {cidr}") from err
