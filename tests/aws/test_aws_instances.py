"""Describe, find, terminate and read instances, against moto and on real-shaped EC2 answers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from aws_seed import NEWEST_PYTORCH_2204, Reports

from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_instances import host_key_fingerprints, to_instance
from pacerid_tui.core.kernel.models import InstanceSpec, InstanceState


def count_calls(provider: AwsProvider, operation: str) -> list[str]:
    calls: list[str] = []
    provider.clients.ec2.meta.events.register(
        f"before-call.ec2.{operation}", lambda **_: calls.append(operation)
    )
    return calls


def launch(provider: AwsProvider, run_id: str) -> str:
    return provider.launch(InstanceSpec(run_id=run_id, provider="aws")).instance_id


def test_describe_is_one_call_for_many_ids_and_skips_unknown_ones(make_provider: Any) -> None:
    provider = make_provider()
    ids = [launch(provider, f"run-{n}") for n in range(3)]
    calls = count_calls(provider, "DescribeInstances")
    found = provider.describe([*ids, "i-0123456789abcdef0", ids[0]])
    assert calls == ["DescribeInstances"]
    assert sorted(found) == sorted(ids)
    assert {found[i].run_id for i in ids} == {"run-0", "run-1", "run-2"}
    assert provider.describe([]) == {}


def test_terminate_waits_for_terminated_and_is_idempotent(
    make_provider: Any, reports: Reports
) -> None:
    provider = make_provider()
    instance_id = launch(provider, "r")
    ended = provider.terminate(instance_id, reports)
    assert ended.state is InstanceState.TERMINATED
    assert ended.ended_at is not None and ended.launched_at is not None
    assert ended.ended_at >= ended.launched_at - 1
    assert ended.state_reason == "terminated by request"
    assert provider.terminate(instance_id).state is InstanceState.TERMINATED
    gone = provider.terminate("i-0123456789abcdef0", reports)
    assert gone.state is InstanceState.TERMINATED
    assert reports[-1] == "i-0123456789abcdef0 no longer exists; nothing is billing."
    assert provider.describe([instance_id])[instance_id].state is InstanceState.TERMINATED


def test_find_managed_returns_live_tagged_instances_only(make_provider: Any, ec2: Any) -> None:
    provider = make_provider()
    kept = launch(provider, "kept")
    ended = launch(provider, "ended")
    provider.terminate(ended)
    ec2.run_instances(ImageId=NEWEST_PYTORCH_2204, MinCount=1, MaxCount=1)  # not ours
    ec2.run_instances(
        ImageId=NEWEST_PYTORCH_2204,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "pacerid-ml-training"}]}
        ],
    )  # the old script's instance: same Name, no managed tag
    assert [instance.instance_id for instance in provider.find_managed()] == [kept]


def test_an_instance_the_registry_lost_is_found_by_a_fresh_provider(make_provider: Any) -> None:
    instance_id = launch(make_provider(), "lost-run")
    [found] = make_provider().find_managed()
    assert (found.instance_id, found.run_id, found.state) == (
        instance_id,
        "lost-run",
        InstanceState.RUNNING,
    )
    assert found.image_name and "PyTorch" in found.image_name


def test_spot_history_of_the_instance_zone_and_zone_prices(make_provider: Any) -> None:
    provider = make_provider(zones=["us-east-1a", "us-east-1b"])
    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"))
    history = provider.price_history(instance, instance.launched_at or 0, 2e9)
    assert history and {point.zone for point in history} == {instance.zone}
    assert all(point.price == pytest.approx(0.00001) for point in history)
    assert provider.zone_prices() == {"us-east-1a": 0.00001, "us-east-1b": 0.00001}


def test_on_demand_history_is_the_bundled_flat_rate(make_provider: Any) -> None:
    provider = make_provider(market="on-demand")
    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"))
    assert instance.market == "on-demand"
    [point] = provider.price_history(instance, 1000.0, 5000.0)
    assert (point.timestamp, point.price) == (1000.0, 0.526)


def test_console_output_without_fingerprints_yet(make_provider: Any) -> None:
    provider = make_provider()
    assert provider.host_key_fingerprints(launch(provider, "r")) == []


CONSOLE = """\
[   12.345678] cloud-init[1021]: Cloud-init v. 24.1 running 'modules:config'
-----BEGIN SSH HOST KEY FINGERPRINTS-----
256 SHA256:3mQZ7TlXq6Jk9hL0sYp2cVb8nE4wRtUuIiOoPpAaSsD root@ip-172-31-22-7 (ECDSA)
256 SHA256:Xy1Zz2Ww3Vv4Uu5Tt6Ss7Rr8Qq9Pp0Oo1Nn2Mm3Ll4 root@ip-172-31-22-7 (ED25519)
3072 SHA256:aB+cD/eF1gH2iJ3kL4mN5oP6qR7sT8uV9wX0yZ1aB2c root@ip-172-31-22-7 (RSA)
-----END SSH HOST KEY FINGERPRINTS-----
-----BEGIN SSH HOST KEY KEYS-----
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyMaterial root@ip-172-31-22-7
-----END SSH HOST KEY KEYS-----
"""


def test_host_key_fingerprints_from_cloud_init_console() -> None:
    assert host_key_fingerprints(CONSOLE) == [
        "SHA256:3mQZ7TlXq6Jk9hL0sYp2cVb8nE4wRtUuIiOoPpAaSsD",
        "SHA256:Xy1Zz2Ww3Vv4Uu5Tt6Ss7Rr8Qq9Pp0Oo1Nn2Mm3Ll4",
        "SHA256:aB+cD/eF1gH2iJ3kL4mN5oP6qR7sT8uV9wX0yZ1aB2c",
    ]
    assert host_key_fingerprints("booting…") == []


def interrupted() -> dict[str, Any]:
    """A spot instance AWS took back, as DescribeInstances shows it."""
    return {
        "InstanceId": "i-0f1e2d3c4b5a69788",
        "InstanceType": "g4dn.xlarge",
        "KeyName": "pacerid-ml-key-20250101-120000",
        "LaunchTime": datetime(2025, 6, 1, 9, 0, 0, tzinfo=timezone.utc),
        "Placement": {"AvailabilityZone": "us-east-1c"},
        "State": {"Code": 48, "Name": "terminated"},
        "StateReason": {
            "Code": "Server.SpotInstanceTermination",
            "Message": "Server.SpotInstanceTermination: Spot instance termination",
        },
        "StateTransitionReason": "Service initiated (2025-06-01 11:30:15 GMT)",
        "InstanceLifecycle": "spot",
        "Tags": [{"Key": "pacerid:run-id", "Value": "run-7"}],
    }


def test_spot_interruption_reads_as_interrupted_by_aws(make_config: Any) -> None:
    config = make_config()
    instance = to_instance(interrupted(), config)
    assert instance.state is InstanceState.TERMINATED
    assert instance.state_reason == "interrupted by AWS"
    assert instance.market == "spot"
    assert instance.launched_at == datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc).timestamp()
    assert instance.ended_at == datetime(2025, 6, 1, 11, 30, 15, tzinfo=timezone.utc).timestamp()
    assert instance.key_path is not None
    assert instance.key_path.endswith("/pacerid-ml-key-20250101-120000.pem")
    assert instance.run_id == "run-7" and instance.host is None


def test_without_a_public_address_only_a_proxy_reaches_the_private_one(make_config: Any) -> None:
    running = interrupted() | {"State": {"Name": "running"}, "PrivateIpAddress": "10.0.3.7"}
    assert to_instance(running, make_config()).host is None
    proxied = make_config(ssh_proxy_command="ssh -W %h:%p bastion")
    assert to_instance(running, proxied).host == "10.0.3.7"
    public = running | {"PublicIpAddress": "203.0.113.5"}
    assert to_instance(public, proxied).host == "203.0.113.5"


def test_unknown_reason_codes_fall_back_to_aws_words(make_config: Any) -> None:
    raw = interrupted() | {"StateReason": {"Code": "Server.Odd", "Message": "Something odd"}}
    assert to_instance(raw, make_config()).state_reason == "Something odd"
    raw = interrupted() | {"State": {"Name": "hibernating"}, "StateReason": {}}
    instance = to_instance(raw, make_config())
    assert instance.state is InstanceState.UNKNOWN and instance.state_reason is None
