"""Where an instance can go: the configured subnet, or the default VPC's subnet in each zone.

Real EC2 refuses a launch or a security group without a VPC when the account has no default
VPC (VPCIdNotSpecified), and refuses a zone that has no default subnet. So the network is
resolved before anything is created: `instance.subnet_id` when set (its VPC and its zone only),
else the default VPC and the zones where it has a default subnet. Every launch then names its
subnet, and the security group is looked up and created in that VPC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_session import aws_errors, error_code, user_error
from pacerid_tui.core.kernel.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def no_default_vpc(region: str) -> str:
    return (
        f"The account has no default VPC in {region}; set instance.subnet_id to a subnet with "
        f"public IPs, or create a default VPC: `aws ec2 create-default-vpc --region {region}`."
    )


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnets: dict[str, str]
    """Subnet id by availability zone: where a launch may go."""
    public: dict[str, bool] = field(default_factory=dict)
    """Subnet id → whether it gives instances a public IPv4 address at launch."""
    configured: bool = False
    """True when the subnet is `instance.subnet_id`, False for the default VPC's."""


def find_network(ec2: EC2Client, config: InstanceConfig) -> Network:
    """The subnets a launch may use; ConfigError with the fix when there are none."""
    if config.subnet_id:
        return configured_subnet(ec2, config.subnet_id, config.region)
    with aws_errors("look up the default VPC"):
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}]).get(
            "Vpcs", []
        )
    if not vpcs:
        raise ConfigError(no_default_vpc(config.region))
    vpc_id = vpcs[0]["VpcId"]
    with aws_errors("look up the default subnets"):
        found = ec2.describe_subnets(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "default-for-az", "Values": ["true"]},
            ]
        ).get("Subnets", [])
    subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in found if s.get("State") != "pending"}
    if not subnets:
        raise ConfigError(
            f"The default VPC {vpc_id} in {config.region} has no default subnet; set "
            "instance.subnet_id, or add one with `aws ec2 create-default-subnet "
            "--availability-zone ZONE`."
        )
    public = {s["SubnetId"]: bool(s.get("MapPublicIpOnLaunch")) for s in found}
    return Network(vpc_id, dict(sorted(subnets.items())), public)


def configured_subnet(ec2: EC2Client, subnet_id: str, region: str) -> Network:
    try:
        found = ec2.describe_subnets(SubnetIds=[subnet_id]).get("Subnets", [])
    except ClientError as err:
        if not error_code(err).startswith("InvalidSubnetID"):
            raise user_error(err, f"look up subnet {subnet_id}") from err
        found = []
    if not found:
        raise ConfigError(
            f"instance.subnet_id = {subnet_id!r} is not a subnet in {region}; list yours with "
            f"`aws ec2 describe-subnets --region {region}` and fix the key."
        )
    subnet = found[0]
    return Network(
        subnet["VpcId"],
        {subnet["AvailabilityZone"]: subnet_id},
        {subnet_id: bool(subnet.get("MapPublicIpOnLaunch"))},
        configured=True,
    )


def usable_zones(network: Network, zones: list[str]) -> tuple[list[str], list[str]]:
    """(zones to try, zones skipped for want of a subnet), in the order given."""
    usable = [zone for zone in zones if zone in network.subnets]
    return usable, [zone for zone in zones if zone not in network.subnets]
