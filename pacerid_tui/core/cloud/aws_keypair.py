"""The SSH key pair: an EC2 key pair whose private half lives only on this machine.

A key pair is usable only when both halves exist: the pair in AWS and the private key file here.
A pair missing from a region whose private key is here is imported there (its public half):
one key serves every region a run may be placed in. A pair in AWS whose key is lost, or a file
that is not a private key, is never reused or overwritten; a new pair is created under a new
name (`<key_name>-<UTC timestamp>`, its file beside the configured one), so a lost key can
never turn into a silent "Permission denied" on a machine we are paying for. The private key is
written atomically with mode 0400 and never logged or reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_keyprint import public_key
from pacerid_tui.core.cloud.aws_session import aws_errors
from pacerid_tui.core.cloud.base import MANAGED_TAG, Report
from pacerid_tui.core.kernel.atomic import create_exclusive
from pacerid_tui.core.kernel.errors import ProviderError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

KEY_TYPE: Final = "ed25519"
"""Short keys that OpenSSH and asyncssh both read; AWS writes them in OpenSSH format."""

KEY_FILE_MODE = 0o400


@dataclass(frozen=True)
class KeyPair:
    name: str
    path: Path


def key_path_for(config: InstanceConfig, key_name: str) -> Path:
    """Where the private key of `key_name` lives: the configured path, or a file beside it."""
    configured = Path(config.key_path).expanduser()
    if key_name == config.key_name:
        return configured
    return configured.with_name(f"{key_name}{configured.suffix}")


def candidates(config: InstanceConfig) -> list[KeyPair]:
    """The configured pair first, then pairs made after a lost key, newest first."""
    configured = Path(config.key_path).expanduser()
    newer = sorted(
        configured.parent.glob(f"{config.key_name}-*{configured.suffix}"),
        reverse=True,
    )
    pairs = [KeyPair(config.key_name, configured)]
    for path in newer:
        name = path.name.removesuffix(configured.suffix) if configured.suffix else path.name
        pairs.append(KeyPair(name, path))
    return pairs


def ensure_key_pair(ec2: EC2Client, config: InstanceConfig, report: Report) -> KeyPair:
    """A key pair that exists in AWS and whose private key file is here; created if need be."""
    pairs = candidates(config)
    with aws_errors("look up key pairs"):
        answer = ec2.describe_key_pairs(
            Filters=[{"Name": "key-name", "Values": [pair.name for pair in pairs]}]
        )
    in_aws = {entry.get("KeyName") for entry in answer.get("KeyPairs", [])}
    for pair in pairs:
        if pair.name in in_aws and pair.path.exists():
            return pair
    for pair in pairs:
        public = readable_public_key(pair.path)
        if public is not None and pair.name not in in_aws:
            return import_key_pair(ec2, pair, public, report)
    configured = pairs[0]
    if configured.name not in in_aws and not configured.path.exists():
        return create_key_pair(ec2, configured, report)
    name = f"{config.key_name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    replacement = KeyPair(name, key_path_for(config, name))
    if configured.name in in_aws:
        report(
            f"Key pair {configured.name} exists in AWS but its private key {configured.path} "
            f"is not here; creating key pair {name} instead."
        )
    else:
        report(
            f"{configured.path} exists but key pair {configured.name} is gone from AWS; "
            f"creating key pair {name} instead of overwriting the file."
        )
    return create_key_pair(ec2, replacement, report)


def readable_public_key(path: Path) -> bytes | None:
    """The public half of a private key file here; None when there is none or it is not one."""
    try:
        return public_key(path.read_bytes())
    except (OSError, ValueError):
        return None


def import_key_pair(ec2: EC2Client, pair: KeyPair, public: bytes, report: Report) -> KeyPair:
    """The pair's public half into this region (one private key serves every region a run may
    be placed in: README, "Choosing where"); the private key never leaves this machine."""
    with aws_errors(f"import key pair {pair.name}"):
        ec2.import_key_pair(
            KeyName=pair.name,
            PublicKeyMaterial=public,
            TagSpecifications=[
                {"ResourceType": "key-pair", "Tags": [{"Key": MANAGED_TAG, "Value": "true"}]}
            ],
        )
    region = ec2.meta.region_name
    report(f"Imported the public half of {pair.path} as key pair {pair.name} in {region}.")
    return pair


def create_key_pair(ec2: EC2Client, pair: KeyPair, report: Report) -> KeyPair:
    with aws_errors(f"create key pair {pair.name}"):
        created = ec2.create_key_pair(
            KeyName=pair.name,
            KeyType=KEY_TYPE,
            KeyFormat="pem",
            TagSpecifications=[
                {"ResourceType": "key-pair", "Tags": [{"Key": MANAGED_TAG, "Value": "true"}]}
            ],
        )
    try:
        create_exclusive(pair.path, created["KeyMaterial"].encode(), KEY_FILE_MODE)
    except OSError as err:
        with aws_errors(f"delete key pair {pair.name}"):
            ec2.delete_key_pair(KeyName=pair.name)
        raise ProviderError(
            f"Cannot write the private key to {pair.path} ({err.strerror or err}); "
            "fix the folder's permissions or set instance.key_path."
        ) from err
    report(f"Created key pair {pair.name}; private key saved to {pair.path}.")
    return pair
