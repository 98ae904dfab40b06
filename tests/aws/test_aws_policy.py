"""docs/aws-policy.json, the least privilege of the person running the tool, kept true.

Every test records the AWS actions the tool calls (PACERID_AWS_CALL_LOG, set for each test by
tests/conftest.py; the tool's clients all come from aws_session.AwsClients) and fails at
teardown when one is missing from the file. Here: the file is the tool's own policy, every
client records its calls, every action in the file is called or implied by a call (minimal), the
README says why for each, and doctor's credentials check names what the caller lacks, from IAM's
policy simulator (iam_standin.py: moto has none).

To regenerate the file after changing aws_policy.py:
    python -c "import json; from pacerid_tui.core.cloud.aws_policy import policy; \\
    open('docs/aws-policy.json', 'w').write(json.dumps(policy(), indent=2) + '\\n')"
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_seed import REGION
from botocore import xform_name
from iam_standin import ACCOUNT, TRAINER, IamStandIn

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.aws_policy import IMPLIED, actions, policy
from pacerid_tui.core.cloud.aws_session import AwsClients
from pacerid_tui.core.kernel.checks import OK, WARN
from pacerid_tui.core.kernel.errors import UsageError
from pacerid_tui.core.steps.doctor import run_checks
from tests.conftest import POLICY, REPO, not_in_the_policy


def test_the_shipped_policy_is_the_tools_own() -> None:
    assert json.loads(POLICY.read_text()) == policy("aws")
    assert POLICY.read_text() == json.dumps(policy("aws"), indent=2) + "\n"


def test_every_client_records_its_calls_and_a_call_the_policy_lacks_is_named(
    aws_env: str, aws_calls_in_the_policy: Path
) -> None:
    clients = AwsClients(REGION, None, aws_env)
    clients.ec2.describe_regions()
    clients.ec2.describe_addresses()  # the tool never calls it: not in the policy
    clients.other("sts").get_caller_identity()
    quotas = clients.other("service-quotas")
    quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-3819A6DF")
    clients.for_region("eu-west-1").ec2.describe_tags()
    called = aws_calls_in_the_policy.read_text().split()
    assert called == [
        "ec2:DescribeRegions",
        "ec2:DescribeAddresses",
        "sts:GetCallerIdentity",
        "servicequotas:GetServiceQuota",
        "ec2:DescribeTags",
    ]
    assert not_in_the_policy(called) == ["ec2:DescribeAddresses"]  # the teardown would fail
    aws_calls_in_the_policy.write_text("")  # ...so this test does not


def test_every_action_in_the_policy_is_one_the_tool_calls_or_one_a_call_needs() -> None:
    """Minimal: an action no code calls any more (boto3's method name, as botocore derives it
    from the operation) must leave the policy."""
    source = "\n".join(path.read_text() for path in (REPO / "pacerid_tui").rglob("*.py"))
    unused = [
        action
        for action in sorted(actions() - IMPLIED)
        if not re.search(rf"\b{xform_name(action.split(':')[1])}\b", source)
    ]
    assert unused == []


def test_the_readme_says_why_the_tool_needs_each_action() -> None:
    readme = (REPO / "README.md").read_text()
    lines = {
        action: [line for line in readme.splitlines() if f"`{action}`" in line]
        for action in actions()
    }
    assert [action for action, said in sorted(lines.items()) if not said] == []


def test_the_credentials_check_names_what_the_caller_may_not_call(
    aws_config: Path, iam_standin: IamStandIn
) -> None:
    config = load_config(aws_config)
    [check] = run_checks(config, ["credentials"])
    assert check.status == OK, check
    assert check.detail.endswith("it may call every action the tool needs.")
    asked = {(tuple(s.actions), s.resources[0]) for s in iam_standin.simulated}
    assert len(asked) == len(iam_standin.simulated) == 15  # one call per resource
    assert {a for s in iam_standin.simulated for a in s.actions} == actions()
    [launch] = [
        s
        for s in iam_standin.simulated
        if s.resources == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"]
    ]
    assert launch.principal == TRAINER
    assert launch.actions == [
        "ec2:CreateTags",
        "ec2:GetConsoleOutput",
        "ec2:RunInstances",
        "ec2:TerminateInstances",
    ]
    assert launch.context == {
        "aws:RequestTag/pacerid:managed": ["true"],
        "aws:ResourceTag/pacerid:managed": ["true"],
        "ec2:CreateAction": ["RunInstances"],
    }
    [itself] = [s for s in iam_standin.simulated if s.actions == ["iam:SimulatePrincipalPolicy"]]
    assert itself.resources == [TRAINER]

    iam_standin.decisions = {"ec2:DeleteVolume": "implicitDeny", "iam:PassRole": "explicitDeny"}
    [check] = run_checks(config, ["credentials"])
    assert check.status == WARN, check
    assert check.detail.endswith(
        "of the actions the tool calls, it may not call ec2:DeleteVolume (implicitDeny), "
        "iam:PassRole (explicitDeny)."
    )
    assert "docs/aws-policy.json" in check.fix


def test_a_simulator_that_refuses_cannot_tell_and_the_root_user_needs_no_simulation(
    aws_config: Path, iam_standin: IamStandIn
) -> None:
    config = load_config(aws_config)
    iam_standin.refuse_simulate = True
    [check] = run_checks(config, ["credentials"])
    assert check.status == WARN and "cannot tell whether it may call every action" in check.detail
    assert "iam:SimulatePrincipalPolicy, AccessDenied" in check.detail
    iam_standin.caller = f"arn:aws:iam::{ACCOUNT}:root"
    [check] = run_checks(config, ["credentials"])
    assert check.status == OK and check.detail.endswith("the root user may call every action.")


def test_the_launch_check_before_a_launch_does_not_simulate(
    aws_config: Path, iam_standin: IamStandIn
) -> None:
    """preflight runs before every launch: the fifteen simulator calls stay in `doctor`."""
    [check] = run_checks(load_config(aws_config), ["credentials"], thorough=False)
    assert check.status == OK and iam_standin.simulated == []


def test_a_call_log_that_cannot_be_written_is_one_sentence(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PACERID_AWS_CALL_LOG", str(tmp_path))  # a folder, not a file
    with pytest.raises(UsageError, match=r"Cannot append to PACERID_AWS_CALL_LOG=.*unset it\.$"):
        AwsClients(REGION, None, aws_env).ec2.describe_regions()
