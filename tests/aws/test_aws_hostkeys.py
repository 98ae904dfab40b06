"""The first SSH connect to an EC2 instance verifies its host key against the boot console.

The console comes from the loopback stand-in (aws_standin.py), which prints cloud-init's
fingerprint block only when `Latest=true` is asked and only from the third read, as a real
console fills in minutes after `running`; everything else is moto. The instance is played by
the real OpenSSH sshd fixture, reached through instance.ssh_proxy_command (tests/proxy_relay.py)
since moto's addresses are made up, and it logs in with the key pair the provider created.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
import yaml
from aws_standin import AwsStandIn

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import HostKeyMismatch
from pacerid_tui.core.kernel.models import Instance, Run
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.steps.lifecycle import Lifecycle
from tests.conftest import REPO
from tests.heard import Heard


def host_key(sshd: Instance) -> asyncssh.SSHKey:
    assert sshd.key_path is not None
    return asyncssh.read_public_key(Path(sshd.key_path).parent / "host_key.pub")


@pytest.fixture
def config_path(
    aws_config: Path,
    aws_standin: AwsStandIn,
    sshd: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """configs/base.yaml on the stand-in; its instances are the sshd, through the relay."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_standin.url)
    config = yaml.safe_load(aws_config.read_text())
    relay = [sys.executable, str(REPO / "tests" / "proxy_relay.py"), str(sshd.port)]
    config["instance"].update(
        ssh_user=sshd.user,
        ssh_proxy_command=f"{shlex.join([*relay, str(tmp_path / 'asked')])} %h %p %r",
        host_key_wait_s=60,
    )
    path = tmp_path / "aws-hostkeys.yaml"
    path.write_text(yaml.safe_dump(config))
    assert sshd.key_path is not None
    authorized = Path(sshd.key_path).parent / "authorized_keys"  # the fixture's own
    before = authorized.read_text()
    yield path
    authorized.write_text(before)


async def launched(lifecycle: Lifecycle, config_path: Path, sshd: Instance) -> Run:
    """A launched run whose key pair the sshd accepts, as EC2 installs it at boot."""
    run = await lifecycle.launch(lifecycle.create_run(config_path, load_config(config_path)))
    assert run.instance is not None and run.instance.key_path is not None
    public = asyncssh.read_private_key(run.instance.key_path).export_public_key().decode()
    assert sshd.key_path is not None
    with open(Path(sshd.key_path).parent / "authorized_keys", "a") as keys:
        keys.write(public)
    return run


def pinned_key(alias: str) -> str | None:
    pins = paths.known_hosts_file()
    for line in pins.read_text().splitlines() if pins.exists() else []:
        name, kind, body = line.split()[:3]
        if name == alias:
            return f"{kind} {body}"
    return None


async def connected(
    config_path: Path, sshd: Instance
) -> tuple[Heard, Lifecycle, Run, str, asyncssh.SSHClientConnection]:
    """A run launched onto the sshd "instance" (its id) and connected to (the host key checked
    then), with what its lifecycle heard; the lifecycle is closed if the connection fails."""
    heard = Heard()
    lifecycle = Lifecycle(listener=heard)
    run = await launched(lifecycle, config_path, sshd)
    assert run.instance is not None
    try:
        return heard, lifecycle, run, run.instance.instance_id, await lifecycle.connection(run)
    except BaseException:
        lifecycle.close()
        raise


async def test_fingerprints_printed_late_still_end_in_a_verified_pin(
    config_path: Path, aws_standin: AwsStandIn, sshd: Instance, tmp_path: Path
) -> None:
    key = host_key(sshd)
    aws_standin.fingerprints = [key.get_fingerprint("sha256")]
    heard, lifecycle, run, instance_id, conn = await connected(config_path, sshd)
    assert (await ssh.run(conn, "echo verified")).stdout.strip() == "verified"
    lifecycle.close()
    reads = [call for call in aws_standin.console_calls if call[0] == instance_id]
    assert [(latest, shown) for _, latest, shown in reads] == [
        (True, False),
        (True, False),
        (True, True),
    ]
    assert pinned_key(instance_id) == " ".join(key.export_public_key().decode().split()[:2])
    assert f"The host key of {instance_id} matches its boot console; pinned." in heard.reports
    assert heard.alerts == []
    assert (tmp_path / "asked").read_text().split()[1:] == ["22", sshd.user]
    await lifecycle.terminate(run)
    assert pinned_key(instance_id) is None


async def test_a_key_the_console_did_not_print_is_refused_and_never_pinned(
    config_path: Path, aws_standin: AwsStandIn, sshd: Instance
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    aws_standin.fingerprints = [other.get_fingerprint("sha256")]
    lifecycle = Lifecycle(listener=Heard())
    run = await launched(lifecycle, config_path, sshd)
    assert run.instance is not None
    for _ in range(2):  # refused every time: the instance is never trusted
        with pytest.raises(HostKeyMismatch) as refused:
            await lifecycle.connection(run)
        message = str(refused.value)
        assert message.endswith(
            "did not print: someone may be intercepting the connection; terminate it."
        )
        assert "\n" not in message and message.count(". ") == 0
        assert pinned_key(run.instance.instance_id) is None
    await lifecycle.terminate(run)


async def test_no_fingerprints_in_time_is_said_before_trust_on_first_use(
    config_path: Path, aws_standin: AwsStandIn, sshd: Instance
) -> None:
    raw = yaml.safe_load(config_path.read_text())
    raw["instance"]["host_key_wait_s"] = 3  # room for a second read under load
    config_path.write_text(yaml.safe_dump(raw))
    heard, lifecycle, run, instance_id, _conn = await connected(config_path, sshd)
    lifecycle.close()
    assert heard.alerts == [
        f"The boot console of {instance_id} printed no SSH host key fingerprints within 3 s, "
        "so its host key cannot be verified; trusting the key it shows on first connect."
    ]
    reads = [call for call in aws_standin.console_calls if call[0] == instance_id]
    assert len(reads) >= 2 and all(latest for _, latest, _ in reads)
    assert pinned_key(instance_id) is not None  # trusted on first use, only after saying so
    await lifecycle.terminate(run)
