"""SSH to a host: connect with a pinned host key, run commands, stream their output.

One code path for the embedded server and a real OpenSSH host. The host key is pinned in the
tool's own known_hosts file under the instance id (`HostKeyAlias`), not the address: EC2 reuses
public IPs, so a key pinned to an address would either block a new instance or, worse, teach
users to delete pins. A changed key for the same instance is refused.

An optional ProxyCommand (a bastion, a host without a public address) follows OpenSSH: %h, %p,
%r and %% are expanded and the command runs through the shell with `exec`, so the asyncssh
connections and the system `ssh` command line reach the host the same way.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pacerid_tui import paths
from pacerid_tui.core.cloud.base import Report, quiet
from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import HostError, HostKeyMismatch, InstanceGone
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Instance

KEEPALIVE_S = 15
"""Seconds between keepalives; a dead spot host is noticed within a minute."""
KEEPALIVE_MAX = 4
CONNECT_TIMEOUT_S = 10
"""Per attempt; a booting EC2 host often drops the first SYNs."""
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
"""AES-GCM first: hardware-accelerated, and measured ~1.6× faster than asyncssh's default
chacha20 for uploads here (docs/benchmarks.md); the rest keep older servers working."""
BOOT_DEADLINE_S = 300.0
"""How long to wait for a freshly launched host's sshd before giving up."""
GONE_CHECK_S = 10.0
"""While waiting for sshd, how often the provider is asked whether the instance still exists:
a host that ended (its own idle power-off, a spot reclaim) is said at once, not after the
boot deadline of refusals."""
PROXY_TOKEN = re.compile(r"%([hpr%])")
"""The ProxyCommand tokens we expand (config.py refuses any other)."""


@dataclass(frozen=True)
class Target:
    """Everything needed to reach one host."""

    host: str
    port: int
    user: str
    key_path: str
    alias: str
    """The instance id: the name the host key is pinned under."""
    known_hosts: Path
    fingerprints: tuple[str, ...] = ()
    """SHA256 fingerprints the host printed at boot (EC2 console); checked before first pin."""
    proxy_command: str | None = None
    """OpenSSH ProxyCommand template (tokens unexpanded); None: a direct TCP connection."""

    @classmethod
    def of(
        cls,
        instance: Instance,
        known_hosts: Path,
        fingerprints: tuple[str, ...] = (),
        proxy_command: str | None = None,
    ) -> Target:
        if not instance.host or not instance.key_path:
            raise HostError(
                f"Instance {instance.instance_id} has no address yet; wait for it to be running."
            )
        return cls(
            instance.host,
            instance.port,
            instance.user,
            instance.key_path,
            instance.instance_id,
            known_hosts,
            fingerprints,
            proxy_command,
        )

    def proxy_argv(self) -> list[str] | None:
        """The proxy command as OpenSSH runs it: tokens expanded, `exec` in the shell."""
        if self.proxy_command is None:
            return None
        values = {"h": self.host, "p": str(self.port), "r": self.user}

        def expand(token: re.Match[str]) -> str:
            key = token.group(1)
            return "%" if key == "%" else shlex.quote(values[key])

        command = PROXY_TOKEN.sub(expand, self.proxy_command)
        log = shlex.quote(str(paths.proxy_log_file()))
        # asyncssh reads the command's stderr as SSH data and drops the connection when that pipe
        # closes: stderr goes to a log (never onto the dashboard) and fd 3 keeps the pipe open.
        return ["/bin/sh", "-c", f"exec 3>&2 2>>{log}; exec {command}"]

    def ssh_argv(self, *command: str) -> list[str]:
        """The system `ssh` command line for this host (interactive or one command)."""
        argv = [
            "ssh",
            "-i",
            str(Path(self.key_path).expanduser()),
            "-p",
            str(self.port),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            f"HostKeyAlias={self.alias}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"ServerAliveInterval={KEEPALIVE_S}",
        ]
        if self.proxy_command is not None:  # ssh expands the same tokens itself
            argv += ["-o", f"ProxyCommand={self.proxy_command}"]
        return [*argv, f"{self.user}@{self.host}", *command]


@dataclass(frozen=True)
class Result:
    exit_status: int
    stdout: str
    stderr: str


def is_pinned(target: Target) -> bool:
    try:
        lines = target.known_hosts.read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(line.split(" ", 1)[0] == target.alias for line in lines)


def _pin(target: Target, key: asyncssh.SSHKey) -> None:
    """Record the host key under the instance id (OpenSSH known_hosts format)."""
    kind, body = key.export_public_key("openssh").decode().split()[:2]
    line = f"{target.alias} {kind} {body}"
    try:
        existing = target.known_hosts.read_text()
    except FileNotFoundError:
        existing = ""
    atomic.write_text(target.known_hosts, existing + line + "\n")


def forget(alias: str, known_hosts: Path) -> None:
    """Drop an instance's pin once it is terminated (ids never come back)."""
    try:
        lines = known_hosts.read_text().splitlines()
    except FileNotFoundError:
        return
    kept = [line for line in lines if line.split(" ", 1)[0] != alias]
    atomic.write_text(known_hosts, "".join(line + "\n" for line in kept))


async def connect_once(target: Target, report: Report = quiet) -> asyncssh.SSHClientConnection:
    """One attempt: the pinned key if we have one; else the key is pinned, but only when it is
    one of `target.fingerprints` (those its boot console printed) or, with none, on first use."""
    pinned = is_pinned(target)
    try:
        conn = await asyncssh.connect(
            target.host,
            target.port,
            username=target.user,
            client_keys=[str(Path(target.key_path).expanduser())],
            known_hosts=str(target.known_hosts) if pinned else None,
            host_key_alias=target.alias,
            keepalive_interval=KEEPALIVE_S,
            keepalive_count_max=KEEPALIVE_MAX,
            connect_timeout=CONNECT_TIMEOUT_S,
            proxy_command=target.proxy_argv(),
            agent_path=None,
            config=[],
            encryption_algs=list(CIPHERS),
        )
    except asyncssh.HostKeyNotVerifiable:
        raise HostKeyMismatch(
            f"The host key of {target.alias} ({target.host}:{target.port}) changed since first "
            "connect: someone may be intercepting the connection. Terminate the instance if in "
            f"doubt; if you know why it changed, remove its line from {target.known_hosts}."
        ) from None
    if not pinned:
        key = conn.get_server_host_key()
        if key is not None:
            if target.fingerprints and key.get_fingerprint("sha256") not in target.fingerprints:
                conn.close()
                raise HostKeyMismatch(
                    f"{target.alias} ({target.host}) presented a host key that its boot console "
                    "did not print: someone may be intercepting the connection; terminate it."
                )
            _pin(target, key)
            if target.fingerprints:
                report(f"The host key of {target.alias} matches its boot console; pinned.")
    return conn


async def connect(
    target: Target,
    *,
    deadline_s: float = BOOT_DEADLINE_S,
    report: Report = quiet,
    gone: Callable[[], Awaitable[str | None]] | None = None,
) -> asyncssh.SSHClientConnection:
    """Connect, waiting with backoff while the host boots (refused, timeouts, auth not ready).

    `gone`, asked every GONE_CHECK_S while waiting, says why the instance has ended (then
    InstanceGone with that sentence), or None while it exists."""
    start = time.monotonic()
    delay, next_check = 0.5, GONE_CHECK_S
    while True:
        try:
            return await connect_once(target, report)
        except HostKeyMismatch:
            raise
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as err:
            waited = time.monotonic() - start
            if gone is not None and waited >= next_check:
                next_check = waited + GONE_CHECK_S
                why = await gone()
                if why:
                    raise InstanceGone(why) from None
            if waited + delay > deadline_s:
                check = (
                    f"instance.ssh_proxy_command works (its errors: {paths.proxy_log_file()})"
                    if target.proxy_command
                    else "that SSH is allowed from this machine"
                )
                raise HostError(
                    f"Cannot reach {target.user}@{target.host}:{target.port} after "
                    f"{waited:.0f} s ({_describe(err)}); check the instance is running and "
                    f"{check}."
                ) from None
            report(f"Waiting for SSH on {target.host}:{target.port} ({_describe(err)})…")
            await asyncio.sleep(delay)
            delay = min(delay * 1.6, 10.0)


def _describe(err: BaseException) -> str:
    if isinstance(err, asyncio.TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, asyncssh.PermissionDenied):
        return "key not accepted yet"
    text = str(err) or type(err).__name__
    return text.rstrip(".")


async def run(
    conn: asyncssh.SSHClientConnection,
    command: str,
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> Result:
    """Run one command; with check, a non-zero exit becomes a HostError quoting stderr."""
    done = await conn.run(command, input=input, check=False, timeout=timeout)
    result = Result(
        done.exit_status if done.exit_status is not None else -1,
        str(done.stdout or ""),
        str(done.stderr or ""),
    )
    if check and result.exit_status != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise HostError(f"On the host, `{_short(command)}` failed: {tail[0]}")
    return result


async def stream(
    conn: asyncssh.SSHClientConnection,
    command: str,
    on_line: Callable[[str], None],
    *,
    input: str | None = None,
) -> int:
    """Run a command, handing each output line (stdout and stderr) to on_line; its exit code."""
    async with conn.create_process(command, stderr=asyncssh.STDOUT) as process:
        if input is not None:
            process.stdin.write(input)
        process.stdin.write_eof()
        async for line in process.stdout:
            on_line(str(line).rstrip("\n"))
        await process.wait()
        return process.exit_status if process.exit_status is not None else -1


def quote(path: str) -> str:
    return shlex.quote(path)


def _short(command: str) -> str:
    return command if len(command) < 80 else command[:77] + "…"
