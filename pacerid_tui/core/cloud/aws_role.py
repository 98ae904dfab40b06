"""The instance role of `instance.interruption: stop`: the host may end itself, and nothing else.

A persistent spot request reopens when its instance is terminated, and EC2 then launches a fresh
instance; so a host that ends its own run (trainer/watchdog.py) must cancel its spot request
first, then terminate itself. That needs credentials on the host, given as an instance profile
whose inline policy allows exactly `ec2:CancelSpotInstanceRequests` and
`ec2:TerminateInstances`, each only on the host's own instance and its own request.

What IAM can check for these two actions (Service Authorization Reference, Amazon EC2: both
resource types, `instance` and `spot-instances-request`, take `aws:ResourceTag/${TagKey}` and
`ec2:ResourceTag/${TagKey}`): a resource's tags. No documented condition key names the target's
own ARN (`aws:ARN`, seen in the wild, is undocumented), and a role cannot hold per-instance
tags (an instance profile's session has no session tags). What the request carries is
`ec2:SourceInstanceARN`, the ARN of the instance the call comes from, present only for calls
signed with an instance profile's credentials, and usable as a policy variable (IAM user
guide, "IAM policy elements: Variables and tags"; AWS's own managed policy for Elastic Disaster
Recovery matches a tag against `${ec2:SourceInstanceARN}` the same way). So right after the
launch, the controller tags the instance and its spot request with the instance's ARN
(`pacerid:host`, `tag_own`), and each statement allows its action only where that tag equals
`${ec2:SourceInstanceARN}` and `pacerid:managed` is `true`: a host can reach no other
instance's request or instance, and a call made with no instance behind it matches nothing (the
variable is then absent). ARNs are built from the caller's partition and account (STS
GetCallerIdentity), so the policy holds in aws-cn and aws-us-gov too. No managed policy, no
describe: the host is told its request id instead.

When the account may not create the role (IAM AccessDenied), or may create it but not pass it
to EC2 (RunInstances refuses `iam:PassRole`), the caller falls back to `relaunch` with a
one-line warning: a stop-mode host that cannot clean up after itself would leave a stopped
instance and an open request behind. `doctor`'s role check (`may_use`) asks IAM's policy
simulator the same question before a launch does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud.aws_session import aws_errors, error_code, error_message, user_error
from pacerid_tui.core.cloud.base import MANAGED_TAG, Report
from pacerid_tui.core.kernel.errors import ProviderError

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

HOST_TAG = "pacerid:host"
"""On a stop-mode instance and its spot request: the instance's ARN, which the host role's
statements compare with `${ec2:SourceInstanceARN}`."""


@dataclass(frozen=True)
class Caller:
    """Who runs the launch, from STS GetCallerIdentity: where ARNs are built."""

    partition: str
    """`aws`, `aws-cn`, `aws-us-gov`…: the part after `arn:` of the caller's ARN."""
    account: str


def caller_of(sts: Any) -> Caller:
    """The caller's partition and account (GetCallerIdentity needs no permission)."""
    with aws_errors("ask who these credentials are"):
        me = sts.get_caller_identity()
    return Caller(str(me["Arn"]).split(":")[1], str(me["Account"]))


def host_policy(caller: Caller) -> dict[str, Any]:
    """The host role's inline policy for this partition and account (module docstring)."""
    own = {
        "StringEquals": {
            f"aws:ResourceTag/{MANAGED_TAG}": "true",
            f"aws:ResourceTag/{HOST_TAG}": "${ec2:SourceInstanceARN}",
        }
    }
    where = f"arn:{caller.partition}:ec2:*:{caller.account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CancelOwnSpotRequest",
                "Effect": "Allow",
                "Action": "ec2:CancelSpotInstanceRequests",
                "Resource": f"{where}:spot-instances-request/*",
                "Condition": own,
            },
            {
                "Sid": "TerminateItself",
                "Effect": "Allow",
                "Action": "ec2:TerminateInstances",
                "Resource": f"{where}:instance/*",
                "Condition": own,
            },
        ],
    }


def instance_arn(caller: Caller, region: str, instance_id: str) -> str:
    """What `ec2:SourceInstanceARN` is for calls from this instance."""
    return f"arn:{caller.partition}:ec2:{region}:{caller.account}:instance/{instance_id}"


def tag_own(
    ec2: Any, caller: Caller, region: str, instance_id: str, request_id: str | None
) -> None:
    """Let the instance end itself and its request, and only those: both carry its ARN.
    Raises botocore's errors as they come (the caller retries what EC2 does not see yet)."""
    arn = instance_arn(caller, region, instance_id)
    resources = [instance_id, *([request_id] if request_id else [])]
    ec2.create_tags(Resources=resources, Tags=[{"Key": HOST_TAG, "Value": arn}])


PROFILE_SETTLE_S = 60.0
"""How long a launch with a just-made profile retries EC2's "invalid profile" answer: IAM is
eventually consistent, and EC2 sees a new instance profile some seconds after IAM made it (IAM
user guide, "Changes that I make are not always immediately visible")."""
SETTLE_POLL_S = 3.0


@dataclass(frozen=True)
class HostProfile:
    arn: str
    created: bool
    """Made by this launch: EC2 may not know it yet (see `RoleLaunch`)."""


class PassRoleRefused(ProviderError):
    """RunInstances would not pass the host role to EC2: the launch goes again without it."""

    def __init__(self, code: str) -> None:
        super().__init__(f"This account may not pass the instance role {HOST_ROLE} ({code}).")
        self.code = code


def pass_role_refused(err: ClientError) -> bool:
    """EC2's answer to a launch whose caller may not pass the instance profile's role:
    UnauthorizedOperation, whose message names `iam:PassRole` (EC2 API reference, Error codes;
    IAM user guide, "Granting a user permissions to pass a role"), or names no action at all
    (only the encoded authorization message; the launch without the role then tells). One
    naming another action (the caller may not run instances at all) is not this: going on
    without the role would not help."""
    if error_code(err) != "UnauthorizedOperation":
        return False
    message = error_message(err)
    return "iam:PassRole" in message or "perform: " not in message


class RoleLaunch:
    """The launch client of a launch with the host profile: RunInstances' refusal to pass the
    role becomes PassRoleRefused (aws.py launches again without it, as relaunch); and for a
    profile IAM has just made (`settle`), EC2's InvalidParameterValue naming
    `iamInstanceProfile` is retried for up to PROFILE_SETTLE_S, until EC2 sees the profile.
    Everything else passes straight through."""

    def __init__(self, client: Any, report: Report, settle: bool) -> None:
        self.client = client
        self.report = report
        self.settle = settle

    def run_instances(self, **request: Any) -> Any:
        deadline = time.monotonic() + PROFILE_SETTLE_S
        while True:
            try:
                return self.client.run_instances(**request)
            except ClientError as err:
                if pass_role_refused(err):
                    raise PassRoleRefused(error_code(err)) from err
                unseen = error_code(err) == "InvalidParameterValue" and "iamInstanceProfile" in (
                    error_message(err)
                )
                if not self.settle or not unseen or time.monotonic() >= deadline:
                    raise
                self.report(f"EC2 does not see the new role {HOST_ROLE} yet; retrying…")
                time.sleep(SETTLE_POLL_S)


def fallback_warning(cannot: str, code: str) -> str:
    """The one line a launch says when stop mode falls back to relaunch."""
    return (
        f"Warning: this account may not {cannot} ({code}), so interruption falls back to "
        "relaunch: an interrupted instance ends and only a running controller launches a "
        "replacement."
    )


def ensure_host_profile(iam: Any, caller: Caller, report: Report) -> HostProfile | None:
    """The host instance profile, created (with its role) when missing; None when IAM refuses,
    after saying so in one line."""
    try:
        return _ensure(iam, caller, report)
    except ClientError as err:
        if error_code(err) not in DENIED_CODES:
            raise user_error(err, f"create the instance role {HOST_ROLE}") from err
        report(fallback_warning(f"create the instance role {HOST_ROLE}", error_code(err)))
        return None
    except BotoCoreError as err:
        raise user_error(err, f"create the instance role {HOST_ROLE}") from err


def _ensure(iam: Any, caller: Caller, report: Report) -> HostProfile:
    existed = False
    try:
        iam.get_role(RoleName=HOST_ROLE)
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
        report(f"Creating the instance role {HOST_ROLE} (a host may only end itself)…")
        iam.create_role(
            RoleName=HOST_ROLE,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="pacerid-tui hosts: cancel their own spot request and terminate themselves",
            Tags=[{"Key": MANAGED_TAG, "Value": "true"}],
        )
    else:
        existed = True
    try:  # written every time, so a role from an older version gets today's policy
        iam.put_role_policy(
            RoleName=HOST_ROLE,
            PolicyName=POLICY_NAME,
            PolicyDocument=json.dumps(host_policy(caller)),
        )
    except ClientError as err:
        # A role an administrator made for a user who may only pass it: use it as it is.
        if not existed or error_code(err) not in DENIED_CODES:
            raise
        report(f"The role {HOST_ROLE} exists; its policy is kept as it is ({error_code(err)}).")
    created = False
    try:
        profile = iam.get_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"]
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
        profile = iam.create_instance_profile(
            InstanceProfileName=HOST_ROLE, Tags=[{"Key": MANAGED_TAG, "Value": "true"}]
        )["InstanceProfile"]
        created = True
    if HOST_ROLE not in [role["RoleName"] for role in profile.get("Roles", [])]:
        iam.add_role_to_instance_profile(InstanceProfileName=HOST_ROLE, RoleName=HOST_ROLE)
        created = True
    return HostProfile(str(profile["Arn"]), created)


ROLE_ACTIONS = ("iam:CreateRole", "iam:PutRolePolicy", "iam:PassRole")
"""What a launch does to the role itself (resource: the role's ARN)."""
PROFILE_ACTIONS = ("iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile")
"""What it does to the instance profile (resource: the profile's ARN)."""
PASSED_TO_EC2 = [
    {
        "ContextKeyName": "iam:PassedToService",
        "ContextKeyValues": ["ec2.amazonaws.com"],
        "ContextKeyType": "string",
    }
]
"""PassRole is usually allowed only towards one service (IAM user guide, "Granting a user
permissions to pass a role to an AWS service"): simulate it as the launch does it."""


@dataclass(frozen=True)
class RoleAnswer:
    """What IAM says about the role stop mode needs, for `doctor` (aws_doctor.py)."""

    principal: str
    """The IAM ARN whose policies were simulated."""
    ready: bool
    """The role and its instance profile exist already: only iam:PassRole is needed."""
    denied: dict[str, str] = field(default_factory=dict)
    """Action → EvalDecision (implicitDeny, explicitDeny) for each action not allowed."""


class CannotTell(Exception):
    """IAM would not answer (AccessDenied on the simulator, or a principal it cannot simulate);
    the message says why, in words for the user."""


def principal_arn(caller: str) -> str | None:
    """The IAM ARN to simulate for STS GetCallerIdentity's ARN, None for the root user.

    An assumed role answers `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, which the
    simulator refuses; it wants the role (`arn:aws:iam::ACCOUNT:role/NAME`; a role with a path
    is then not found, and the check says it cannot tell). The root user may do everything.
    """
    partition, _, rest = caller.removeprefix("arn:").partition(":")
    service, _, rest = rest.partition(":")
    _region, _, rest = rest.partition(":")
    account, _, resource = rest.partition(":")
    if resource == "root":
        return None
    if service == "sts" and resource.startswith("assumed-role/"):
        return f"arn:{partition}:iam::{account}:role/{resource.split('/')[1]}"
    return caller


def may_use(iam: Any, caller: str, account: str) -> RoleAnswer | None:
    """Whether `caller` may create (when missing) and pass the host role, as the launch would;
    None for the root user. Asks only read calls and IAM's policy simulator
    (SimulatePrincipalPolicy, IAM API reference), which changes nothing. Raises CannotTell."""
    principal = principal_arn(caller)
    if principal is None:
        return None
    arn = principal.split(":")[1]
    role_arn = f"arn:{arn}:iam::{account}:role/{HOST_ROLE}"
    profile_arn = f"arn:{arn}:iam::{account}:instance-profile/{HOST_ROLE}"
    try:
        ready = _ready(iam)
    except ClientError as err:
        if error_code(err) not in DENIED_CODES:
            raise
        return RoleAnswer(principal, False, {"iam:GetRole": error_code(err)})
    if ready:
        decisions = simulate(iam, principal, ["iam:PassRole"], role_arn)
    else:
        decisions = {
            **simulate(iam, principal, ROLE_ACTIONS, role_arn),
            **simulate(iam, principal, PROFILE_ACTIONS, profile_arn),
        }
    denied = {action: decision for action, decision in decisions.items() if decision != "allowed"}
    return RoleAnswer(principal, ready, denied)


def _ready(iam: Any) -> bool:
    """The role and its profile (holding the role) exist; a launch then only passes it."""
    try:
        iam.get_role(RoleName=HOST_ROLE)
        profile = iam.get_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return False
        raise
    return HOST_ROLE in [role["RoleName"] for role in profile.get("Roles", [])]


def simulate(
    iam: Any,
    principal: str,
    actions: Sequence[str],
    resource: str,
    entries: Sequence[dict[str, Any]] = PASSED_TO_EC2,
) -> dict[str, str]:
    """Action → EvalDecision (allowed | explicitDeny | implicitDeny) for `principal`'s own
    policies; an action missing from the answer counts as not allowed. A caller who may not ask
    the simulator, or whom it cannot simulate, gets CannotTell; any other error is raised."""
    decisions = dict.fromkeys(actions, "implicitDeny")
    try:
        pages = iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=principal,
            ActionNames=list(actions),
            ResourceArns=[resource],
            ContextEntries=list(entries),
        )
        for page in pages:  # IsTruncated/Marker: the paginator follows them
            for result in page.get("EvaluationResults", []):
                decisions[str(result["EvalActionName"])] = str(result["EvalDecision"])
    except ClientError as err:
        code = error_code(err)
        if code in DENIED_CODES:
            raise CannotTell(
                f"{principal} may not ask IAM's policy simulator (iam:SimulatePrincipalPolicy, "
                f"{code})"
            ) from err
        if code in ("NoSuchEntity", "InvalidInput"):
            raise CannotTell(f"IAM cannot simulate {principal} ({code})") from err
        raise
    return decisions
