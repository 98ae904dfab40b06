"""Connecting: host keys pinned per instance, a changed key refused, a late host waited for."""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import ConfigError, HostError, HostKeyMismatch
from pacerid_tui.core.kernel.models import Instance
from pacerid_tui.core.remote import ssh
from tests.conftest import REPO, closed_port

RELAY = REPO / "tests" / "proxy_relay.py"


def target(instance: Instance) -> ssh.Target:
    return ssh.Target.of(instance, paths.known_hosts_file())


async def test_first_connect_pins_the_key_and_later_connects_check_it(host: Instance) -> None:
    conn = await ssh.connect(target(host))
    result = await ssh.run(conn, "echo hello; echo oops >&2")
    conn.close()
    assert (result.exit_status, result.stdout, result.stderr) == (0, "hello\n", "oops\n")
    pinned = paths.known_hosts_file().read_text().split()
    assert pinned[0] == host.instance_id and pinned[1] == "ssh-ed25519"
    again = await ssh.connect(target(host))
    again.close()
    assert paths.known_hosts_file().read_text().count(host.instance_id) == 1


async def test_a_changed_host_key_is_refused(host: Instance) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    paths.known_hosts_file().write_text(f"{host.instance_id} {other[0]} {other[1]}\n")
    with pytest.raises(HostKeyMismatch, match="changed since first connect"):
        await ssh.connect(target(host), deadline_s=5)


async def test_a_failing_command_raises_with_its_stderr(host: Instance) -> None:
    conn = await ssh.connect(target(host))
    with pytest.raises(HostError, match="no-such-thing"):
        await ssh.run(conn, "ls /no-such-thing")
    conn.close()


async def test_stdin_reaches_the_command(host: Instance) -> None:
    conn = await ssh.connect(target(host))
    result = await ssh.run(conn, "cat", input="secret-free data\n")
    conn.close()
    assert result.stdout == "secret-free data\n"


async def test_a_host_that_comes_up_late_is_waited_for(local_instance: Instance) -> None:
    """Connections to a closed port are retried until a server answers there."""
    with closed_port() as sock:
        late = dataclasses.replace(local_instance, port=sock.getsockname()[1])
        messages: list[str] = []

        async def open_late() -> asyncio.AbstractServer:
            await asyncio.sleep(1.5)

            # Forward the late port to the real server, as a booting host's sshd would appear.
            async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", local_instance.port
                )

                async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                    dst.close()

                await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

            return await asyncio.start_server(pipe, sock=sock)

        opener = asyncio.create_task(open_late())
        conn = await ssh.connect(
            ssh.Target.of(late, paths.known_hosts_file()), deadline_s=30, report=messages.append
        )
        result = await ssh.run(conn, "echo up")
        conn.close()
        (await opener).close()
        assert result.stdout == "up\n"
        assert any("connection refused" in message for message in messages)


async def test_a_dead_host_gives_up_with_one_sentence(local_instance: Instance) -> None:
    with closed_port() as sock:
        dead = dataclasses.replace(local_instance, port=sock.getsockname()[1])
        with pytest.raises(HostError, match=r"Cannot reach .*\(connection refused\)"):
            await ssh.connect(ssh.Target.of(dead, paths.known_hosts_file()), deadline_s=1.5)


async def test_system_ssh_command_line_works_non_interactively(host: Instance) -> None:
    conn = await ssh.connect(target(host))  # pins the key, as upload does before `ssh`
    conn.close()
    argv = target(host).ssh_argv("echo", "via-openssh-client")
    assert argv[:3] == ["ssh", "-i", host.key_path]
    assert f"HostKeyAlias={host.instance_id}" in argv
    assert "StrictHostKeyChecking=yes" in argv
    assert f"UserKnownHostsFile={paths.known_hosts_file()}" in argv
    assert argv[-3] == f"{host.user}@127.0.0.1"
    done = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", *argv[1:]], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "via-openssh-client"


async def test_boot_console_fingerprints_are_checked_before_the_first_pin(host: Instance) -> None:
    wrong = dataclasses.replace(target(host), fingerprints=("SHA256:not-this-key",))
    with pytest.raises(HostKeyMismatch, match="did not print"):
        await ssh.connect(wrong, deadline_s=5)
    assert not ssh.is_pinned(target(host))
    probe = await ssh.connect_once(target(host))
    key = probe.get_server_host_key()
    probe.close()
    assert key is not None
    paths.known_hosts_file().unlink()
    right = dataclasses.replace(target(host), fingerprints=(key.get_fingerprint("sha256"),))
    conn = await ssh.connect(right)
    conn.close()
    assert ssh.is_pinned(target(host))


def relayed(host: Instance, record: Path) -> ssh.Target:
    """The host at an address nothing listens on: reachable only through the proxy command."""
    relay = shlex.join([sys.executable, str(RELAY), str(host.port), str(record)])
    return dataclasses.replace(
        target(host), host="127.0.0.2", proxy_command=f"{relay} %h %p %r 100%%"
    )


async def test_connections_go_through_the_proxy_command(host: Instance, tmp_path: Path) -> None:
    record = tmp_path / "asked"
    conn = await ssh.connect(relayed(host, record), deadline_s=5)
    result = await ssh.run(conn, "echo proxied")
    conn.close()
    assert result.stdout == "proxied\n"
    assert record.read_text() == f"127.0.0.2 {host.port} {host.user} 100%\n"
    assert "relaying 127.0.0.2" in paths.proxy_log_file().read_text()  # not on the terminal


async def test_system_ssh_expands_the_proxy_command_the_same_way(
    host: Instance, tmp_path: Path
) -> None:
    record = tmp_path / "asked"
    proxied = relayed(host, record)
    (await ssh.connect(proxied, deadline_s=5)).close()  # pins the key
    argv = proxied.ssh_argv("echo", "via-proxy")
    assert f"ProxyCommand={proxied.proxy_command}" in argv
    assert argv[-3:] == [f"{host.user}@127.0.0.2", "echo", "via-proxy"]
    done = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", *argv[1:]], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "via-proxy"
    first, second = record.read_text().splitlines()
    assert first == second == f"127.0.0.2 {host.port} {host.user} 100%"


@pytest.mark.parametrize("command", ["ssh -W %h:%p %n", "nc %h 100%"])
def test_unknown_proxy_tokens_are_config_errors(command: str, tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(f"instance:\n  ssh_proxy_command: {command!r}\n")
    with pytest.raises(ConfigError, match=r"instance\.ssh_proxy_command = .* is not a token"):
        load_config(path)
