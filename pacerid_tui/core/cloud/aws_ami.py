"""Which machine image to boot, who logs in to it, and how big its root volume is.

AWS publishes a new Deep Learning AMI every few weeks and retires the old ones, so the id is
never hard-coded. AWS's own pointer comes first: the public SSM parameters
`/aws/service/deeplearning/ami/x86_64/<type>/latest/ami-id`, one per image type, where PyTorch
types carry their framework version and OS (`oss-nvidia-driver-gpu-pytorch-2.9-ubuntu-24.04`),
so the path is listed and the newest PyTorch on the newest Ubuntu wins. Reading them needs
`ssm:GetParametersByPath`; when that is refused, or a region has none, the image names are
searched instead with the same preference. Base images (no PyTorch) are never chosen: setup
reuses the image's PyTorch and cannot install one there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud.aws_session import aws_errors, error_code, user_error
from pacerid_tui.core.cloud.base import Report, quiet
from pacerid_tui.core.kernel.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

IMAGE_OWNERS = ["amazon"]
"""AWS's own images (the Deep Learning AMIs are account 898082745236, published as amazon)."""

ARCHITECTURE = "x86_64"
"""Every supported GPU type (g4dn, g5, g6, p3…) is x86; Graviton GPU types would need arm64."""

SSM_PATH = f"/aws/service/deeplearning/ami/{ARCHITECTURE}"
"""AWS's public parameters for the DLAMIs of this architecture (arm64 ones live elsewhere)."""

SSM_TYPE = re.compile(
    rf"^{SSM_PATH}/oss-nvidia-driver-gpu-pytorch-(?P<version>\d+(?:\.\d+)*)-"
    r"(?P<os>ubuntu-\d+\.\d+|amazon-linux-2023)/latest/ami-id$"
)
NAME_PATTERN = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch *"
NAME = re.compile(
    r"^Deep Learning OSS Nvidia Driver AMI GPU PyTorch (?P<version>\d+(?:\.\d+)*) "
    r"\((?P<os>Ubuntu \d+\.\d+|Amazon Linux 2023)\)"
)
UBUNTU = re.compile(r"ubuntu[ -](\d+)\.(\d+)", re.IGNORECASE)

SSM_REFUSED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
"""What IAM answers when the credentials may not read SSM parameters: search names instead."""

ROOM_GB = 30
"""Root volume beyond the image's snapshot: the dataset, a run's checkpoints (densenet121 with
optimizer state is ~85 MB each), the run venv and pip's cache, with margin. gp3 bills per
GB-month, so 30 GB costs about $0.003 an hour."""

UNKNOWN_SNAPSHOT_GB = 100
"""The volume when an image names no snapshot size (never seen on EBS-backed DLAMIs)."""


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    root_device_name: str
    creation_date: str
    architecture: str = ARCHITECTURE
    snapshot_gb: int | None = None
    """Size of the root device's snapshot: the smallest root volume EC2 accepts."""

    @property
    def user(self) -> str:
        return login_user(self.name)


DEFAULT_USER = "ubuntu"
"""The login user when the image is unknown: most DLAMIs are Ubuntu."""


def login_user(image_name: str | None) -> str:
    """The default SSH user of a DLAMI: `ec2-user` on Amazon Linux, `ubuntu` otherwise."""
    return "ec2-user" if image_name and "amazon linux" in image_name.lower() else DEFAULT_USER


def preference(version: str, os_name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sort key: the newest PyTorch first, then the newest Ubuntu, Amazon Linux after Ubuntu."""
    ubuntu = UBUNTU.search(os_name)
    return (
        tuple(int(part) for part in version.split(".")),
        (1, int(ubuntu.group(1)), int(ubuntu.group(2))) if ubuntu else (0,),
    )


def to_image(raw: Mapping[str, Any]) -> Image:
    root = raw.get("RootDeviceName", "/dev/sda1")
    snapshot = next(
        (
            mapping.get("Ebs", {}).get("VolumeSize")
            for mapping in raw.get("BlockDeviceMappings", [])
            if mapping.get("DeviceName") == root
        ),
        None,
    )
    return Image(
        image_id=raw["ImageId"],
        name=raw.get("Name", raw["ImageId"]),
        root_device_name=root,
        creation_date=str(raw.get("CreationDate", "")),
        architecture=str(raw.get("Architecture", ARCHITECTURE)),
        snapshot_gb=int(snapshot) if snapshot else None,
    )


def usable(images: Iterable[Mapping[str, Any]]) -> list[Image]:
    """Available x86 PyTorch images, the preferred first (newest creation date among equals)."""
    found = []
    for raw in images:
        match = NAME.match(str(raw.get("Name", "")))
        if match and raw.get("State") == "available" and raw.get("Architecture") == ARCHITECTURE:
            key = preference(match["version"], match["os"])
            found.append((key, str(raw.get("CreationDate", "")), to_image(raw)))
    found.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [image for _, _, image in found]


def find_image(
    ec2: EC2Client, ssm: Any, region: str, ami_id: str | None = None, report: Report = quiet
) -> Image:
    """The pinned image if `ami_id` is given, else the newest PyTorch DLAMI: SSM, then names."""
    if ami_id:
        return pinned_image(ec2, region, ami_id)
    image = from_parameters(ec2, ssm, report)
    if image is not None:
        return image
    with aws_errors("look up Deep Learning AMIs"):
        answer = ec2.describe_images(
            Owners=IMAGE_OWNERS,
            Filters=[
                {"Name": "name", "Values": [NAME_PATTERN]},
                {"Name": "state", "Values": ["available"]},
                {"Name": "architecture", "Values": [ARCHITECTURE]},
            ],
        )
    images = usable(answer.get("Images", []))
    if not images:
        raise ProviderError(
            f"No Deep Learning AMI with PyTorch is available in {region}; "
            "pick another instance.region or pin an image with instance.ami_id."
        )
    return images[0]


def from_parameters(ec2: EC2Client, ssm: Any, report: Report) -> Image | None:
    """The preferred image AWS's SSM parameters point at; None when refused or none listed."""
    try:
        pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=SSM_PATH, Recursive=True)
        parameters = [parameter for page in pages for parameter in page.get("Parameters", [])]
    except ClientError as err:
        if error_code(err) not in SSM_REFUSED:
            raise user_error(err, "read the Deep Learning AMI parameters") from err
        report(f"Reading AWS's image parameters was refused ({error_code(err)}); searching names.")
        return None
    except BotoCoreError as err:
        raise user_error(err, "read the Deep Learning AMI parameters") from err
    ranked = sorted(
        (
            (preference(match["version"], match["os"]), str(parameter.get("Value", "")))
            for parameter in parameters
            if (match := SSM_TYPE.match(str(parameter.get("Name", ""))))
        ),
        reverse=True,
    )
    ids = list(dict.fromkeys(image_id for _, image_id in ranked if image_id.startswith("ami-")))
    if not ids:
        report("AWS's image parameters list no PyTorch Deep Learning AMI here; searching names.")
        return None
    try:
        described = ec2.describe_images(ImageIds=ids).get("Images", [])
    except ClientError as err:
        if not error_code(err).startswith("InvalidAMIID"):
            raise user_error(err, "look up Deep Learning AMIs") from err
        report(f"An image AWS's parameters name is gone ({error_code(err)}); searching names.")
        return None
    except BotoCoreError as err:
        raise user_error(err, "look up Deep Learning AMIs") from err
    by_id = {image.image_id: image for image in usable(described)}
    return next((by_id[image_id] for image_id in ids if image_id in by_id), None)


def pinned_image(ec2: EC2Client, region: str, ami_id: str) -> Image:
    """The pinned image, refused before launch when setup could not work on it."""
    try:
        answer = ec2.describe_images(ImageIds=[ami_id])
    except ClientError as err:
        if not error_code(err).startswith("InvalidAMIID"):
            raise user_error(err, f"look up image {ami_id}") from err
        return missing_pin(region, ami_id)
    available = [raw for raw in answer.get("Images", []) if raw.get("State") == "available"]
    if not available:
        return missing_pin(region, ami_id)
    image = to_image(available[0])
    if image.architecture != ARCHITECTURE:
        raise ConfigError(
            f"instance.ami_id = {ami_id!r} is an {image.architecture} image and the GPU instance "
            f"types are {ARCHITECTURE}; pin an {ARCHITECTURE} Deep Learning AMI or remove it."
        )
    if "pytorch" not in image.name.lower():
        raise ConfigError(
            f"instance.ami_id = {ami_id!r} ({image.name}) has no PyTorch and setup cannot "
            "install it there; pin a PyTorch Deep Learning AMI or remove instance.ami_id."
        )
    return image


def missing_pin(region: str, ami_id: str) -> NoReturn:
    raise ConfigError(
        f"instance.ami_id = {ami_id!r} is not an available image in {region}; "
        "fix it or remove it to use the newest Deep Learning AMI."
    )


def root_volume_gb(image: Image, override: int | None) -> int:
    """The root volume: the snapshot plus ROOM_GB, or the config's size if not below it."""
    if override is None:
        return image.snapshot_gb + ROOM_GB if image.snapshot_gb else UNKNOWN_SNAPSHOT_GB
    if image.snapshot_gb and override < image.snapshot_gb:
        raise ConfigError(
            f"instance.root_volume_gb = {override} is below the {image.snapshot_gb} GB snapshot "
            f"of {image.name}; raise it to at least {image.snapshot_gb} or remove it to size the "
            "volume from the image."
        )
    return override
