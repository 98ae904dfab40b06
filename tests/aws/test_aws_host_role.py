"""The host role stop mode gives an instance: built from the caller's partition and account, and
scoped to the instance itself and its own spot request.

STS's caller comes from the IAM stand-in (iam_standin.py), so it can be in aws-cn or aws-us-gov;
persistent requests, their tags and CreateTags on them from the spot stand-in (spot_standin.py);
one stand-in serves both, in front of moto. What IAM supports for the two actions is in
aws_role.py's docstring (Service Authorization Reference for Amazon EC2; `ec2:SourceInstanceARN`
as a policy variable).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_seed import REGION, Reports
from aws_standin import serve
from iam_standin import ACCOUNT, IamStandIn
from spot_standin import SpotStandIn
from test_aws_stop import client

from pacerid_tui.core.cloud import aws_unlaunched
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_role import HOST_ROLE, POLICY_NAME, Caller, host_policy
from pacerid_tui.core.kernel.errors import ProviderError
from pacerid_tui.core.kernel.models import InstanceSpec


class SpotIam(IamStandIn, SpotStandIn):
    """STS's caller and IAM's simulator, and persistent spot requests, on one port."""


@pytest.fixture
def standin(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SpotIam]:
    with serve(aws_env, SpotIam(aws_env)) as served:
        assert isinstance(served, SpotIam)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", served.url)
        yield served


def stop_provider(standin: SpotIam, make_config: Any) -> AwsProvider:
    config = make_config(interruption="stop", max_runtime_minutes=90, zones=["us-east-1b"])
    return AwsProvider(config, endpoint_url=standin.url)


def test_the_policy_names_two_actions_on_own_tagged_resources_only() -> None:
    policy = host_policy(Caller("aws-us-gov", ACCOUNT))
    own = {
        "StringEquals": {
            "aws:ResourceTag/pacerid:managed": "true",
            "aws:ResourceTag/pacerid:host": "${ec2:SourceInstanceARN}",
        }
    }
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CancelOwnSpotRequest",
                "Effect": "Allow",
                "Action": "ec2:CancelSpotInstanceRequests",
                "Resource": f"arn:aws-us-gov:ec2:*:{ACCOUNT}:spot-instances-request/*",
                "Condition": own,
            },
            {
                "Sid": "TerminateItself",
                "Effect": "Allow",
                "Action": "ec2:TerminateInstances",
                "Resource": f"arn:aws-us-gov:ec2:*:{ACCOUNT}:instance/*",
                "Condition": own,
            },
        ],
    }


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_arns_come_from_the_callers_partition(
    standin: SpotIam, make_config: Any, partition: str
) -> None:
    standin.caller = f"arn:{partition}:iam::{ACCOUNT}:user/trainer"
    provider = stop_provider(standin, make_config)
    instance = provider.launch(InstanceSpec(run_id="run-p", provider="aws"))

    iam = client("iam", standin.url)
    document = iam.get_role_policy(RoleName=HOST_ROLE, PolicyName=POLICY_NAME)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == host_policy(Caller(partition, ACCOUNT))
    own = f"arn:{partition}:ec2:{REGION}:{ACCOUNT}:instance/{instance.instance_id}"
    [request] = standin.requests.values()
    assert request.tags["pacerid:host"] == own
    [reservation] = client("ec2", standin.url).describe_instances(
        InstanceIds=[instance.instance_id]
    )["Reservations"]
    tags = {tag["Key"]: tag["Value"] for tag in reservation["Instances"][0]["Tags"]}
    assert tags["pacerid:host"] == own
    provider.terminate(instance.instance_id)


def test_an_instance_that_cannot_be_tagged_for_its_role_is_ended(
    standin: SpotIam, make_config: Any, reports: Reports
) -> None:
    """Its host could never end itself: the launch cancels its request, terminates it and says
    so, rather than leave a stop-mode host without a way out."""
    standin.refuse_tags = True
    provider = stop_provider(standin, make_config)
    with pytest.raises(ProviderError) as failed:
        provider.launch(InstanceSpec(run_id="run-t", provider="aws"), reports)
    [request] = standin.requests.values()
    assert str(failed.value).startswith("These AWS credentials may not tag ")
    assert str(failed.value).endswith(
        f"Its host could not have ended itself, so {request.instance_id} was terminated (its "
        "request cancelled first); launch again."
    )
    assert request.state == "cancelled" and standin.relaunched == []
    assert provider.find_managed() == []


def test_tags_wait_until_ec2_sees_the_new_instance(
    standin: SpotIam, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws_unlaunched, "TAG_POLL_S", 0.01)
    standin.tags_unseen = 2
    provider = stop_provider(standin, make_config)
    instance = provider.launch(InstanceSpec(run_id="run-u", provider="aws"))
    [request] = standin.requests.values()
    assert request.tags["pacerid:host"].endswith(f":instance/{instance.instance_id}")
    assert [action for action, _ in standin.calls].count("CreateTags") == 3
    provider.terminate(instance.instance_id)
