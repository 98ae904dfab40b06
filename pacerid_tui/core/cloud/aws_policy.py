"""The least privilege of the person running the tool: every AWS action it calls, scoped by our
tag or by resource wherever IAM allows it. docs/aws-policy.json is `policy("aws")` (a test keeps
the two equal and checks that every action the suite's AWS tests call is in it); doctor's
credentials check asks IAM's policy simulator whether the caller has it (`missing`).

Shaped from the Service Authorization Reference ("Actions, resources, and condition keys for"
Amazon EC2, AWS Identity and Access Management, AWS Systems Manager and Service Quotas):
- actions it lists without a resource type (every Describe*, DescribeSpotPriceHistory,
  GetSpotPlacementScores, Service Quotas' two reads) take `"*"`;
- EC2 actions on existing resources are scoped by `aws:ResourceTag/pacerid:managed`, what
  RunInstances, CreateSecurityGroup, CreateKeyPair and ImportKeyPair create by
  `aws:RequestTag/…`, and
  ec2:CreateTags only at creation (`ec2:CreateAction`); the image, subnet, network interface and
  key pair a launch uses by resource type (an old key pair or a DLAMI carries no tag of ours);
- IAM by the one role and instance profile's ARN (`pacerid-ml-host`), deletes only while they
  carry our tag; iam:PassRole also covers AddRoleToInstanceProfile, which needs it (IAM API
  reference), so it is not limited to iam:PassedToService;
- SSM to AWS's public DLAMI parameters; SimulatePrincipalPolicy to the caller itself.
STS GetCallerIdentity needs no permission (STS API reference) and is not listed. Four actions
are not calls of their own but what a call needs (IMPLIED). The Pricing API is not used: prices
come from DescribeSpotPriceHistory and the bundled tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud import aws_role
from pacerid_tui.core.cloud.aws_role import HOST_ROLE, CannotTell, principal_arn
from pacerid_tui.core.cloud.aws_session import error_code
from pacerid_tui.core.cloud.base import MANAGED_TAG

OURS = {"StringEquals": {f"aws:ResourceTag/{MANAGED_TAG}": "true"}}
TAGGED = {"StringEquals": {f"aws:RequestTag/{MANAGED_TAG}": "true"}}

ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})
"""Called, but allowed whatever a policy says (STS API reference, GetCallerIdentity)."""

IMPLIED = frozenset({"ec2:CreateTags", "iam:PassRole", "iam:TagRole", "iam:TagInstanceProfile"})
"""In the policy though never called by name: RunInstances, CreateSecurityGroup and CreateKeyPair
with TagSpecifications need ec2:CreateTags; RunInstances with an instance profile and
AddRoleToInstanceProfile need iam:PassRole; CreateRole and CreateInstanceProfile with Tags need
iam:TagRole and iam:TagInstanceProfile."""

SIMULATE_THREADS = 8
"""Simulator calls asked at once: one per resource the policy names, fifteen in all."""


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    """ARNs with `{p}` for the partition."""
    condition: dict[str, dict[str, Any]] = field(default_factory=dict)


def ec2(kind: str) -> str:
    return f"arn:{{p}}:ec2:*:*:{kind}/*"


ROLE = f"arn:{{p}}:iam::*:role/{HOST_ROLE}"
PROFILE = f"arn:{{p}}:iam::*:instance-profile/{HOST_ROLE}"

STATEMENTS = (
    Statement(
        "ReadTheAccount",
        (
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypeOfferings",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeInstances",
            "ec2:DescribeKeyPairs",
            "ec2:DescribeRegions",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSpotInstanceRequests",
            "ec2:DescribeSpotPriceHistory",
            "ec2:DescribeSubnets",
            "ec2:DescribeTags",
            "ec2:DescribeVolumes",
            "ec2:DescribeVpcs",
            "ec2:GetSpotPlacementScores",
            "servicequotas:GetAWSDefaultServiceQuota",
            "servicequotas:GetServiceQuota",
        ),
        ("*",),
    ),
    Statement(
        "ReadTheDeepLearningAmiParameters",
        ("ssm:GetParametersByPath",),
        ("arn:{p}:ssm:*:*:parameter/aws/service/deeplearning/*",),
    ),
    Statement(
        "LaunchFromAnImageIntoASubnet",
        ("ec2:RunInstances",),
        ("arn:{p}:ec2:*::image/*", ec2("subnet"), ec2("network-interface"), ec2("key-pair")),
    ),
    Statement("LaunchIntoOurSecurityGroup", ("ec2:RunInstances",), (ec2("security-group"),), OURS),
    Statement(
        "LaunchOnlyWhatIsTaggedOurs",
        ("ec2:RunInstances",),
        (ec2("instance"), ec2("volume"), ec2("spot-instances-request")),
        TAGGED,
    ),
    Statement(
        "TagOnlyAtCreation",
        ("ec2:CreateTags",),
        (
            ec2("instance"),
            ec2("volume"),
            ec2("spot-instances-request"),
            ec2("security-group"),
            ec2("key-pair"),
        ),
        {
            "StringEquals": {
                "ec2:CreateAction": [
                    "RunInstances",
                    "CreateSecurityGroup",
                    "CreateKeyPair",
                    "ImportKeyPair",
                ],
                f"aws:RequestTag/{MANAGED_TAG}": "true",
            }
        },
    ),
    Statement(
        "CreateOurKeyPair", ("ec2:CreateKeyPair", "ec2:ImportKeyPair"), (ec2("key-pair"),), TAGGED
    ),
    Statement(
        "CreateOurSecurityGroup", ("ec2:CreateSecurityGroup",), (ec2("security-group"),), TAGGED
    ),
    Statement("CreateTheGroupInAVpc", ("ec2:CreateSecurityGroup",), (ec2("vpc"),)),
    Statement(
        "ChangeAndDeleteOnlyOurSecurityGroup",
        (
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:DeleteSecurityGroup",
            "ec2:RevokeSecurityGroupIngress",
        ),
        (ec2("security-group"),),
        OURS,
    ),
    Statement(
        "TheRulesOfOurSecurityGroup",
        ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"),
        (ec2("security-group-rule"),),
    ),
    Statement(
        "EndAndReadOnlyOurInstances",
        ("ec2:GetConsoleOutput", "ec2:TerminateInstances"),
        (ec2("instance"),),
        OURS,
    ),
    Statement(
        "CancelOnlyOurSpotRequests",
        ("ec2:CancelSpotInstanceRequests",),
        (ec2("spot-instances-request"),),
        OURS,
    ),
    Statement("DeleteOnlyOurVolumes", ("ec2:DeleteVolume",), (ec2("volume"),), OURS),
    Statement("DeleteOnlyOurKeyPairs", ("ec2:DeleteKeyPair",), (ec2("key-pair"),), OURS),
    Statement(
        "UseTheHostRole",
        ("iam:GetRole", "iam:ListRolePolicies", "iam:PassRole", "iam:PutRolePolicy"),
        (ROLE,),
    ),
    Statement("CreateTheHostRoleTagged", ("iam:CreateRole", "iam:TagRole"), (ROLE,), TAGGED),
    Statement(
        "DeleteTheHostRoleWhileOurs", ("iam:DeleteRole", "iam:DeleteRolePolicy"), (ROLE,), OURS
    ),
    Statement(
        "UseTheHostProfile",
        ("iam:AddRoleToInstanceProfile", "iam:GetInstanceProfile"),
        (PROFILE,),
    ),
    Statement(
        "CreateTheHostProfileTagged",
        ("iam:CreateInstanceProfile", "iam:TagInstanceProfile"),
        (PROFILE,),
        TAGGED,
    ),
    Statement(
        "DeleteTheHostProfileWhileOurs",
        ("iam:DeleteInstanceProfile", "iam:RemoveRoleFromInstanceProfile"),
        (PROFILE,),
        OURS,
    ),
    Statement(
        "SimulateOwnPolicies",
        ("iam:SimulatePrincipalPolicy",),
        ("arn:{p}:iam::*:user/${aws:username}",),
    ),
)


def policy(partition: str = "aws") -> dict[str, Any]:
    """The IAM policy document, for the caller's partition (aws, aws-cn, aws-us-gov)."""
    statements = []
    for statement in STATEMENTS:
        entry: dict[str, Any] = {
            "Sid": statement.sid,
            "Effect": "Allow",
            "Action": list(statement.actions),
            "Resource": [arn.replace("{p}", partition) for arn in statement.resources],
        }
        if statement.condition:
            entry["Condition"] = statement.condition
        statements.append(entry)
    return {"Version": "2012-10-17", "Statement": statements}


def actions() -> set[str]:
    """Every action the policy allows."""
    return {action for statement in STATEMENTS for action in statement.actions}


def not_allowed(called: Sequence[str]) -> list[str]:
    """The called actions (as `service:Action`) the policy does not allow, sorted, once each."""
    return sorted(set(called) - actions() - ALWAYS_ALLOWED)


def concrete(arn: str, region: str, account: str, principal: str) -> str:
    """A statement's resource as one the simulator can test: its region and account filled in
    where they are wildcards, the caller itself for `${aws:username}`."""
    if arn == "*":
        return arn
    if "${aws:username}" in arn:
        return principal
    head, partition, service, where, owner, rest = arn.split(":", 5)
    where = region if where == "*" else where
    owner = account if owner == "*" else owner
    return ":".join((head, partition, service, where, owner, rest))


def context() -> list[dict[str, Any]]:
    """Context entries meeting every condition of the policy, as the tool's own calls do (our
    tag on what exists and on what is created; ec2:CreateAction as RunInstances): the simulator
    reads only the keys a statement names."""
    values: dict[str, str] = {}
    for statement in STATEMENTS:
        for keys in statement.condition.values():
            for key, value in keys.items():
                values.setdefault(key, value[0] if isinstance(value, list) else value)
    return [
        {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
        for key, value in sorted(values.items())
    ]


def missing(iam: Any, caller: str, account: str, region: str) -> dict[str, str] | None:
    """Action → EvalDecision for each action of the policy that `caller` may not call, by its
    own policies (IAM's SimulatePrincipalPolicy, which changes nothing); empty when it may call
    them all, None for the root user. One call per resource the policy names, each asking every
    action the policy allows on it. Raises CannotTell when the simulator will not answer."""
    principal = principal_arn(caller)
    if principal is None:
        return None
    partition = principal.split(":")[1]
    on: dict[str, set[str]] = {}
    for statement in STATEMENTS:
        for arn in statement.resources:
            resource = concrete(arn.replace("{p}", partition), region, account, principal)
            on.setdefault(resource, set()).update(statement.actions)
    entries = context()

    def ask(resource: str) -> dict[str, str]:
        return simulate(iam, principal, sorted(on[resource]), resource, entries)

    first, *rest = on
    answers = [ask(first)]  # one first, so a refused simulator is told once, not fifteen times
    with ThreadPoolExecutor(SIMULATE_THREADS) as pool:
        answers += pool.map(ask, rest)
    decisions: dict[str, str] = {}
    for answer in answers:  # an action is allowed only where every resource allows it
        for action, decision in answer.items():
            if decisions.get(action, "allowed") == "allowed":
                decisions[action] = decision
    return {action: why for action, why in sorted(decisions.items()) if why != "allowed"}


def simulate(
    iam: Any, principal: str, names: Sequence[str], resource: str, entries: list[dict[str, Any]]
) -> dict[str, str]:
    """One simulator call (aws_role.simulate): action → EvalDecision. Whatever keeps it from
    answering raises CannotTell with the reason in words, so doctor's check says so."""
    try:
        return aws_role.simulate(iam, principal, names, resource, entries)
    except ClientError as err:
        raise CannotTell(f"IAM's policy simulator refused {principal} ({error_code(err)})") from err
    except BotoCoreError as err:
        raise CannotTell(
            f"IAM's policy simulator gave no answer AWS would give ({type(err).__name__})"
        ) from err
