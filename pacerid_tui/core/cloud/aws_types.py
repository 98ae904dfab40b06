"""Which instance types a run may launch: those the PyTorch images support, on Nitro.

Two facts decide it, each taken from where AWS keeps it:
- The PyTorch Deep Learning AMIs a launch picks (x86_64, aws_ami.py) list the instance
  families they support in their release notes (`supported_ec2_instances`; for "Deep Learning
  OSS Nvidia Driver AMI GPU PyTorch 2.9 (Ubuntu 24.04)", 2026 releases: G4dn, G5, G6, Gr6, G6e,
  P4, P4de, P5, P5e, P5en, P6-B200). A type outside the list may boot without a working driver.
- EC2's DescribeInstanceTypes says each type's `Hypervisor`: `nitro` or `xen` (absent for bare
  metal, which runs on the Nitro System). The host's spot-notice poller recognises EC2 by the
  DMI vendor Nitro reports ("Amazon EC2"; Xen types such as p3 and g3 say "Xen"), and
  GetConsoleOutput with `Latest=True`, how host keys are verified, works on Nitro types only.
  So the hypervisor is asked of EC2 for each type rather than assumed from its family.

`doctor`'s `instance_type` check and every launch refuse the rest, naming the families that work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pacerid_tui.core.cloud.aws_quota import family
from pacerid_tui.core.cloud.aws_session import aws_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

DLAMI_FAMILIES = (
    "g4dn",
    "g5",
    "g6",
    "gr6",
    "g6e",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "p6-b200",
)
"""The x86_64 PyTorch DLAMIs' supported families, as the release notes list them ("P4" there is
the p4d family, p4d.24xlarge). Update it with the notes of the image the launch picks."""

SUPPORTED = f"supported families: {', '.join(f'{name}.*' for name in DLAMI_FAMILIES)}"


def described(ec2: EC2Client, instance_types: Iterable[str]) -> dict[str, Mapping[str, Any]]:
    """DescribeInstanceTypes' entry by type; a type EC2 does not offer here is absent.

    EC2 refuses the whole call when one type is unknown (InvalidInstanceType), so then each is
    asked alone: a launch lists one to a few types."""
    wanted = sorted(set(instance_types))
    with aws_errors("describe instance types"):
        entries = _ask(ec2, wanted)
        if entries is None:
            entries = [entry for kind in wanted for entry in _ask(ec2, [kind]) or []]
    return {str(entry["InstanceType"]): entry for entry in entries}


def _ask(ec2: EC2Client, instance_types: list[str]) -> list[Mapping[str, Any]] | None:
    """The entries of these types; None when EC2 does not know one of them."""
    try:
        answer = ec2.describe_instance_types(InstanceTypes=instance_types)  # type: ignore[arg-type]
    except ClientError as err:
        if error_code(err) == "InvalidInstanceType":
            return None
        raise
    return list(answer.get("InstanceTypes", []))


def why_not(instance_type: str, entry: Mapping[str, Any] | None, region: str) -> str | None:
    """Why this type may not be launched, or None when it may."""
    if entry is None:
        return f"EC2 does not offer {instance_type} in {region}"
    reasons = []
    if entry.get("Hypervisor") == "xen":
        reasons.append(
            "runs on the Xen hypervisor, not Nitro (no spot notice on the host, no verified "
            "host keys)"
        )
    if family(instance_type) not in DLAMI_FAMILIES:
        reasons.append("is not on the PyTorch Deep Learning AMI's list")
    return f"{instance_type} {' and '.join(reasons)}" if reasons else None


def refusals(ec2: EC2Client, instance_types: Iterable[str], region: str) -> list[str]:
    """One phrase per type that may not be launched, in the order given; empty when all may."""
    kinds = list(dict.fromkeys(instance_types))
    entries = described(ec2, kinds)
    return [why for kind in kinds if (why := why_not(kind, entries.get(kind), region))]


FIX = (
    f"Set instance.instance_type and instance.fallback_instance_types to types of the {SUPPORTED}."
)
