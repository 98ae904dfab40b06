"""`pacerid-tui sweep` on moto's server: what the tool tagged, in every enabled region, priced
per day; `--yes` removes it in the safe order and touches nothing without our tag.

moto fulfils a spot request at once (RequestSpotInstances answers `active` with an instance), so
"an open persistent request" here is moto's persistent request with the instance it launched;
the instance is tagged as our launch tags its instances. The relaunch rule a persistent request
follows when its instance is terminated uncancelled is the spot stand-in's (spot_standin.py),
and a region that refuses is the EC2 stand-in's (aws_standin.py, `refuse_regions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_seed import NEWEST_PYTORCH, REGION
from aws_standin import AwsStandIn, serve
from botocore.config import Config
from botocore.exceptions import ClientError
from spot_standin import SpotStandIn
from test_aws_cli import cli
from test_aws_launch import record_requests

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_role import (
    HOST_ROLE,
    POLICY_NAME,
    TRUST_POLICY,
    Caller,
    host_policy,
)
from pacerid_tui.core.kernel.checks import OK, WARN
from pacerid_tui.core.kernel.models import Instance, InstanceSpec, InstanceState, Run
from pacerid_tui.core.kernel.price_table import prices_for
from pacerid_tui.core.steps import leftovers
from pacerid_tui.core.steps.doctor import run_checks
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.ui.app import PaceridApp
from tests.ui.test_app import wait_for

OTHER = "eu-west-1"
OURS = [{"Key": "pacerid:managed", "Value": "true"}, {"Key": "pacerid:run-id", "Value": "lost"}]
LOOK_ALIKE = [{"Key": "Name", "Value": "pacerid-ml-training"}]
"""Our Name tag, without pacerid:managed: not ours, never touched."""


def client(service: str, region: str, url: str) -> Any:
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client(service, region_name=region, endpoint_url=url, config=config)


def tags(kind: str, which: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": which}]


def plant(ec2: Any, region: str, which: list[dict[str, str]], name: str) -> dict[str, str]:
    """A running spot instance (100 GB root volume), a persistent request with its instance,
    an unattached 50 GB volume and a security group no instance uses, all tagged `which`."""
    zone = f"{region}a"
    [raw] = ec2.run_instances(
        ImageId=NEWEST_PYTORCH,
        InstanceType="g4dn.xlarge",
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": zone},
        InstanceMarketOptions={"MarketType": "spot"},
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 100, "VolumeType": "gp3"}}
        ],
        TagSpecifications=tags("instance", which) + tags("volume", which),
    )["Instances"]
    [request] = ec2.request_spot_instances(
        Type="persistent",
        InstanceInterruptionBehavior="stop",
        LaunchSpecification={
            "ImageId": NEWEST_PYTORCH,
            "InstanceType": "g4dn.xlarge",
            "Placement": {"AvailabilityZone": zone},
        },
        TagSpecifications=tags("spot-instances-request", which),
    )["SpotInstanceRequests"]
    ec2.create_tags(Resources=[request["InstanceId"]], Tags=which)  # as our launch tags it
    volume = ec2.create_volume(
        Size=50, AvailabilityZone=zone, VolumeType="gp3", TagSpecifications=tags("volume", which)
    )
    group = ec2.create_security_group(
        GroupName=name,
        Description="pacerid-tui: SSH",
        TagSpecifications=tags("security-group", which),
    )
    return {
        "instance": raw["InstanceId"],
        "request": request["SpotInstanceRequestId"],
        "requested": request["InstanceId"],
        "volume": volume["VolumeId"],
        "group": group["GroupId"],
    }


def per_day(ec2: Any, region: str, instance_id: str) -> float:
    """By hand: moto's spot price for a day, the root volume's GB at the region's gp3 price
    for a day (a 30-day month), and a public IPv4 address at $0.005/h."""
    [raw] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
    zone = raw["Placement"]["AvailabilityZone"]
    history = ec2.describe_spot_price_history(
        InstanceTypes=["g4dn.xlarge"], ProductDescriptions=["Linux/UNIX"]
    )["SpotPriceHistory"]
    [price] = {float(p["SpotPrice"]) for p in history if p["AvailabilityZone"] == zone}
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["Volumes"]
    gb = sum(volume["Size"] for volume in volumes)
    ipv4 = 0.005 * 24 if raw.get("PublicIpAddress") else 0.0
    return price * 24 + gb * prices_for("aws", region).gp3_gb_month / 30 + ipv4


def test_sweep_finds_ours_in_two_regions_priced_and_yes_leaves_none_of_it(
    aws_env: str, aws_config: Path, aws_calls_in_the_policy: Path
) -> None:
    home, away = client("ec2", REGION, aws_env), client("ec2", OTHER, aws_env)
    ours = {
        REGION: plant(home, REGION, OURS, "pacerid-ml-sg"),
        OTHER: plant(away, OTHER, OURS, "pacerid-ml-sg"),
    }
    theirs = {
        REGION: plant(home, REGION, LOOK_ALIKE, "pacerid-ml-sg-2"),
        OTHER: plant(away, OTHER, LOOK_ALIKE, "pacerid-ml-sg-2"),
    }
    home.create_key_pair(KeyName="pacerid-ml-key", TagSpecifications=tags("key-pair", OURS))
    home.create_key_pair(
        KeyName="pacerid-ml-key-old", TagSpecifications=tags("key-pair", LOOK_ALIKE)
    )
    iam = client("iam", REGION, aws_env)
    iam.create_role(
        RoleName=HOST_ROLE, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY), Tags=OURS[:1]
    )
    iam.put_role_policy(
        RoleName=HOST_ROLE,
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(host_policy(Caller("aws", "123456789012"))),
    )
    iam.create_instance_profile(InstanceProfileName=HOST_ROLE, Tags=OURS[:1])
    iam.add_role_to_instance_profile(InstanceProfileName=HOST_ROLE, RoleName=HOST_ROLE)

    listed = cli(aws_env, "sweep", "--json", "--config", str(aws_config), check=False)
    assert listed.returncode == 1, listed.stderr  # something costs money
    found = json.loads(listed.stdout)
    by_id = {(row["region"], row["resource_id"]): row for row in found["found"]}
    expected = {
        (region, ids[key])
        for region, ids in ours.items()
        for key in ("instance", "request", "requested", "volume", "group")
    } | {(REGION, "pacerid-ml-key"), ("global", HOST_ROLE)}
    assert set(by_id) == expected | {("global", HOST_ROLE)}
    assert [row["kind"] for row in found["found"] if row["region"] == "global"] == [
        "role",
        "instance profile",
    ]
    assert not {(r, i) for r, ids in theirs.items() for i in ids.values()} & set(by_id)
    assert all(row["in_use_by"] is None for row in found["found"])
    for region, ec2 in ((REGION, home), (OTHER, away)):
        ids = ours[region]
        for key in ("instance", "requested"):
            row = by_id[(region, ids[key])]
            assert (row["kind"], row["state"], row["billing"]) == ("instance", "running", True)
            assert row["usd_per_day"] == pytest.approx(per_day(ec2, region, ids[key]), rel=1e-9)
        volume = by_id[(region, ids["volume"])]
        assert volume["usd_per_day"] == pytest.approx(
            50 * prices_for("aws", region).gp3_gb_month / 30
        )
        request = by_id[(region, ids["request"])]
        assert (request["kind"], request["state"], request["usd_per_day"]) == (
            "spot request",
            "active",
            0,
        )
        assert by_id[(region, ids["group"])]["usd_per_day"] == 0
    assert found["usd_per_day"] == pytest.approx(
        sum(row["usd_per_day"] for row in found["found"] if row["billing"]), abs=1e-4
    )
    table = cli(aws_env, "sweep", "--config", str(aws_config), check=False).stdout
    assert ours[OTHER]["volume"] in table and "pacerid-tui sweep --yes" in table

    aws_calls_in_the_policy.write_text("")
    swept = cli(aws_env, "sweep", "--yes", "--json", "--config", str(aws_config), check=False)
    assert swept.returncode == 0, swept.stderr
    done = json.loads(swept.stdout)
    assert done["failures"] == [] and done["left"] == []
    assert expected <= {(row["region"], row["resource_id"]) for row in done["removed"]}
    # The safe order, region by region (eu-west-1, then us-east-1), IAM last.
    order = [line.split(":")[1] for line in aws_calls_in_the_policy.read_text().split()]
    writes = [a for a in order if a.startswith(("Cancel", "Terminate", "Delete", "Remove"))]
    steps = [a for i, a in enumerate(writes) if i == 0 or writes[i - 1] != a]
    region = [
        "CancelSpotInstanceRequests",
        "TerminateInstances",
        "DeleteVolume",
        "DeleteSecurityGroup",
    ]
    assert steps == [
        *region,
        *region,
        "DeleteKeyPair",
        "RemoveRoleFromInstanceProfile",
        "DeleteInstanceProfile",
        "DeleteRolePolicy",
        "DeleteRole",
    ]

    for region, ec2 in ((REGION, home), (OTHER, away)):
        mine, other = ours[region], theirs[region]
        states = {
            raw["InstanceId"]: raw["State"]["Name"]
            for reservation in ec2.describe_instances()["Reservations"]
            for raw in reservation["Instances"]
        }
        assert states[mine["instance"]] == states[mine["requested"]] == "terminated"
        assert states[other["instance"]] == states[other["requested"]] == "running"
        requests = {
            r["SpotInstanceRequestId"]: r["State"]
            for r in ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
        }
        assert requests.get(mine["request"], "cancelled") == "cancelled"
        assert requests[other["request"]] == "active"
        volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
        assert mine["volume"] not in volumes and other["volume"] in volumes
        groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
        assert mine["group"] not in groups and other["group"] in groups
    assert [k["KeyName"] for k in home.describe_key_pairs()["KeyPairs"]] == ["pacerid-ml-key-old"]
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_role(RoleName=HOST_ROLE)
    again = cli(aws_env, "sweep", "--config", str(aws_config), check=False)
    assert again.returncode == 0 and "Nothing of ours costs money" in again.stdout


def test_a_region_that_refuses_cannot_tell_and_the_others_are_still_listed(
    aws_config: Path, aws_standin: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for region in (REGION, OTHER):
        client("ec2", region, aws_standin.url).create_volume(
            Size=20, AvailabilityZone=f"{region}a", TagSpecifications=tags("volume", OURS)
        )
    aws_standin.refuse_regions = {OTHER}
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", aws_standin.url)
    config = load_config(aws_config)
    found = leftovers.inventory([AwsProvider(config.instance)], [])
    assert [(u.region, u.reason) for u in found.unreadable] == [
        (
            OTHER,
            f"These AWS credentials may not list what is ours in {OTHER}; "
            "grant the EC2 permission to the user.",
        )
    ]
    assert [(item.region, item.kind) for item in found.found] == [(REGION, "volume")]
    [check] = run_checks(config, ["leftovers"])
    assert check.status == WARN and f"cannot tell for {OTHER}" in check.detail
    listed = cli(aws_standin.url, "sweep", "--config", str(aws_config), check=False)
    assert listed.returncode == 1 and f"Cannot tell for {OTHER} (aws)" in listed.stdout
    assert "Traceback" not in listed.stderr


@pytest.fixture
def spot(aws_env: str) -> Iterator[SpotStandIn]:
    with serve(aws_env, SpotStandIn(aws_env)) as standin:
        assert isinstance(standin, SpotStandIn)
        yield standin


def test_a_stop_mode_instance_no_run_knows_is_swept_request_first_and_nothing_comes_back(
    spot: SpotStandIn, make_config: Any
) -> None:
    provider = AwsProvider(
        make_config(interruption="stop", zones=["us-east-1b"]), endpoint_url=spot.url
    )
    instance = provider.launch(InstanceSpec(run_id="forgotten", provider="aws"))
    iam = client("iam", REGION, spot.url)
    profile = iam.get_instance_profile(InstanceProfileName=HOST_ROLE)["InstanceProfile"]
    assert {"Key": "pacerid:managed", "Value": "true"} in profile["Tags"]  # tagged at creation
    found = leftovers.inventory([provider], [])
    kinds = sorted(item.kind for item in found.leftovers)
    assert kinds == ["instance", "instance profile", "key pair", "role", "security group"]
    spot.calls.clear()
    swept = leftovers.sweep([provider], found)
    assert swept.failures == ()
    writes = [
        action
        for action, _ in spot.calls
        if action in ("CancelSpotInstanceRequests", "TerminateInstances")
    ]
    assert writes == ["CancelSpotInstanceRequests", "TerminateInstances"]
    assert spot.relaunched == []  # cancelled first: the persistent request launched nothing
    [request] = spot.requests.values()
    assert request.state == "cancelled" and request.instance_id == instance.instance_id
    assert (
        provider.describe([instance.instance_id])[instance.instance_id].state
        is InstanceState.TERMINATED
    )
    assert leftovers.inventory([provider], []).found == ()


def test_what_a_run_uses_is_kept_and_an_untagged_host_role_is_never_touched(
    aws_env: str, aws_config: Path, make_provider: Any
) -> None:
    provider = make_provider(interruption="relaunch", zones=["us-east-1b"])
    requests = record_requests(provider)
    instance = provider.launch(InstanceSpec(run_id="alive", provider="aws"))
    [request] = requests  # a one-time spot request is tagged as ours too
    [spec] = [
        s for s in request["TagSpecifications"] if s["ResourceType"] == "spot-instances-request"
    ]
    assert {"Key": "pacerid:managed", "Value": "true"} in spec["Tags"]
    Registry(paths.registry_file()).save(
        Run(
            "alive",
            "aws",
            str(aws_config),
            0.0,
            instance=Instance(instance.instance_id, "aws", InstanceState.RUNNING),
        )
    )
    iam = client("iam", REGION, aws_env)  # made by an administrator, without our tag
    iam.create_role(RoleName=HOST_ROLE, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))

    swept = cli(aws_env, "sweep", "--yes", "--json", "--config", str(aws_config), check=False)
    assert swept.returncode == 0, swept.stderr  # what a run uses is no leftover
    done = json.loads(swept.stdout)
    kept = {row["kind"]: row["in_use_by"] for row in done["found"]}
    assert kept == {"instance": "alive", "key pair": "alive", "security group": "alive"}
    assert done["removed"] == [] and done["left"] == []
    assert (
        provider.describe([instance.instance_id])[instance.instance_id].state
        is InstanceState.RUNNING
    )
    assert iam.get_role(RoleName=HOST_ROLE)["Role"]["RoleName"] == HOST_ROLE
    provider.terminate(instance.instance_id)


async def test_the_dashboard_says_what_is_left_in_another_region(
    aws_env: str, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = client("ec2", OTHER, aws_env).create_volume(
        Size=80, AvailabilityZone=f"{OTHER}a", TagSpecifications=tags("volume", OURS)
    )["VolumeId"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    app = PaceridApp(aws_config, refresh_s=30)
    async with app.run_test(size=(160, 45)) as pilot:

        def told() -> list[str]:
            return [n.message for n in app._notifications if volume in n.message]

        await wait_for(pilot, lambda: bool(told()), timeout=60)
        [message] = told()
        assert f"volume {volume} ({OTHER}, $0.23/day) is ours but no run uses it" in message
        assert "pacerid-tui sweep --yes" in message


def test_doctor_names_what_is_left_and_is_ok_when_nothing_is(
    aws_env: str, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(aws_config)
    [check] = run_checks(config, ["leftovers"])
    assert (check.status, check.detail) == (
        OK,
        "Nothing tagged pacerid:managed=true is left that no run uses.",
    )
    volume = client("ec2", OTHER, aws_env).create_volume(
        Size=80, AvailabilityZone=f"{OTHER}a", TagSpecifications=tags("volume", OURS)
    )["VolumeId"]
    [check] = run_checks(config, ["leftovers"])
    assert check.status == WARN
    assert f"volume {volume} ({OTHER}, $0.23/day)" in check.detail and "sweep --yes" in check.fix
