"""What the AWS tests share: moto's Deep Learning AMIs, a recording Report, EC2 error answers.

A plainly named module rather than conftest, so test files import it without depending on which
conftest pytest loaded last.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

REGION = "us-east-1"
CALLER_IP = "203.0.113.7"
MOVED_IP = "198.51.100.23"
"""This machine's address after it moved to another network mid-run."""
DLAMI_OWNER = "898082745236"


def dlami(
    ami_id: str, name: str, created: str, state: str = "available", arch: str = "x86_64"
) -> dict[str, Any]:
    return {
        "ami_id": ami_id,
        "name": name,
        "description": name,
        "owner_id": DLAMI_OWNER,
        "public": True,
        "virtualization_type": "hvm",
        "architecture": arch,
        "state": state,
        "platform": None,
        "image_type": "machine",
        "hypervisor": "xen",
        "root_device_name": "/dev/sda1",
        "root_device_type": "ebs",
        "sriov": "simple",
        "creation_date": created,
    }


PYTORCH_2204 = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch 2.{v} (Ubuntu 22.04) {d}"
PYTORCH_2404 = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch 2.{v} (Ubuntu 24.04) {d}"
BASE_2204 = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) {d}"
PYTORCH_AL2023 = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch 2.{v} (Amazon Linux 2023) {d}"
PYTORCH_ARM64 = "Deep Learning ARM64 AMI OSS Nvidia Driver GPU PyTorch 2.{v} (Ubuntu 24.04) {d}"

AMIS = [
    dlami("ami-0a1b2c3d4e5f60001", PYTORCH_2204.format(v=3, d="20240101"), "2024-01-01T10:00:00Z"),
    dlami("ami-0a1b2c3d4e5f60002", PYTORCH_2204.format(v=5, d="20240612"), "2024-06-12T10:00:00Z"),
    dlami("ami-0a1b2c3d4e5f60003", PYTORCH_2204.format(v=3, d="20240301"), "2024-03-01T10:00:00Z"),
    dlami(
        "ami-0a1b2c3d4e5f60004",
        PYTORCH_2204.format(v=6, d="20240901"),
        "2024-09-01T10:00:00Z",
        state="pending",
    ),
    dlami("ami-0a1b2c3d4e5f60005", PYTORCH_2404.format(v=7, d="20250520"), "2025-05-20T10:00:00Z"),
    dlami("ami-0a1b2c3d4e5f60006", PYTORCH_2404.format(v=6, d="20250101"), "2025-01-01T10:00:00Z"),
    dlami("ami-0a1b2c3d4e5f60007", BASE_2204.format(d="20250301"), "2025-03-01T10:00:00Z"),
    dlami("ami-0a1b2c3d4e5f60008", "ubuntu/images/hvm-ssd/ubuntu-jammy", "2025-06-01T10:00:00Z"),
    # "2.9" sorts after "2.10" as text: the version must be compared as numbers.
    dlami("ami-0a1b2c3d4e5f60009", PYTORCH_2404.format(v=9, d="20250901"), "2025-09-01T10:00:00Z"),
    dlami("ami-0a1b2c3d4e5f60010", PYTORCH_2404.format(v=10, d="20251015"), "2025-10-15T10:00:00Z"),
    # Same PyTorch on an older Ubuntu, published later: the newer Ubuntu still wins.
    dlami("ami-0a1b2c3d4e5f60011", PYTORCH_2204.format(v=10, d="20251020"), "2025-10-20T10:00:00Z"),
    dlami(
        "ami-0a1b2c3d4e5f60012",
        PYTORCH_ARM64.format(v=11, d="20251101"),
        "2025-11-01T10:00:00Z",
        arch="arm64",
    ),
    dlami(
        "ami-0a1b2c3d4e5f60013", PYTORCH_AL2023.format(v=6, d="20250215"), "2025-02-15T10:00:00Z"
    ),
]
NEWEST_PYTORCH_2204 = "ami-0a1b2c3d4e5f60011"
NEWEST_PYTORCH_2404 = "ami-0a1b2c3d4e5f60010"
NEWEST_PYTORCH = NEWEST_PYTORCH_2404
"""What an unpinned launch boots: PyTorch 2.10 on Ubuntu 24.04."""
BASE_AMI = "ami-0a1b2c3d4e5f60007"
ARM64_AMI = "ami-0a1b2c3d4e5f60012"
AL2023_AMI = "ami-0a1b2c3d4e5f60013"
MOTO_SNAPSHOT_GB = 15
"""moto gives every image's root snapshot 15 GB (moto/ec2/models/amis.py)."""


class Reports(list[str]):
    """A Report that keeps every sentence."""

    def __call__(self, message: str) -> None:
        self.append(message)


ERROR_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>
<RequestID>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestID></Response>"""


class Body:
    """The raw body botocore reads an HTTP answer from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def error_response(url: str, status: int, code: str, message: str) -> AWSResponse:
    """EC2's own error answer, for a botocore `before-send` hook to return instead of sending."""
    body = ERROR_XML.format(code=code, message=message).encode()
    return AWSResponse(url, status, HTTPHeaders(), Body(body))


INSTANCES_XML = """<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>8f7724cf-496f-496e-8fe3-example</requestId><reservationSet>{reservation}</reservationSet>
</DescribeInstancesResponse>"""

RESERVATION_XML = """<item><reservationId>r-0123456789abcdef0</reservationId>
<ownerId>123456789012</ownerId><instancesSet><item><instanceId>{instance_id}</instanceId>
<instanceType>g4dn.xlarge</instanceType><instanceState><code>0</code><name>{state}</name>
</instanceState><stateReason><code>{reason}</code><message>{reason}</message></stateReason>
<instanceLifecycle>spot</instanceLifecycle></item></instancesSet></item>"""


def instances_response(url: str, instance_id: str | None, state: str, reason: str) -> AWSResponse:
    """DescribeInstances as EC2 answers it: one instance in `state`, or none at all."""
    reservation = (
        RESERVATION_XML.format(instance_id=instance_id, state=state, reason=reason)
        if instance_id
        else ""
    )
    body = INSTANCES_XML.format(reservation=reservation).encode()
    return AWSResponse(url, 200, HTTPHeaders(), Body(body))
