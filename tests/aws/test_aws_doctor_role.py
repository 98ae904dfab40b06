"""doctor's `role` check: may this account create and pass the instance role stop mode needs?

IAM's policy simulator (SimulatePrincipalPolicy) and STS's caller identity come from a loopback
stand-in shaped from the IAM and STS API references (iam_standin.py; moto has no simulator);
GetRole and the instance profile are moto's. Allowed → ok; any action denied → warn with the
fallback to relaunch; the simulator itself refused → warn "cannot tell"; a role that exists
already needs only iam:PassRole; relaunch and on-demand need nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_seed import REGION
from iam_standin import ACCOUNT, TRAINER, IamStandIn

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.aws_role import HOST_ROLE, TRUST_POLICY
from pacerid_tui.core.kernel.checks import OK, WARN, Check
from pacerid_tui.core.steps.doctor import run_checks

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{HOST_ROLE}"
PROFILE_ARN = f"arn:aws:iam::{ACCOUNT}:instance-profile/{HOST_ROLE}"


@pytest.fixture
def iam(iam_standin: IamStandIn) -> IamStandIn:
    return iam_standin


def role_check(config: Path, **instance: Any) -> Check:
    raw = yaml.safe_load(config.read_text())
    raw["instance"].update(instance)
    config.write_text(yaml.safe_dump(raw))
    [check] = run_checks(load_config(config), ["role"])
    return check


def test_allowed_to_create_and_pass_the_role_is_ok(aws_config: Path, iam: IamStandIn) -> None:
    check = role_check(aws_config, interruption="stop")
    assert check.status == OK, check
    assert f"{HOST_ROLE} may be created by {TRAINER}: stop mode works" in check.detail
    on_role, on_profile = iam.simulated
    assert on_role.principal == on_profile.principal == TRAINER
    assert (on_role.actions, on_role.resources) == (
        ["iam:CreateRole", "iam:PutRolePolicy", "iam:PassRole"],
        [ROLE_ARN],
    )
    assert (on_profile.actions, on_profile.resources) == (
        ["iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile"],
        [PROFILE_ARN],
    )
    assert on_role.context == {"iam:PassedToService": ["ec2.amazonaws.com"]}


def test_denied_actions_warn_that_runs_fall_back_to_relaunch(
    aws_config: Path, iam: IamStandIn
) -> None:
    iam.decisions = {"iam:CreateRole": "explicitDeny", "iam:PassRole": "implicitDeny"}
    check = role_check(aws_config, interruption="stop")
    assert check.status == WARN, check
    assert check.detail.startswith(
        f"Stop mode needs iam:CreateRole (explicitDeny), iam:PassRole (implicitDeny) for {TRAINER}"
    )
    assert "runs fall back to relaunch" in check.detail
    assert "iam:CreateRole, iam:PassRole" in check.fix
    assert "interruption: relaunch" in check.fix


def test_a_refused_simulator_cannot_tell(aws_config: Path, iam: IamStandIn) -> None:
    iam.refuse_simulate = True
    check = role_check(aws_config, interruption="stop")
    assert check.status == WARN, check
    assert check.detail.startswith("Cannot tell whether stop mode gets its instance role")
    assert "iam:SimulatePrincipalPolicy, AccessDenied" in check.detail
    assert "falls back to relaunch" in check.detail and iam.simulated == []


def test_a_role_that_exists_needs_only_pass_role_and_an_assumed_role_is_simulated_as_its_role(
    aws_config: Path, iam: IamStandIn
) -> None:
    client = boto3.client("iam", region_name=REGION, endpoint_url=iam.url)
    client.create_role(RoleName=HOST_ROLE, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
    client.create_instance_profile(InstanceProfileName=HOST_ROLE)
    client.add_role_to_instance_profile(InstanceProfileName=HOST_ROLE, RoleName=HOST_ROLE)
    iam.caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/Developer/alice@example.com"
    iam.decisions = {"iam:CreateRole": "implicitDeny"}  # not needed any more
    check = role_check(aws_config, interruption="stop")
    assert check.status == OK, check
    developer = f"arn:aws:iam::{ACCOUNT}:role/Developer"
    assert f"{HOST_ROLE} exists and may be passed to EC2 by {developer}" in check.detail
    [asked] = iam.simulated
    assert (asked.principal, asked.actions, asked.resources) == (
        developer,
        ["iam:PassRole"],
        [ROLE_ARN],
    )

    iam.decisions = {"iam:PassRole": "implicitDeny"}
    check = role_check(aws_config, interruption="stop")
    assert check.status == WARN and "iam:PassRole (implicitDeny)" in check.detail


def test_relaunch_and_on_demand_need_no_role(aws_config: Path, iam: IamStandIn) -> None:
    relaunch = role_check(aws_config, interruption="relaunch")
    assert (relaunch.status, relaunch.detail) == (
        OK,
        "Not needed: instance.interruption is relaunch.",
    )
    on_demand = role_check(aws_config, interruption="stop", market="on-demand")
    assert on_demand.status == OK and on_demand.detail.startswith("Not needed:")
    assert "on-demand" in on_demand.detail and iam.simulated == []


def test_the_root_user_is_not_simulated(aws_config: Path, iam: IamStandIn) -> None:
    """The simulator takes users, groups and roles; the account's root user may do anything."""
    iam.caller = f"arn:aws:iam::{ACCOUNT}:root"
    check = role_check(aws_config, interruption="stop")
    assert check.status == OK and "root user" in check.detail and iam.simulated == []
