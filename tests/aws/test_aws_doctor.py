"""`doctor` and the pre-launch check on moto, with the Service Quotas stand-in (quotas_standin):
a new account's 0 vCPUs of G/VT spot is found before anything is written, and an account
without a default VPC is told to set `instance.subnet_id`, which the launch then uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_seed import REGION
from quotas_standin import QuotasStandIn
from textual.widgets import Static

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.aws_keypair import KEY_FILE_MODE
from pacerid_tui.core.kernel.checks import FAIL, OK, WARN
from pacerid_tui.core.kernel.models import InstanceSpec
from pacerid_tui.core.steps.doctor import NAMES, PreflightError, run_checks
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens.launch_form import LaunchForm
from tests.ui.test_app import wait_for

REPO = Path(__file__).resolve().parents[2]
G_SPOT = "L-3819A6DF"


@pytest.fixture(autouse=True)
def simulator(iam_standin: Any) -> Any:
    """base.yaml asks for stop mode, so doctor's role check asks IAM's policy simulator, which
    moto lacks (test_aws_doctor_role.py tests its answers)."""
    return iam_standin


def by_name(config: Path) -> dict[str, Any]:
    return {check.check: check for check in run_checks(load_config(config))}


def ec2_calls(provider: Any) -> list[str]:
    """Every EC2 operation the provider's clients make from now on (botocore's before-call)."""
    seen: list[str] = []

    def record(model: Any, **_: Any) -> None:
        seen.append(model.name)

    for client in (provider.clients.ec2, provider.clients.launch):
        client.meta.events.register("before-call.ec2", record)
    return seen


def writes(calls: list[str]) -> list[str]:
    return [name for name in calls if not name.startswith(("Describe", "Get"))]


async def test_no_quota_fails_the_doctor_and_the_launch_writes_nothing(
    aws_config: Path, quotas: QuotasStandIn
) -> None:
    quotas.reset({G_SPOT: 0.0})
    quota = by_name(aws_config)["quota"]
    assert quota.status == FAIL
    assert f"'All G and VT Spot Instance Requests' ({G_SPOT}) is 0 vCPUs" in quota.detail
    assert "Service Quotas console" in quota.fix
    assert f"--service-code ec2 --quota-code {G_SPOT} --desired-value 4" in quota.fix

    lifecycle = Lifecycle()
    config = load_config(aws_config)
    run = lifecycle.create_run(aws_config, config)
    calls = ec2_calls(lifecycle.provider_for_config(config.instance))
    with pytest.raises(PreflightError, match=rf"quota check failed: .*{G_SPOT}") as refused:
        await lifecycle.launch(run)
    assert refused.value.exit_code == 1
    assert "DescribeInstanceTypes" in calls and writes(calls) == []
    assert lifecycle.registry.get(run.run_id).instance is None


@pytest.mark.parametrize(
    ("refused", "why"),
    [(set(), "NoSuchResourceException"), ({"GetServiceQuota"}, "AccessDeniedException")],
)
def test_a_quota_known_only_by_its_default_says_so_and_does_not_fail(
    aws_config: Path, quotas: QuotasStandIn, refused: set[str], why: str
) -> None:
    """GetServiceQuota gives no value of the account's (none applied, or not allowed):
    GetAWSDefaultServiceQuota's 0 is AWS's default, not the account's, which may be raised."""
    quotas.reset({})
    quotas.refused = refused
    quota = by_name(aws_config)["quota"]
    assert quota.status == WARN, quota
    assert quota.detail == (
        f"Cannot tell: 'All G and VT Spot Instance Requests' ({G_SPOT}) is 0 vCPUs by AWS "
        f"default, not your account's (GetServiceQuota: {why}); 0 in use; spot g4dn.xlarge "
        "needs 4."
    )
    assert ("GetAWSDefaultServiceQuota", G_SPOT) in quotas.calls


async def test_enough_quota_passes_and_the_launch_goes_ahead(
    aws_config: Path, quotas: QuotasStandIn
) -> None:
    quotas.reset({G_SPOT: 8.0})
    checks = by_name(aws_config)
    assert list(checks) == list(NAMES)
    assert checks["quota"].status == OK, checks["quota"]
    assert "is 8 vCPUs, 0 in use" in checks["quota"].detail
    assert checks["credentials"].status == OK and "123456789012" in checks["credentials"].detail
    assert checks["network"].status == OK and "Default VPC" in checks["network"].detail
    assert checks["image"].status == OK and "SSH user ubuntu)" in checks["image"].detail
    assert checks["key_pair"].status == OK and "will be created" in checks["key_pair"].detail
    lifecycle = Lifecycle()
    config = load_config(aws_config)
    run = await lifecycle.launch(lifecycle.create_run(aws_config, config))
    assert run.instance is not None and run.instance.state.value == "running"
    # The running instance now uses 4 of the 8 vCPUs: a second one still fits, a third not.
    assert "is 8 vCPUs, 4 in use" in by_name(aws_config)["quota"].detail
    assert by_name(aws_config)["key_pair"].detail.startswith("Key pair pacerid-ml-key matches")
    await lifecycle.terminate(run)


def remove_default_vpc(ec2: Any) -> None:
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"
    ]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_no_default_vpc_fails_the_network_and_a_subnet_id_fixes_it(
    aws_config: Path, ec2: Any, make_provider: Any
) -> None:
    remove_default_vpc(ec2)
    network = by_name(aws_config)["network"]
    assert network.status == FAIL
    assert "no default VPC" in network.detail and "instance.subnet_id" in network.fix

    vpc_id = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock="10.8.1.0/24", AvailabilityZone=f"{REGION}b"
    )["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    raw = yaml.safe_load(aws_config.read_text())
    raw["instance"]["subnet_id"] = subnet_id
    aws_config.write_text(yaml.safe_dump(raw))
    network = by_name(aws_config)["network"]
    assert network.status == OK, network
    assert f"Subnet {subnet_id} of {vpc_id}" in network.detail

    provider = make_provider(subnet_id=subnet_id)
    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"))
    [reservation] = ec2.describe_instances(InstanceIds=[instance.instance_id])["Reservations"]
    launched = reservation["Instances"][0]
    assert (launched["SubnetId"], launched["VpcId"], instance.zone) == (
        subnet_id,
        vpc_id,
        f"{REGION}b",
    )
    [group] = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["pacerid-ml-sg"]}]
    )["SecurityGroups"]
    assert group["VpcId"] == vpc_id
    assert [g["GroupId"] for g in launched["SecurityGroups"]] == [group["GroupId"]]
    provider.terminate(instance.instance_id)


def test_a_key_file_that_is_not_the_pairs_key_fails(
    aws_config: Path, ec2: Any, key_dir: Path
) -> None:
    ec2.create_key_pair(KeyName="pacerid-ml-key", KeyType="ed25519")  # its key is not here
    other = ec2.create_key_pair(KeyName="someone-else", KeyType="ed25519")["KeyMaterial"]
    path = key_dir / "pacerid-ml-key.pem"
    path.write_text(other)
    path.chmod(KEY_FILE_MODE)
    key_pair = by_name(aws_config)["key_pair"]
    assert key_pair.status == FAIL and "fingerprints differ" in key_pair.detail


def doctor_json(config: Path) -> subprocess.CompletedProcess[str]:
    """`pacerid-tui doctor --json` as a user runs it, in this test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "pacerid_tui", "doctor", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        cwd=REPO,
    )


def test_the_cli_prints_json_and_exits_1_on_a_blocking_check(
    aws_env: str, aws_config: Path, quotas: QuotasStandIn
) -> None:
    quotas.reset({G_SPOT: 0.0})
    done = doctor_json(aws_config)
    assert done.returncode == 1, done.stderr
    listed = json.loads(done.stdout)
    assert [entry["check"] for entry in listed] == list(NAMES)
    assert all(set(entry) == {"check", "status", "detail", "fix"} for entry in listed)
    assert {entry["check"]: entry["status"] for entry in listed}["quota"] == "fail"


async def test_the_launch_form_shows_the_refusal_and_launches_nothing(
    aws_config: Path, quotas: QuotasStandIn
) -> None:
    quotas.reset({G_SPOT: 0.0})
    app = PaceridApp(aws_config, refresh_s=30)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchForm))
        await pilot.pause(0.5)
        await pilot.press("enter")

        def said() -> str:
            return str(app.screen.query_one("#launch-error", Static).render())

        await wait_for(pilot, lambda: G_SPOT in said())
        assert "request-service-quota-increase" in said()
        assert isinstance(app.screen, LaunchForm) and not app.runs.rows


def test_a_zone_without_a_subnet_is_skipped_not_fatal(
    aws_config: Path, ec2: Any, make_provider: Any, reports: Any
) -> None:
    [subnet] = ec2.describe_subnets(
        Filters=[
            {"Name": "availability-zone", "Values": [f"{REGION}a"]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    raw = yaml.safe_load(aws_config.read_text())
    raw["instance"]["zones"] = [f"{REGION}a", f"{REGION}b"]
    aws_config.write_text(yaml.safe_dump(raw))
    network = by_name(aws_config)["network"]
    assert network.status == "warn" and f"{REGION}a have none and are skipped" in network.detail

    provider = make_provider(zones=[f"{REGION}a", f"{REGION}b"])
    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)
    assert instance.zone == f"{REGION}b"
    assert any(line.startswith(f"Skipping {REGION}a: no subnet") for line in reports)
    provider.terminate(instance.instance_id)
