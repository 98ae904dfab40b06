"""Which machine image to boot: the newest available AWS Deep Learning AMI, or a pinned one.

AWS publishes a new Deep Learning AMI every few weeks and retires the old ones, so the id is
never hard-coded. Name patterns are tried in order, because newer PyTorch images exist only for
Ubuntu 24.04 and some regions lag behind; within a pattern the newest creation date wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import ClientError

from pacerid_tui.core.cloud.aws_session import aws_errors, error_code, user_error
from pacerid_tui.core.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

IMAGE_OWNERS = ["amazon"]
"""AWS's own images (the Deep Learning AMIs are account 898082745236, published as amazon)."""

IMAGE_NAME_PATTERNS = (
    "Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 22.04) *",
    "Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 24.04) *",
    "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *",
)

ARCHITECTURE = "x86_64"
"""Every supported GPU type (g4dn, g5, g6, p3…) is x86; Graviton GPU types would need arm64."""


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    root_device_name: str
    creation_date: str


def newest(images: Sequence[Mapping[str, Any]]) -> Image | None:
    """The available image with the latest creation date (ISO strings sort by time)."""
    available = [image for image in images if image.get("State") == "available"]
    if not available:
        return None
    best = max(available, key=lambda image: str(image.get("CreationDate", "")))
    return to_image(best)


def to_image(raw: Mapping[str, Any]) -> Image:
    return Image(
        image_id=raw["ImageId"],
        name=raw.get("Name", raw["ImageId"]),
        root_device_name=raw.get("RootDeviceName", "/dev/sda1"),
        creation_date=str(raw.get("CreationDate", "")),
    )


def find_image(ec2: EC2Client, region: str, ami_id: str | None = None) -> Image:
    """The pinned image if `ami_id` is given, else the newest Deep Learning AMI by pattern order."""
    if ami_id:
        return pinned_image(ec2, region, ami_id)
    for pattern in IMAGE_NAME_PATTERNS:
        with aws_errors("look up Deep Learning AMIs"):
            answer = ec2.describe_images(
                Owners=IMAGE_OWNERS,
                Filters=[
                    {"Name": "name", "Values": [pattern]},
                    {"Name": "state", "Values": ["available"]},
                    {"Name": "architecture", "Values": [ARCHITECTURE]},
                ],
            )
        image = newest(answer.get("Images", []))
        if image is not None:
            return image
    raise ProviderError(
        f"No Deep Learning AMI is available in {region}; "
        "pick another instance.region or pin an image with instance.ami_id."
    )


def pinned_image(ec2: EC2Client, region: str, ami_id: str) -> Image:
    try:
        answer = ec2.describe_images(ImageIds=[ami_id])
    except ClientError as err:
        if not error_code(err).startswith("InvalidAMIID"):
            raise user_error(err, f"look up image {ami_id}") from err
        return missing_pin(region, ami_id)
    image = newest(answer.get("Images", []))
    if image is None:
        return missing_pin(region, ami_id)
    return image


def missing_pin(region: str, ami_id: str) -> NoReturn:
    raise ConfigError(
        f"instance.ami_id = {ami_id!r} is not an available image in {region}; "
        "fix it or remove it to use the newest Deep Learning AMI."
    )
