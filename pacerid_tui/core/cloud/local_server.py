"""The embedded "instance": an SSH server on 127.0.0.1 serving one workspace folder.

Started detached by `LocalProvider.launch` as `python -m pacerid_tui.core.cloud.local_server DIR`,
so it outlives the dashboard exactly as an EC2 instance would. Commands run under bash with
HOME set to the workspace, so the host contract's `~/pacerid/<run-id>/…` paths resolve the same
way as on a real host, and SFTP is rooted at the workspace so relative paths match too.

Each start of the server is a boot of the instance (the first one at launch; later ones in stop
mode, when capacity returns after a stop), with a new boot id (PACERID_BOOT_ID) and, as on an
EC2 image with cloud-init and systemd:
- the boot units enabled under `systemd/multi-user.target.wants/`, as systemd would run them
  (setup_host.sh installs its boot service there when PACERID_UNIT_DIR names that folder);
- then cloud-init's final stage (on Ubuntu cloud-final.service is ordered after
  multi-user.target): the executables in `cloud/scripts/per-boot/` at every boot, then the
  instance's `user-data` at its first boot only (cloud-init's per-instance semaphore,
  `cloud/instance/sem/config_scripts_user`). The user data installs the boot-time dead-man
  switch there (core/kernel/boot_switch.py).
It also serves the instance's metadata and an EC2 endpoint for the calls the host makes
(local_imds.py, local_ec2.py), which only its own processes are pointed at.

Every child carries `PACERID_LOCAL_INSTANCE=<id>` in its environment: terminate finds and stops
them all (training runs detached, in its own session, like it does on a real host).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import shlex
import signal
import struct
import sys
import termios
import time
import uuid
from pathlib import Path

from pacerid_tui.core.cloud import local_ec2
from pacerid_tui.core.cloud.local_processes import processes_of
from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.lazy import asyncssh

PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "KAGGLE_API_ENVIRONMENT", "OMP_NUM_THREADS")
"""Parent variables a host would also have. Secrets are never among them. OMP_NUM_THREADS: the
local host computes on this machine's cores, so a thread limit set here holds there too."""
CHUNK = 65536


class Instance:
    """Paths and environment of one local instance."""

    def __init__(self, root: Path, aws_env: dict[str, str]) -> None:
        self.root = root
        self.id = root.name
        self.workspace = root / "workspace"
        self.boot_id = uuid.uuid4().hex
        self.aws_env = aws_env
        """Where the host's boto3 finds the instance metadata and EC2 (local_ec2.serve)."""

    def child_env(self, term: str | None) -> dict[str, str]:
        env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        env.update({k: v for k, v in os.environ.items() if k.startswith("PACERID_")})
        env.pop("PACERID_HOME", None)
        env.update(self.aws_env)
        env.update(
            HOME=str(self.workspace),
            SHELL="/bin/bash",
            USER=os.environ.get("USER", "pacerid"),
            PYTHONUNBUFFERED="1",
            TMUX_TMPDIR=str(self.root / "t"),
            # This machine's interpreter, unless the caller named another (tests of a broken
            # host set one without torch).
            PACERID_PYTHON=os.environ.get("PACERID_PYTHON") or sys.executable,
            PACERID_LOCAL_INSTANCE=self.id,
            PACERID_BOOT_DIR=str(self.root / "boot"),
            PACERID_BOOT_ID=self.boot_id,
            PACERID_CLOUD_DIR=str(self.root / "cloud"),
            PACERID_SERVER_PID=str(os.getpid()),
            PACERID_UNIT_DIR=str(self.root / "systemd"),
        )
        env.setdefault("LANG", "C.UTF-8")
        if term:
            env["TERM"] = term
        return env


async def _copy(read, write, drain=None) -> None:  # type: ignore[no-untyped-def,unused-ignore]
    while data := await read(CHUNK):
        write(data)
        if drain is not None:
            await drain()


async def run_with_pipes(inst: Instance, process: asyncssh.SSHServerProcess[bytes]) -> int:
    child = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        process.command or "bash",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=inst.workspace,
        env=inst.child_env(None),
        start_new_session=True,
    )
    assert child.stdin and child.stdout and child.stderr
    stdin, stdout, stderr = child.stdin, child.stdout, child.stderr

    async def feed() -> None:
        try:
            await _copy(process.stdin.read, stdin.write, stdin.drain)
        except (ConnectionError, asyncssh.Error):
            pass
        finally:
            stdin.close()

    feeder = asyncio.create_task(feed())

    # Drain both outputs fully before exit(), or the tail of the output is lost.
    async def drain() -> None:
        await asyncio.gather(
            _copy(stdout.read, process.stdout.write, process.stdout.drain),
            _copy(stderr.read, process.stderr.write, process.stderr.drain),
        )

    output = asyncio.create_task(drain())
    # A client that closes the channel (or drops) hangs up the command at once: a quiet
    # `tail -F` would otherwise run until it next wrote to the closed channel.
    closed = asyncio.ensure_future(process.channel.wait_closed())
    try:
        await asyncio.wait({output, closed}, return_when=asyncio.FIRST_COMPLETED)
        if not output.done():
            raise ConnectionError("the client closed the channel")
        await output
        return await child.wait()
    finally:
        feeder.cancel()
        closed.cancel()
        output.cancel()
        if child.returncode is None:  # the client went away: hang up, as sshd does
            _signal_group(child.pid, signal.SIGHUP)


async def run_with_pty(inst: Instance, process: asyncssh.SSHServerProcess[bytes]) -> int:
    """An interactive shell (or `ssh -t host cmd`) with a real terminal, so tmux attach works."""
    master, slave = pty.openpty()
    cols, rows, _, _ = process.get_terminal_size()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows or 24, cols or 80, 0, 0))
    argv = ["bash", "-c", process.command] if process.command else ["bash", "-l"]

    def controlling_tty() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    child = await asyncio.create_subprocess_exec(
        *argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=inst.workspace,
        env=inst.child_env(process.get_terminal_type()),
        start_new_session=True,
        preexec_fn=controlling_tty,
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    output_done = loop.create_future()

    def on_output() -> None:
        try:
            data = os.read(master, CHUNK)
        except OSError:
            data = b""
        if data:
            process.stdout.write(data)
        elif not output_done.done():
            loop.remove_reader(master)
            output_done.set_result(None)

    loop.add_reader(master, on_output)

    async def feed() -> None:
        while data := await process.stdin.read(CHUNK):
            os.write(master, data)

    feeder = asyncio.create_task(feed())
    try:
        await output_done
        return await child.wait()
    finally:
        feeder.cancel()
        loop.remove_reader(master)
        os.close(master)
        if child.returncode is None:
            _signal_group(child.pid, signal.SIGHUP)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def serve(root: Path) -> None:
    inst = Instance(root, local_ec2.serve(root))
    inst.workspace.mkdir(parents=True, exist_ok=True)
    (root / "t").mkdir(exist_ok=True, mode=0o700)

    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        try:
            if process.get_terminal_type():
                status = await run_with_pty(inst, process)
            else:
                status = await run_with_pipes(inst, process)
        except (ConnectionError, asyncssh.Error):
            return
        process.exit(status if status >= 0 else 128 - status)

    def sftp(chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(chan, chroot=str(inst.workspace).encode())

    server = await asyncssh.create_server(
        None,
        "127.0.0.1",
        0,
        server_host_keys=[str(root / "host_key")],
        authorized_client_keys=str(root / "client_key.pub"),
        process_factory=handle,
        sftp_factory=sftp,
        encoding=None,
        allow_scp=False,
        keepalive_interval=15,
    )
    port = server.sockets[0].getsockname()[1]
    info = {"pid": os.getpid(), "port": port, "started_at": time.time(), **inst.aws_env}
    atomic.write_text(root / "server.json", json.dumps(info) + "\n")
    print(f"serving {inst.workspace} on 127.0.0.1:{port}", flush=True)
    await boot_units(inst)
    await cloud_final(inst)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    # Powering off stops everything that ran on the "machine", as it would on EC2.
    for pid in processes_of(inst.id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    await server.wait_closed()


async def cloud_final(inst: Instance) -> None:
    """cloud-init's final stage: the per-boot scripts (`scripts_per_boot`), then the user data
    (`scripts_user`) once per instance, in that order (cloud.cfg's cloud_final_modules)."""
    cloud = inst.root / "cloud"
    per_boot = cloud / "scripts" / "per-boot"
    for script in sorted(per_boot.iterdir()) if per_boot.is_dir() else []:
        if os.access(script, os.X_OK):
            await run_detached(inst, [str(script)])
    done = cloud / "instance" / "sem" / "config_scripts_user"
    if (inst.root / "user-data").exists() and not done.exists():
        done.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(done, f"{time.time()}\n")
        await run_detached(inst, ["/bin/sh", str(inst.root / "user-data")])


async def boot_units(inst: Instance) -> None:
    """Each enabled unit's ExecStart, in name order (systemd's Type=oneshot: one at a time)."""
    wants = inst.root / "systemd" / "multi-user.target.wants"
    for unit in sorted(wants.glob("*.service")) if wants.is_dir() else []:
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                await run_detached(inst, shlex.split(line.removeprefix("ExecStart=")))


async def run_detached(inst: Instance, argv: list[str]) -> None:
    child = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=inst.workspace,
        env=inst.child_env(None),
        start_new_session=True,
    )
    await child.wait()


HANG_UPS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
"""Signals a host's commands receive at their default disposition, however this server was
started: a host's sshd starts under systemd, which execs a service with every signal at its
default (systemd.exec(5); SIGPIPE aside), while an ignored signal stays ignored across fork and
exec (POSIX exec). Started from `nohup` (SIGHUP) or a script's `cmd &` (SIGINT, SIGQUIT), this
server would pass the ignoring on, and the hang-up at a channel's close would end nothing: a quiet
`tail -F` outlived its channel, found by a CI run under nohup."""


def main() -> None:
    for sig in HANG_UPS:
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    asyncio.run(serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
