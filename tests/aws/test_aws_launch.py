"""Launching against moto: the request EC2 receives, and what EC2 then says about the instance."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

from aws_seed import CALLER_IP, NEWEST_PYTORCH, Reports

from pacerid_tui.core.cloud.aws_ami import Image
from pacerid_tui.core.cloud.aws_launch import Attempt, run_request
from pacerid_tui.core.kernel.models import InstanceSpec, InstanceState


def record_requests(provider: Any) -> list[dict[str, Any]]:
    """Every RunInstances request as the provider built it (botocore's own event hook)."""
    requests: list[dict[str, Any]] = []

    def keep(params: dict[str, Any], **_: Any) -> None:
        requests.append(dict(params))

    provider.clients.launch.meta.events.register("before-parameter-build.ec2.RunInstances", keep)
    return requests


def test_launch_requests_a_tagged_one_time_spot_instance(
    make_provider: Any, ec2: Any, key_dir: Path, reports: Reports
) -> None:
    provider = make_provider(
        root_volume_gb=120, max_price=0.3, zones=["us-east-1b"], interruption="relaunch"
    )
    requests = record_requests(provider)
    instance = provider.launch(InstanceSpec(run_id="run-42", provider="aws"), reports)

    [request] = requests
    assert request["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "MaxPrice": "0.3",
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        },
    }
    assert request["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert request["MetadataOptions"]["HttpTokens"] == "required"
    user_data = base64.b64decode(request["UserData"]).decode()  # botocore encoded it
    assert "pacerid-boot-switch" in user_data  # always armed at first boot
    assert '"$dir/switch.sh" "$dir" 1800 15 0 120' in user_data  # no max runtime asked for

    assert instance.state is InstanceState.RUNNING
    assert instance.market == "spot"
    assert instance.zone == "us-east-1b"
    assert instance.instance_type == "g4dn.xlarge"
    assert instance.host and instance.port == 22 and instance.user == "ubuntu"
    assert instance.key_path == str(key_dir / "pacerid-ml-key.pem")
    assert instance.image_name and instance.image_name.endswith("(Ubuntu 24.04) 20251015")
    assert instance.run_id == "run-42"
    assert instance.launched_at is not None and instance.ended_at is None

    raw = ec2.describe_instances(InstanceIds=[instance.instance_id])["Reservations"][0][
        "Instances"
    ][0]
    assert raw["InstanceLifecycle"] == "spot"
    assert raw["ImageId"] == NEWEST_PYTORCH
    assert raw["KeyName"] == "pacerid-ml-key"
    assert [group["GroupName"] for group in raw["SecurityGroups"]] == ["pacerid-ml-sg"]
    tags = {tag["Key"]: tag["Value"] for tag in raw["Tags"]}
    assert tags["Name"] == "pacerid-ml-training"
    assert tags["pacerid:run-id"] == "run-42"
    assert tags["pacerid:managed"] == "true"
    assert tags["pacerid:interruption"] == "relaunch"
    behaviour = ec2.describe_instance_attribute(
        InstanceId=instance.instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"

    [volume] = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance.instance_id]}]
    )["Volumes"]
    assert volume["Size"] == 120
    assert volume["VolumeType"] == "gp3"
    volume_tags = {tag["Key"]: tag["Value"] for tag in volume["Tags"]}
    assert volume_tags == {
        "Name": "pacerid-ml-training",
        "pacerid:run-id": "run-42",
        "pacerid:managed": "true",
    }

    assert stat.S_IMODE((key_dir / "pacerid-ml-key.pem").stat().st_mode) == 0o400
    assert f"Security group pacerid-ml-sg allows SSH from {CALLER_IP}/32." in reports
    [image] = [line for line in reports if line.startswith("Image: ")]
    assert image.startswith("Image: Deep Learning OSS Nvidia Driver AMI GPU PyTorch 2.10")
    assert image.endswith("; login ubuntu, root volume 120 GB.")
    assert reports[-1] == f"{instance.instance_id} is running at {instance.host}."


def test_the_launch_carries_the_boot_switch_with_its_max_runtime(
    make_provider: Any, ec2: Any
) -> None:
    """EC2 runs user data once, at first boot, as root (EC2 User Guide, "Run commands when you
    launch an EC2 instance with user data input"); DescribeInstanceAttribute returns it base64.
    It installs the switch as a cloud-init per-boot script, which holds the max runtime too."""
    provider = make_provider(max_runtime_minutes=240, boot_grace_minutes=20)
    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"))
    data = ec2.describe_instance_attribute(InstanceId=instance.instance_id, Attribute="userData")
    script = base64.b64decode(data["UserData"]["Value"]).decode()
    assert script.startswith("#!/bin/sh\n")
    assert 'dir="${PACERID_BOOT_DIR:-/var/lib/pacerid}"' in script
    assert 'per_boot="${PACERID_CLOUD_DIR:-/var/lib/cloud}/scripts/per-boot"' in script
    assert "systemd-run --unit=pacerid-boot-switch" in script
    # 20 minutes of grace and 240 of running time, in seconds; no `shutdown -h +N`.
    assert '"$dir/switch.sh" "$dir" 1200 15 14400 120' in script
    assert "shutdown -h +" not in script


def request_for(market: str, config: Any, device: str = "/dev/sda1") -> dict[str, Any]:
    """RunInstances' request for a g4dn.xlarge in us-east-1a from an image whose root is
    `device` (its snapshot's size unknown)."""
    image = Image("ami-1", "DLAMI", device, "2025-01-01")
    return run_request(Attempt("g4dn.xlarge", "us-east-1a", market), image, "k", "sg", config, "r")


def test_on_demand_request_has_no_market_options(make_config: Any) -> None:
    request = request_for("on-demand", make_config(), "/dev/xvda")
    assert "InstanceMarketOptions" not in request
    assert request["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
    assert request["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 100  # snapshot unknown


def test_no_max_price_leaves_the_cap_to_aws(make_config: Any) -> None:
    request = request_for("spot", make_config(max_price=None))
    assert "MaxPrice" not in request["InstanceMarketOptions"]["SpotOptions"]
