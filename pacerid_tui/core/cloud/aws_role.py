"""The instance role of `instance.interruption: stop`: the host may end itself, and nothing else.

A persistent spot request reopens when its instance is terminated, and EC2 then launches a fresh
instance; so a host that ends its own run (trainer/watchdog.py) must cancel its spot request
first, then terminate itself. That needs credentials on the host, given as an instance profile
whose inline policy allows exactly `ec2:CancelSpotInstanceRequests` and
`ec2:TerminateInstances`, each only on resources tagged `pacerid:managed=true` (both actions
support `aws:ResourceTag` on their resource: the spot request carries our tag from launch, see
aws_launch.py). No managed policy, no describe: the host is told its request id instead.

When the account may not create the role (IAM AccessDenied), the caller falls back to
`relaunch` with a one-line warning: a stop-mode host that cannot clean up after itself would
leave a stopped instance and an open request behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud.aws_session import error_code, error_message, user_error
from pacerid_tui.core.cloud.base import MANAGED_TAG, Report

HOST_ROLE = "pacerid-ml-host"
"""The role's and the instance profile's name (one per account: IAM is global)."""

POLICY_NAME = "pacerid-end-own-run"

DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}

OURS = {"StringEquals": {f"aws:ResourceTag/{MANAGED_TAG}": "true"}}

HOST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "CancelOwnSpotRequest",
            "Effect": "Allow",
            "Action": "ec2:CancelSpotInstanceRequests",
            "Resource": "arn:aws:ec2:*:*:spot-instances-request/*",
            "Condition": OURS,
        },
        {
            "Sid": "TerminateOwnInstance",
            "Effect": "Allow",
            "Action": "ec2:TerminateInstances",
            "Resource": "arn:aws:ec2:*:*:instance/*",
            "Condition": OURS,
        },
    ],
}


PROFILE_SETTLE_S = 60.0
"""How long a launch with a just-made profile retries EC2's "invalid profile" answer: IAM is
eventually consistent, and EC2 sees a new instance profile some seconds after IAM made it (IAM
user guide, "Changes that I make are not always immediately visible")."""
SETTLE_POLL_S = 3.0


@dataclass(frozen=True)
class HostProfile:
    arn: str
    created: bool
    """Made by this launch: EC2 may not know it yet (see `Settling`)."""


class Settling:
    """The launch client, for a launch with a profile IAM has just made: RunInstances answers
    InvalidParameterValue naming `iamInstanceProfile` until EC2 sees the profile, and that one
    answer is retried for up to PROFILE_SETTLE_S; everything else passes straight through."""

    def __init__(self, client: Any, report: Report) -> None:
        self.client = client
        self.report = report

    def run_instances(self, **request: Any) -> Any:
        deadline = time.monotonic() + PROFILE_SETTLE_S
        while True:
            try:
                return self.client.run_instances(**request)
            except ClientError as err:
                unseen = error_code(err) == "InvalidParameterValue" and "iamInstanceProfile" in (
                    error_message(err)
                )
                if not unseen or time.monotonic() >= deadline:
                    raise
                self.report(f"EC2 does not see the new role {HOST_ROLE} yet; retrying…")
                time.sleep(SETTLE_POLL_S)


def ensure_host_profile(iam: Any, report: Report) -> HostProfile | None:
    """The host instance profile, created (with its role) when missing; None when IAM refuses,
    after saying so in one line."""
    try:
        return _ensure(iam, report)
    except ClientError as err:
        if error_code(err) not in DENIED_CODES:
            raise user_error(err, f"create the instance role {HOST_ROLE}") from err
        report(
            f"Warning: this account may not create the instance role {HOST_ROLE} "
            f"({error_code(err)}), so interruption falls back to relaunch: an interrupted "
            "instance ends and only a running controller launches a replacement."
        )
        return None
    except BotoCoreError as err:
        raise user_error(err, f"create the instance role {HOST_ROLE}") from err


def _ensure(iam: Any, report: Report) -> HostProfile:
    try:
        iam.get_role(RoleName=HOST_ROLE)
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
        report(f"Creating the instance role {HOST_ROLE} (may only end its own tagged run)…")
        iam.create_role(
            RoleName=HOST_ROLE,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="pacerid-tui hosts: cancel their own spot request and terminate themselves",
            Tags=[{"Key": MANAGED_TAG, "Value": "true"}],
        )
    # Written every time, so a role from an older version gets today's policy.
    iam.put_role_policy(
        RoleName=HOST_ROLE, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(HOST_POLICY)
    )
    created = False
    try:
        profile = iam.get_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"]
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
        profile = iam.create_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"]
        created = True
    if HOST_ROLE not in [role["RoleName"] for role in profile.get("Roles", [])]:
        iam.add_role_to_instance_profile(InstanceProfileName=HOST_ROLE, RoleName=HOST_ROLE)
        created = True
    return HostProfile(str(profile["Arn"]), created)
