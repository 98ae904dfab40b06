"""The security group: SSH in, from this machine only.

The guide's group let SSH in from anywhere. Here the allowed range is this machine's public IP
(/32, or /128 for IPv6), looked up at launch from `instance.caller_ip_url`; when the look-up
fails we refuse rather than guess, unless `instance.ssh_cidr` names a range. A world-open range
is honoured only when written explicitly, and then it is warned about; a world-open SSH rule
left in the group by the old script is removed when it was not asked for.

Each machine gets one rule, described with the tool's and the machine's name. When this
machine's address changes (a laptop moving networks mid-run), `ensure_security_group` runs
again before the SSH connection is opened again: the rule follows the address and the old one is
revoked. Rules of other machines stay while a live instance sits in the group, and go with it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_session import aws_errors, error_code, user_error
from pacerid_tui.core.cloud.base import MANAGED_TAG, Report
from pacerid_tui.core.kernel.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

CALLER_IP_TIMEOUT_S = 5
"""checkip.amazonaws.com answers in milliseconds; five seconds covers a slow link."""

SSH_PORT = 22
WORLD = frozenset({"0.0.0.0/0", "::/0"})
GROUP_DESCRIPTION = "pacerid-tui: SSH to training instances"
RULE_PREFIX = "pacerid-tui SSH"
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


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


def rule_description(machine: str | None = None) -> str:
    """What our SSH rules say: the tool and the machine they let in (EC2's allowed characters)."""
    name = re.sub(r"[^a-zA-Z0-9._\-:/()#,@+=&;{}!$*]", "-", machine or socket.gethostname())
    return f"{RULE_PREFIX} from {name[:200]}"


@dataclass(frozen=True)
class Rule:
    """One range TCP port 22 is open to in the group."""

    cidr: str
    ports: tuple[int, int]
    description: str

    @property
    def ours(self) -> bool:
        return self.description.startswith(RULE_PREFIX)


def find_group(ec2: EC2Client, name: str, vpc_id: str | None) -> Any | None:
    """The group called `name` (in `vpc_id` when given: names are unique per VPC only)."""
    filters: list[Any] = [{"Name": "group-name", "Values": [name]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    with aws_errors(f"look up security group {name}"):
        groups = ec2.describe_security_groups(Filters=filters).get("SecurityGroups", [])
    return groups[0] if groups else None


def ensure_security_group(
    ec2: EC2Client,
    config: InstanceConfig,
    cidr: str,
    report: Report,
    *,
    vpc_id: str | None = None,
    machine: str | None = None,
) -> str:
    """The id of the group named `instance.security_group` (in `vpc_id`), letting SSH in from
    `cidr` with one rule of ours; rules no live run needs are revoked (see `stale_rules`)."""
    name = config.security_group
    group = find_group(ec2, name, vpc_id)
    if group is not None:
        group_id = group["GroupId"]
        rules = ssh_rules(group.get("IpPermissions", []))
    else:
        options: dict[str, Any] = {"VpcId": vpc_id} if vpc_id else {}
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
                **options,
            )["GroupId"]
        report(f"Created security group {name}{f' in {vpc_id}' if vpc_id else ''}.")
        rules = []
    description = rule_description(machine)
    if cidr not in {rule.cidr for rule in rules}:
        allow_ssh(ec2, group_id, cidr, description)
        report(f"Security group {name} allows SSH from {cidr}.")
    for rule in stale_rules(rules, cidr, description, lambda: group_in_use(ec2, group_id)):
        with aws_errors(f"remove a stale SSH rule from {name}"):
            ec2.revoke_security_group_ingress(
                GroupId=group_id, IpPermissions=[permission(rule.cidr, rule.ports)]
            )
        source = f"anywhere ({rule.cidr})" if rule.cidr in WORLD else f"{rule.cidr} (not needed)"
        report(f"Removed the rule letting SSH into {name} from {source}.")
    return group_id


def stale_rules(
    rules: list[Rule], cidr: str, description: str, in_use: Callable[[], bool]
) -> list[Rule]:
    """Rules to revoke now that `cidr` is the one this machine needs.

    A world-open rule nobody asked for (the guide's old script made one); this machine's own
    rule for an address it has left; and any rule of ours at all when no live instance uses the
    group (another machine's rule is kept while instances may need it). `in_use` is asked only
    when another machine's rule is found.
    """
    stale = []
    for rule in rules:
        if rule.cidr == cidr:
            continue
        mine = rule.ours and rule.description == description
        if rule.cidr in WORLD or mine or (rule.ours and not in_use()):
            stale.append(rule)
    return sorted(stale, key=lambda rule: rule.cidr)


def group_in_use(ec2: EC2Client, group_id: str) -> bool:
    """Whether a live instance (pending to stopped) sits in the group."""
    with aws_errors("describe instances"):
        answer = ec2.describe_instances(
            Filters=[
                {"Name": "instance.group-id", "Values": [group_id]},
                {"Name": "instance-state-name", "Values": LIVE_STATES},
            ]
        )
    return any(reservation.get("Instances") for reservation in answer.get("Reservations", []))


def ssh_rules(permissions: list[Any]) -> list[Rule]:
    """Every range TCP port 22 is open to, with its rule's ports and description."""
    found: list[Rule] = []
    for rule in permissions:
        ports = (rule.get("FromPort", 0), rule.get("ToPort", 65535))
        if rule.get("IpProtocol") != "tcp" or not ports[0] <= SSH_PORT <= ports[1]:
            continue
        for entry in rule.get("IpRanges", []):
            found.append(Rule(entry["CidrIp"], ports, entry.get("Description", "")))
        for entry in rule.get("Ipv6Ranges", []):
            found.append(Rule(entry["CidrIpv6"], ports, entry.get("Description", "")))
    return found


def ssh_ranges(permissions: list[Any]) -> dict[str, tuple[int, int]]:
    """The CIDR ranges that TCP port 22 is already open to, with their rule's port range."""
    return {rule.cidr: rule.ports for rule in ssh_rules(permissions)}


def permission(
    cidr: str, ports: tuple[int, int] = (SSH_PORT, SSH_PORT), description: str | None = None
) -> Any:
    key, field = ("Ipv6Ranges", "CidrIpv6") if ":" in cidr else ("IpRanges", "CidrIp")
    entry = {field: cidr} if description is None else {field: cidr, "Description": description}
    return {
        "IpProtocol": "tcp",
        "FromPort": ports[0],
        "ToPort": ports[1],
        key: [entry],
    }


def allow_ssh(ec2: EC2Client, group_id: str, cidr: str, description: str | None = None) -> None:
    try:
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[permission(cidr, description=description)]
        )
    except ClientError as err:
        if error_code(err) != "InvalidPermission.Duplicate":
            raise user_error(err, f"allow SSH from {cidr}") from err
