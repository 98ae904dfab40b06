"""Security group against moto: SSH from this machine's /32 only, unless told otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from aws_seed import CALLER_IP, MOVED_IP, Reports
from pydantic import ValidationError

from pacerid_tui.core.cloud.aws_firewall import (
    Rule,
    allowed_cidr,
    ensure_security_group,
    permission,
    rule_description,
    ssh_ranges,
    ssh_rules,
)
from pacerid_tui.core.kernel.errors import ProviderError
from pacerid_tui.core.kernel.models import InstanceSpec


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
    # A bad value never gets this far: the config refuses it (tests/core/test_config.py).
    with pytest.raises(ValidationError, match=r"ssh_cidr"):
        make_config(ssh_cidr="nope")


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


def rules_of(ec2: Any, group_id: str) -> list[Rule]:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return ssh_rules(group["IpPermissions"])


def test_the_rule_follows_this_machines_address(
    make_provider: Any, caller_ip_url: str, ec2: Any, reports: Reports
) -> None:
    """The laptop moves to another network mid-run: before SSH connects again, the rule moves."""
    provider = make_provider()
    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["pacerid-ml-sg"]}]
    )["SecurityGroups"]
    [group_id] = [group["GroupId"] for group in groups]
    [rule] = rules_of(ec2, group_id)
    assert (rule.cidr, rule.description) == (f"{CALLER_IP}/32", rule_description())
    moved = make_provider(caller_ip_url=caller_ip_url + "moved")
    moved.let_caller_in(reports)
    assert [(r.cidr, r.description) for r in rules_of(ec2, group_id)] == [
        (f"{MOVED_IP}/32", rule_description())
    ]
    removed = f"Removed the rule letting SSH into pacerid-ml-sg from {CALLER_IP}/32 (not needed)."
    assert removed in reports
    provider.terminate(instance.instance_id)


def test_another_machines_rule_stays_while_an_instance_may_need_it(
    make_provider: Any, ec2: Any, reports: Reports
) -> None:
    provider = make_provider()
    ec2_ = provider.clients.ec2
    group_id = ensure_security_group(ec2_, provider.config, "192.0.2.1/32", reports, machine="a")
    instance = ec2.run_instances(
        ImageId="ami-0a1b2c3d4e5f60002", MinCount=1, MaxCount=1, SecurityGroupIds=[group_id]
    )["Instances"][0]["InstanceId"]
    ensure_security_group(ec2_, provider.config, "192.0.2.2/32", reports, machine="b")
    assert sorted(r.cidr for r in rules_of(ec2, group_id)) == ["192.0.2.1/32", "192.0.2.2/32"]
    ec2.terminate_instances(InstanceIds=[instance])
    ensure_security_group(ec2_, provider.config, "192.0.2.2/32", reports, machine="b")
    assert [r.cidr for r in rules_of(ec2, group_id)] == ["192.0.2.2/32"]
