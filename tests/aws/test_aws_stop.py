"""`instance.interruption: stop` against moto behind the spot stand-in (spot_standin.py, which
serves what moto lacks: persistent requests and their relaunch rule, from EC2's documentation).

What EC2 must receive for a stopped instance never to come back as a fresh, forgotten one: a
persistent request with interruption and shutdown behaviour `stop`, a ValidUntil, the request
tagged; a role that may end only its own tagged run; and a terminate that cancels first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_seed import REGION, Reports
from aws_standin import serve
from botocore.config import Config
from spot_standin import SpotStandIn
from test_aws_launch import record_requests

from pacerid_tui.core.cloud import aws, aws_role
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_launch import stop_mode
from pacerid_tui.core.cloud.aws_role import HOST_ROLE, POLICY_NAME
from pacerid_tui.core.kernel.errors import ProviderError
from pacerid_tui.core.kernel.models import InstanceSpec, InstanceState
from pacerid_tui.core.supervise.reconcile import left_over


@pytest.fixture
def spot(aws_env: str) -> Iterator[SpotStandIn]:
    with serve(aws_env, SpotStandIn(aws_env)) as standin:
        assert isinstance(standin, SpotStandIn)
        yield standin


@pytest.fixture
def stop_provider(spot: SpotStandIn, make_config: Any) -> AwsProvider:
    config = make_config(interruption="stop", max_runtime_minutes=90, zones=["us-east-1b"])
    return AwsProvider(config, endpoint_url=spot.url)


def client(service: str, url: str) -> Any:
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client(service, region_name=REGION, endpoint_url=url, config=config)


def test_stop_mode_launches_a_tagged_persistent_request_that_stops(
    spot: SpotStandIn, stop_provider: AwsProvider, reports: Reports
) -> None:
    requests = record_requests(stop_provider)
    asked_at = time.time()
    instance = stop_provider.launch(InstanceSpec(run_id="run-7", provider="aws"), reports)

    [request] = requests
    options = request["InstanceMarketOptions"]["SpotOptions"]
    assert options["SpotInstanceType"] == "persistent"
    assert options["InstanceInterruptionBehavior"] == "stop"
    # ValidUntil: the run's max runtime (90 min) plus 7 days (EC2's default) of stopped time,
    # as it is wall-clock and max runtime counts running time; EC2 cannot restart it for ever.
    allowed = options["ValidUntil"].timestamp() - asked_at
    assert 7 * 86400 + 89 * 60 <= allowed <= 7 * 86400 + 91 * 60
    assert request["InstanceInitiatedShutdownBehavior"] == "stop"
    assert request["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{HOST_ROLE}")
    [tagged] = [
        s for s in request["TagSpecifications"] if s["ResourceType"] == "spot-instances-request"
    ]
    assert {"Key": "pacerid:managed", "Value": "true"} in tagged["Tags"]

    [sir] = spot.requests.values()
    assert sir.instance_id == instance.instance_id and sir.valid_until
    assert sir.tags["pacerid:managed"] == "true" and sir.tags["pacerid:run-id"] == "run-7"
    assert instance.spot_request_id == sir.request_id  # read back from DescribeInstances
    ec2 = client("ec2", spot.url)
    [seen] = ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    assert (seen["Type"], seen["State"], seen["InstanceInterruptionBehavior"]) == (
        "persistent",
        "active",
        "stop",
    )
    behaviour = ec2.describe_instance_attribute(
        InstanceId=instance.instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    assert instance_tags(ec2, instance.instance_id)["pacerid:interruption"] == "stop"


def test_without_a_max_runtime_the_request_is_valid_for_ec2s_seven_days(
    make_config: Any,
) -> None:
    request: dict[str, Any] = {"TagSpecifications": []}
    options: dict[str, Any] = {}
    before = time.time()
    stop_mode(request, options, make_config(interruption="stop"), "arn:aws:iam::1:x/y")
    assert 7 * 86400 - 1 <= options["ValidUntil"].timestamp() - before <= 7 * 86400 + 1


def instance_tags(ec2: Any, instance_id: str) -> dict[str, str]:
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return {tag["Key"]: tag["Value"] for tag in reservation["Instances"][0]["Tags"]}


def test_the_host_role_may_end_only_its_own_instance_and_request(
    spot: SpotStandIn, stop_provider: AwsProvider
) -> None:
    """Each statement asks that the resource's `pacerid:host` tag be the calling instance's
    ARN (`${ec2:SourceInstanceARN}`); the launch tags the instance and its request so."""
    instance = stop_provider.launch(InstanceSpec(run_id="run-8", provider="aws"))
    iam = client("iam", spot.url)
    document = iam.get_role_policy(RoleName=HOST_ROLE, PolicyName=POLICY_NAME)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    statements = {s["Action"]: s for s in document["Statement"]}
    assert sorted(statements) == ["ec2:CancelSpotInstanceRequests", "ec2:TerminateInstances"]
    account = "123456789012"  # moto's caller
    assert statements["ec2:CancelSpotInstanceRequests"]["Resource"] == (
        f"arn:aws:ec2:*:{account}:spot-instances-request/*"
    )
    assert statements["ec2:TerminateInstances"]["Resource"] == f"arn:aws:ec2:*:{account}:instance/*"
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert statement["Condition"] == {
            "StringEquals": {
                "aws:ResourceTag/pacerid:managed": "true",
                "aws:ResourceTag/pacerid:host": "${ec2:SourceInstanceARN}",
            }
        }
    own = f"arn:aws:ec2:{REGION}:{account}:instance/{instance.instance_id}"
    assert instance_tags(client("ec2", spot.url), instance.instance_id)["pacerid:host"] == own
    [request] = spot.requests.values()
    assert request.tags["pacerid:host"] == own
    assert iam.list_role_policies(RoleName=HOST_ROLE)["PolicyNames"] == [POLICY_NAME]
    assert iam.list_attached_role_policies(RoleName=HOST_ROLE)["AttachedPolicies"] == []
    trust = iam.get_role(RoleName=HOST_ROLE)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    profile = iam.get_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"]
    assert [role["RoleName"] for role in profile["Roles"]] == [HOST_ROLE]


def test_terminate_cancels_the_request_first_and_nothing_comes_back(
    spot: SpotStandIn, stop_provider: AwsProvider, reports: Reports
) -> None:
    instance = stop_provider.launch(InstanceSpec(run_id="run-9", provider="aws"))
    spot.calls.clear()
    ended = stop_provider.terminate(instance.instance_id, reports)

    assert ended.state is InstanceState.TERMINATED
    actions = [action for action, _ in spot.calls]
    cancel = actions.index("CancelSpotInstanceRequests")
    assert spot.calls[cancel][1] == [instance.spot_request_id]
    assert cancel < actions.index("TerminateInstances")
    assert spot.relaunched == []
    assert stop_provider.find_managed() == []
    assert any("cancelled" in line for line in reports)


def test_a_terminate_without_the_cancel_is_caught_it_comes_back(
    spot: SpotStandIn, stop_provider: AwsProvider
) -> None:
    """The broken path: what a bare terminate (the old code) leaves behind."""
    instance = stop_provider.launch(InstanceSpec(run_id="run-10", provider="aws"))
    client("ec2", spot.url).terminate_instances(InstanceIds=[instance.instance_id])

    [(old, fresh)] = spot.relaunched
    assert old == instance.instance_id
    [alive] = stop_provider.find_managed()
    assert alive.instance_id == fresh and alive.run_id == "run-10"
    stop_provider.terminate(fresh)  # and the provider's own terminate ends it for good
    assert stop_provider.find_managed() == [] and len(spot.relaunched) == 1


def test_an_account_that_may_not_create_the_role_falls_back_to_relaunch(
    spot: SpotStandIn, stop_provider: AwsProvider, reports: Reports
) -> None:
    spot.refuse_iam = True
    requests = record_requests(stop_provider)
    instance = stop_provider.launch(InstanceSpec(run_id="run-11", provider="aws"), reports)

    [request] = requests
    assert request["InstanceMarketOptions"]["SpotOptions"]["SpotInstanceType"] == "one-time"
    assert request["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert "IamInstanceProfile" not in request
    [warning] = [line for line in reports if line.startswith("Warning: this account may not")]
    assert "falls back to relaunch" in warning and "AccessDenied" in warning
    assert spot.requests == {} and instance.spot_request_id is None


def test_a_role_refused_only_at_run_instances_launches_once_more_as_relaunch(
    spot: SpotStandIn, stop_provider: AwsProvider, reports: Reports
) -> None:
    """IAM let the role be made, but EC2 refuses to pass it (UnauthorizedOperation naming
    iam:PassRole): the launch goes again without the profile, as relaunch, and says so once."""
    spot.refuse_pass_role = True
    requests = record_requests(stop_provider)
    instance = stop_provider.launch(InstanceSpec(run_id="run-14", provider="aws"), reports)

    refused, launched = requests
    assert refused["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{HOST_ROLE}")
    assert refused["InstanceMarketOptions"]["SpotOptions"]["SpotInstanceType"] == "persistent"
    assert "IamInstanceProfile" not in launched
    options = launched["InstanceMarketOptions"]["SpotOptions"]
    assert (options["SpotInstanceType"], options["InstanceInterruptionBehavior"]) == (
        "one-time",
        "terminate",
    )
    assert "ValidUntil" not in options
    assert launched["InstanceInitiatedShutdownBehavior"] == "terminate"
    [warning] = [line for line in reports if line.startswith("Warning: this account may not")]
    assert warning.startswith(f"Warning: this account may not pass the instance role {HOST_ROLE}")
    assert "(UnauthorizedOperation), so interruption falls back to relaunch" in warning
    assert spot.requests == {} and instance.spot_request_id is None
    ec2 = client("ec2", spot.url)
    assert instance_tags(ec2, instance.instance_id)["pacerid:interruption"] == "relaunch"
    [alive] = stop_provider.find_managed()  # one instance, nothing left from the refused try
    assert alive.instance_id == instance.instance_id


def test_an_existing_role_whose_policy_may_not_be_rewritten_is_used_as_it_is(
    spot: SpotStandIn, stop_provider: AwsProvider, reports: Reports
) -> None:
    """An administrator made the role; the user may pass it but not change it."""
    stop_provider.launch(InstanceSpec(run_id="run-15", provider="aws"))  # makes the role
    spot.refused_iam = {"PutRolePolicy", "CreateRole", "CreateInstanceProfile"}
    requests = record_requests(stop_provider)
    instance = stop_provider.launch(InstanceSpec(run_id="run-16", provider="aws"), reports)

    [request] = requests
    assert request["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{HOST_ROLE}")
    assert instance.spot_request_id is not None
    assert f"The role {HOST_ROLE} exists; its policy is kept as it is (AccessDenied)." in reports
    assert not [line for line in reports if line.startswith("Warning:")]


def test_on_demand_ignores_stop_mode_no_role_no_request(
    spot: SpotStandIn, make_config: Any, reports: Reports
) -> None:
    """The default (`stop`) applies to spot only: an on-demand instance is never interrupted."""
    provider = AwsProvider(make_config(market="on-demand"), endpoint_url=spot.url)
    assert provider.config.interruption == "stop"  # the default
    requests = record_requests(provider)
    instance = provider.launch(InstanceSpec(run_id="run-17", provider="aws"), reports)

    [request] = requests
    assert "InstanceMarketOptions" not in request and "IamInstanceProfile" not in request
    assert request["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert client("iam", spot.url).list_roles()["Roles"] == []  # no role was even made
    assert spot.requests == {} and instance.spot_request_id is None
    tags = instance_tags(client("ec2", spot.url), instance.instance_id)
    assert "pacerid:interruption" not in tags
    provider.terminate(instance.instance_id)


def test_a_stopped_instance_whose_request_expired_is_left_over_and_terminated_for_good(
    spot: SpotStandIn, stop_provider: AwsProvider
) -> None:
    instance = stop_provider.launch(InstanceSpec(run_id="run-12", provider="aws"))
    assert left_over(stop_provider, instance, time.time()) is None  # running
    client("ec2", spot.url).stop_instances(InstanceIds=[instance.instance_id])
    stopped = stop_provider.describe([instance.instance_id])[instance.instance_id]
    assert stopped.state is InstanceState.STOPPED
    [request] = spot.requests.values()
    request.state = "interrupted"  # disabled, instance-stopped-no-capacity: EC2 waits
    found = stop_provider.spot_request_state(request.request_id)
    assert found is not None and (found[0], found[2]) == (
        "disabled",
        "instance-stopped-no-capacity",
    )
    assert left_over(stop_provider, stopped, time.time()) is None
    request.state = "expired"
    assert left_over(stop_provider, stopped, time.time()) == "its spot request is cancelled"
    stop_provider.terminate(instance.instance_id)
    assert stop_provider.find_managed() == [] and spot.relaunched == []


def test_a_new_role_not_yet_seen_by_ec2_is_waited_for(
    spot: SpotStandIn,
    stop_provider: AwsProvider,
    reports: Reports,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aws_role, "SETTLE_POLL_S", 0.01)
    spot.profile_lag = 2
    requests = record_requests(stop_provider)
    instance = stop_provider.launch(InstanceSpec(run_id="run-13", provider="aws"), reports)
    assert len(requests) == 3  # refused twice, then launched once
    assert len(stop_provider.find_managed()) == 1 and instance.spot_request_id
    assert sum("does not see the new role" in line for line in reports) == 2


@pytest.mark.parametrize(
    ("code", "message", "said"),
    [
        (
            "Server.InternalError",
            "Server.InternalError: An internal error caused the instance to terminate during "
            "launch.",
            "failed inside AWS",
        ),
        (
            "Client.VolumeLimitExceeded",
            "Client.VolumeLimitExceeded: The limit on the number of EBS volumes or total "
            "storage was exceeded.",
            "hit the EBS volume limit",
        ),
    ],
)
def test_an_instance_that_dies_pending_has_its_request_cancelled_before_anything_else(
    spot: SpotStandIn,
    stop_provider: AwsProvider,
    reports: Reports,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    message: str,
    said: str,
) -> None:
    """Its persistent request reopened and EC2 started another instance (spot_standin.py's
    `dies_pending`); the launch cancels the request, then ends that one, and says so: the run
    is forgotten after a failed launch, so nothing else would."""
    monkeypatch.setattr(aws, "POLL_INTERVAL_S", 0.0)
    spot.dies_pending = (code, message)
    with pytest.raises(ProviderError) as ended:
        stop_provider.launch(InstanceSpec(run_id="run-18", provider="aws"), reports)

    [request] = spot.requests.values()
    [(dead, fresh)] = spot.relaunched  # before the cancel; none after it
    assert request.state == "cancelled"
    actions = [action for action, _ in spot.calls]
    cancel = actions.index("CancelSpotInstanceRequests")
    assert spot.calls[cancel][1] == [request.request_id]
    assert "TerminateInstances" not in actions[:cancel]
    assert stop_provider.find_managed() == []
    assert str(ended.value) == (
        f"Instance {dead} ended before it ran ({said}); its spot request {request.request_id} "
        f"was cancelled first and {fresh} terminated, so nothing is left running; launch again."
    )
    assert f"{dead} is pending…" in reports
