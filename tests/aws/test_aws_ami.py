"""AMI choice against moto seeded with Deep Learning AMIs (see conftest.AMIS)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_seed import BASE_AMI, NEWEST_PYTORCH_2204, NEWEST_PYTORCH_2404, REGION

from pacerid_tui.core.cloud.aws_ami import find_image
from pacerid_tui.core.errors import ConfigError, ProviderError


def deregister(ec2: Any, *ami_ids: str) -> None:
    for ami_id in ami_ids:
        ec2.deregister_image(ImageId=ami_id)


def test_newest_available_of_the_first_pattern_wins(make_provider: Any) -> None:
    image = find_image(make_provider().clients.ec2, REGION)
    # A newer 22.04 image exists but is still pending; newer 24.04 images come later in order.
    assert image.image_id == NEWEST_PYTORCH_2204
    assert image.name.endswith("PyTorch 2.5 (Ubuntu 22.04) 20240612")
    assert image.root_device_name == "/dev/sda1"


def test_falls_back_to_ubuntu_2404_then_base(make_provider: Any, ec2: Any) -> None:
    client = make_provider().clients.ec2
    deregister(ec2, "ami-0a1b2c3d4e5f60001", NEWEST_PYTORCH_2204, "ami-0a1b2c3d4e5f60003")
    assert find_image(client, REGION).image_id == NEWEST_PYTORCH_2404
    deregister(ec2, NEWEST_PYTORCH_2404, "ami-0a1b2c3d4e5f60006")
    assert find_image(client, REGION).image_id == BASE_AMI


def test_a_region_without_any_says_what_to_do(make_provider: Any, ec2: Any) -> None:
    deregister(ec2, *(f"ami-0a1b2c3d4e5f6000{n}" for n in (1, 2, 3, 5, 6, 7)))
    with pytest.raises(ProviderError, match=r"No Deep Learning AMI .* us-east-1; .*ami_id"):
        find_image(make_provider().clients.ec2, REGION)


def test_pinned_ami_is_used_even_when_not_newest(make_provider: Any) -> None:
    image = find_image(make_provider().clients.ec2, REGION, "ami-0a1b2c3d4e5f60001")
    assert image.image_id == "ami-0a1b2c3d4e5f60001"
    assert image.name.endswith("20240101")


def test_unknown_pinned_ami_names_the_key(make_provider: Any) -> None:
    with pytest.raises(ConfigError, match=r"instance.ami_id = 'ami-0000000000000dead'"):
        find_image(make_provider().clients.ec2, REGION, "ami-0000000000000dead")
