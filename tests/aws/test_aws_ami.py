"""Image choice, login user and root volume: AWS's SSM parameters first (a loopback stand-in,
aws_standin.py, since moto has none under /aws), then the name search on moto's seeded
Deep Learning AMIs (aws_seed.AMIS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_seed import (
    AL2023_AMI,
    ARM64_AMI,
    BASE_AMI,
    MOTO_SNAPSHOT_GB,
    NEWEST_PYTORCH,
    NEWEST_PYTORCH_2204,
    REGION,
    Reports,
)
from aws_standin import AwsStandIn

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_ami import ROOM_GB, find_image
from pacerid_tui.core.kernel.errors import ConfigError, ProviderError
from pacerid_tui.core.kernel.models import InstanceSpec

X86 = "/aws/service/deeplearning/ami/x86_64"
ARM = "/aws/service/deeplearning/ami/arm64"

PUBLIC_PARAMETERS = {
    f"{X86}/oss-nvidia-driver-gpu-pytorch-2.10-ubuntu-22.04/latest/ami-id": NEWEST_PYTORCH_2204,
    f"{X86}/oss-nvidia-driver-gpu-pytorch-2.9-ubuntu-24.04/latest/ami-id": "ami-0a1b2c3d4e5f60009",
    f"{X86}/oss-nvidia-driver-gpu-pytorch-2.6-ubuntu-24.04/latest/ami-id": "ami-0a1b2c3d4e5f60006",
    f"{X86}/oss-nvidia-driver-gpu-pytorch-2.5-ubuntu-22.04/latest/ami-id": "ami-0a1b2c3d4e5f60002",
    f"{X86}/oss-nvidia-driver-gpu-pytorch-2.6-amazon-linux-2023/latest/ami-id": AL2023_AMI,
    f"{ARM}/arm64-oss-nvidia-driver-gpu-pytorch-2.11-ubuntu-24.04/latest/ami-id": ARM64_AMI,
    **{
        f"{X86}/base-oss-nvidia-driver-gpu-{os}/latest/ami-id": BASE_AMI
        for os in ("ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04", "amazon-linux-2023")
    },
    **{  # other frameworks' types, as AWS lists them alongside: enough for a second page
        f"{X86}/oss-nvidia-driver-gpu-tensorflow-2.{v}-{os}/latest/ami-id": f"ami-0f{v:015d}"
        for v in range(16, 19)
        for os in ("ubuntu-22.04", "amazon-linux-2023")
    },
}
"""The x86_64 listing has no PyTorch 2.10 on Ubuntu 24.04, which the name search would pick:
whichever image wins shows which source was used."""


def deregister(ec2: Any, *ami_ids: str) -> None:
    for ami_id in ami_ids:
        ec2.deregister_image(ImageId=ami_id)


def via_standin(standin: AwsStandIn, make_config: Callable[..., InstanceConfig], **kw: Any) -> Any:
    return AwsProvider(make_config(**kw), endpoint_url=standin.url)


def test_ssm_parameters_give_the_newest_pytorch_never_arm64(
    aws_standin: AwsStandIn, make_config: Callable[..., InstanceConfig], reports: Reports
) -> None:
    aws_standin.parameters = dict(PUBLIC_PARAMETERS)
    provider = via_standin(aws_standin, make_config)
    image = find_image(provider.clients.ec2, provider.clients.ssm, REGION, None, reports)
    # 2.10 beats 2.9 as a number (not as text), and the arm64 2.11 is never considered.
    assert image.image_id == NEWEST_PYTORCH_2204 and image.architecture == "x86_64"
    assert image.user == "ubuntu" and image.snapshot_gb == MOTO_SNAPSHOT_GB
    assert len(aws_standin.ssm_calls) >= 2  # paged with NextToken
    assert {call["Path"] for call in aws_standin.ssm_calls} == {X86}
    assert [bool(call.get("NextToken")) for call in aws_standin.ssm_calls][:2] == [False, True]
    assert not [line for line in reports if "searching names" in line]

    al2023 = f"{X86}/oss-nvidia-driver-gpu-pytorch-2.6-amazon-linux-2023/latest/ami-id"
    aws_standin.parameters = {al2023: AL2023_AMI}  # where only Amazon Linux has PyTorch
    image = find_image(provider.clients.ec2, provider.clients.ssm, REGION, None, reports)
    assert (image.image_id, image.user) == (AL2023_AMI, "ec2-user")


def test_ssm_refused_or_empty_falls_back_to_the_name_search(
    aws_standin: AwsStandIn,
    make_config: Callable[..., InstanceConfig],
    reports: Reports,
    ec2: Any,
) -> None:
    aws_standin.refuse = True
    provider = via_standin(aws_standin, make_config)
    clients = provider.clients
    image = find_image(clients.ec2, clients.ssm, REGION, None, reports)
    # Newest PyTorch, newest Ubuntu: 2.10 on 24.04 beats 2.10 on 22.04 (published later),
    # 2.9 (later as text) and the arm64 2.11.
    assert image.image_id == NEWEST_PYTORCH and image.name.endswith("(Ubuntu 24.04) 20251015")
    assert "refused (AccessDeniedException); searching names" in reports[-1]

    aws_standin.refuse = False  # a region whose listing has no PyTorch image
    deregister(ec2, NEWEST_PYTORCH)
    image = find_image(clients.ec2, clients.ssm, REGION, None, reports)
    assert image.image_id == NEWEST_PYTORCH_2204
    assert "list no PyTorch Deep Learning AMI here; searching names" in reports[-1]


def test_a_region_without_a_pytorch_image_says_what_to_do(make_provider: Any, ec2: Any) -> None:
    pytorch = [f"ami-0a1b2c3d4e5f600{n:02d}" for n in (1, 2, 3, 5, 6, 9, 10, 11, 13)]
    deregister(ec2, *pytorch)  # a Base image is left: never chosen, setup needs PyTorch
    clients = make_provider().clients
    with pytest.raises(ProviderError, match=r"No Deep Learning AMI with PyTorch .* us-east-1; "):
        find_image(clients.ec2, clients.ssm, REGION)


def test_pinned_ami_is_used_even_when_not_newest(make_provider: Any) -> None:
    clients = make_provider().clients
    image = find_image(clients.ec2, clients.ssm, REGION, "ami-0a1b2c3d4e5f60001")
    assert image.image_id == "ami-0a1b2c3d4e5f60001"
    assert image.name.endswith("20240101")


def test_unknown_pinned_ami_names_the_key(make_provider: Any) -> None:
    clients = make_provider().clients
    with pytest.raises(ConfigError, match=r"instance.ami_id = 'ami-0000000000000dead'"):
        find_image(clients.ec2, clients.ssm, REGION, "ami-0000000000000dead")


def test_a_pinned_base_or_arm64_image_is_refused_before_launch(
    make_provider: Any, ec2: Any
) -> None:
    with pytest.raises(ConfigError, match=r"has no PyTorch and setup cannot install it there;"):
        make_provider(ami_id=BASE_AMI).launch(InstanceSpec(run_id="r", provider="aws"))
    with pytest.raises(ConfigError, match=r"is an arm64 image and the GPU instance types"):
        make_provider(ami_id=ARM64_AMI).launch(InstanceSpec(run_id="r", provider="aws"))
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []  # refused before anything was made


def test_amazon_linux_logs_in_as_ec2_user_unless_the_config_says(make_provider: Any) -> None:
    provider = make_provider(ami_id=AL2023_AMI)
    instance = provider.launch(InstanceSpec(run_id="al", provider="aws"))
    assert instance.user == "ec2-user"
    assert provider.describe([instance.instance_id])[instance.instance_id].user == "ec2-user"
    assert [found.user for found in make_provider().find_managed()] == ["ec2-user"]
    assert [found.user for found in make_provider(ssh_user="admin").find_managed()] == ["admin"]
    ubuntu = make_provider().launch(InstanceSpec(run_id="ub", provider="aws"))
    assert ubuntu.user == "ubuntu"


def test_root_volume_is_the_snapshot_plus_room_and_never_below_it(
    make_provider: Any, ec2: Any, reports: Reports
) -> None:
    def volume_of(instance_id: str) -> tuple[int, str]:
        [volume] = ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["Volumes"]
        raw = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
        tags = {tag["Key"]: tag["Value"] for tag in raw[0]["Tags"]}
        return volume["Size"], tags["pacerid:volume-gb"]

    sized = make_provider().launch(InstanceSpec(run_id="sized", provider="aws"), reports)
    room = MOTO_SNAPSHOT_GB + ROOM_GB
    assert volume_of(sized.instance_id) == (room, str(room)) and sized.volume_gb == room
    assert [line for line in reports if f"root volume {room} GB" in line]

    exact = make_provider(root_volume_gb=MOTO_SNAPSHOT_GB).launch(
        InstanceSpec(run_id="exact", provider="aws")
    )
    assert volume_of(exact.instance_id) == (MOTO_SNAPSHOT_GB, str(MOTO_SNAPSHOT_GB))

    small = make_provider(root_volume_gb=MOTO_SNAPSHOT_GB - 1)
    with pytest.raises(ConfigError, match=r"root_volume_gb = 14 is below the 15 GB snapshot"):
        small.launch(InstanceSpec(run_id="small", provider="aws"))
    assert len(ec2.describe_instances()["Reservations"]) == 2
