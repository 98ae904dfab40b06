"""Security group against moto: SSH from this machine's /32 only, unless told otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from aws_seed import CALLER_IP, Reports

from pacerid_tui.core.cloud.aws_firewall import (
    allowed_cidr,
    ensure_security_group,
    permission,
    ssh_ranges,
)
from pacerid_tui.core.errors import ConfigError, ProviderError


def ssh_cidrs(ec2: Any, group_id: str) -> dict[str, tuple[int, int]]:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return ssh_ranges(group["IpPermissions"])


def test_default_rule_is_the_callers_address_alone(
    make_provider: Any, ec2: Any, reports: Reports
) -> None:
    provider = make_provider()
    cidr = allowed_cidr(provider.config)
    assert cidr == f"{CALLER_IP}/32"
    group_id = ensure_security_group(provider.clients.ec2, provider.config, cidr, reports)
    assert ssh_cidrs(ec2, group_id) == {f"{CALLER_IP}/32": (22, 22)}
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["GroupName"] == "pacerid-ml-sg"
    assert {"Key": "pacerid:managed", "Value": "true"} in group["Tags"]
    assert provider.ssh_warning() is None
    # A second launch finds the group and the rule and changes nothing.
    assert ensure_security_group(provider.clients.ec2, provider.config, cidr, reports) == group_id
    assert len(reports) == 2


@pytest.mark.parametrize("path", ["fail", "junk"])
def test_failed_ip_look_up_is_refused(make_config: Any, caller_ip_url: str, path: str) -> None:
    config = make_config(caller_ip_url=caller_ip_url + path)
    with pytest.raises(ProviderError, match=r"public IP .* set instance.ssh_cidr"):
        allowed_cidr(config)


def test_unreachable_ip_service_is_refused(make_config: Any) -> None:
    config = make_config(caller_ip_url="http://127.0.0.1:9/")
    with pytest.raises(ProviderError, match=r"set instance\.ssh_cidr"):
        allowed_cidr(config)


def test_explicit_cidr_needs_no_look_up(make_config: Any) -> None:
    config = make_config(caller_ip_url="http://127.0.0.1:9/", ssh_cidr="198.51.100.0/24")
    assert allowed_cidr(config) == "198.51.100.0/24"
    with pytest.raises(ConfigError, match=r"instance\.ssh_cidr = 'nope'"):
        allowed_cidr(make_config(ssh_cidr="nope"))


def test_world_open_ssh_only_when_explicit_and_then_warned(
    make_provider: Any, ec2: Any, reports: Reports
) -> None:
    provider = make_provider(ssh_cidr="0.0.0.0/0")
    warning = provider.ssh_warning()
    assert warning is not None and "whole internet" in warning
    group_id = ensure_security_group(
        provider.clients.ec2, provider.config, allowed_cidr(provider.config), reports
    )
    assert ssh_cidrs(ec2, group_id) == {"0.0.0.0/0": (22, 22)}


def test_old_world_open_rule_is_removed_when_not_asked_for(
    make_provider: Any, ec2: Any, reports: Reports
) -> None:
    group_id = ec2.create_security_group(GroupName="pacerid-ml-sg", Description="old script")[
        "GroupId"
    ]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission("0.0.0.0/0")])
    provider = make_provider()
    cidr = allowed_cidr(provider.config)
    assert ensure_security_group(provider.clients.ec2, provider.config, cidr, reports) == group_id
    assert ssh_cidrs(ec2, group_id) == {f"{CALLER_IP}/32": (22, 22)}
    assert any("from anywhere (0.0.0.0/0)" in line for line in reports)
