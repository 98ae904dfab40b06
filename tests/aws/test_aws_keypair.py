"""Key pairs against moto: both halves or a new pair, never an overwritten or reused key."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from aws_seed import Reports

from pacerid_tui.core.cloud.aws_keypair import ensure_key_pair, key_path_for


def key_names(ec2: Any) -> set[str]:
    return {pair["KeyName"] for pair in ec2.describe_key_pairs()["KeyPairs"]}


def test_missing_pair_is_created_with_a_0400_key(
    make_provider: Any, ec2: Any, key_dir: Path, reports: Reports
) -> None:
    provider = make_provider()
    pair = ensure_key_pair(provider.clients.ec2, provider.config, reports)
    assert pair.name == "pacerid-ml-key"
    assert pair.path == key_dir / "pacerid-ml-key.pem"
    assert stat.S_IMODE(pair.path.stat().st_mode) == 0o400
    assert "PRIVATE KEY-----" in pair.path.read_text()
    assert key_names(ec2) == {"pacerid-ml-key"}
    tags = ec2.describe_key_pairs()["KeyPairs"][0]["Tags"]
    assert {"Key": "pacerid:managed", "Value": "true"} in tags
    assert reports == [f"Created key pair pacerid-ml-key; private key saved to {pair.path}."]
    assert not any("PRIVATE KEY" in line for line in reports)


def test_existing_pair_and_file_are_reused_untouched(
    make_provider: Any, ec2: Any, reports: Reports
) -> None:
    provider = make_provider()
    first = ensure_key_pair(provider.clients.ec2, provider.config, reports)
    before = first.path.read_bytes()
    again = ensure_key_pair(provider.clients.ec2, provider.config, reports)
    assert again == first
    assert first.path.read_bytes() == before
    assert key_names(ec2) == {"pacerid-ml-key"}


def test_lost_local_key_means_a_new_pair_under_a_new_name(
    make_provider: Any, ec2: Any, key_dir: Path, reports: Reports
) -> None:
    provider = make_provider()
    first = ensure_key_pair(provider.clients.ec2, provider.config, reports)
    first.path.chmod(0o600)
    first.path.unlink()
    replacement = ensure_key_pair(provider.clients.ec2, provider.config, reports)
    assert replacement.name.startswith("pacerid-ml-key-")
    assert replacement.path == key_dir / f"{replacement.name}.pem"
    assert replacement.path == key_path_for(provider.config, replacement.name)
    assert stat.S_IMODE(replacement.path.stat().st_mode) == 0o400
    assert not first.path.exists()
    assert key_names(ec2) == {"pacerid-ml-key", replacement.name}
    assert "is not here; creating key pair" in reports[1]
    # The next launch finds the replacement instead of making yet another pair.
    assert ensure_key_pair(provider.clients.ec2, provider.config, reports) == replacement
    assert len(key_names(ec2)) == 2


def test_existing_file_without_its_pair_is_never_overwritten(
    make_provider: Any, ec2: Any, key_dir: Path, reports: Reports
) -> None:
    provider = make_provider()
    stale = key_dir / "pacerid-ml-key.pem"
    stale.write_text("someone else's key\n")
    pair = ensure_key_pair(provider.clients.ec2, provider.config, reports)
    assert pair.name != "pacerid-ml-key"
    assert stale.read_text() == "someone else's key\n"
    assert key_names(ec2) == {pair.name}
    assert "instead of overwriting the file" in reports[0]
