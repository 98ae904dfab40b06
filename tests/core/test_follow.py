"""The follower streams each file over its own `tail -F` channel and survives dropped
connections, truncated and replaced files, and hosts without GNU tail, with nothing lost or
repeated, and leaves no tail running on the host (both the embedded server and OpenSSH)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from pacerid_tui import paths
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.models import Instance, InstanceSpec
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.remote.file_follower import Follower
from pacerid_tui.core.remote.tail_stream import Kind, Notices, streamable

LINES = 10_000
DROPS = 20
DEADLINE_S = 60.0


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def tails_of(folder: str) -> list[int]:
    """`tail` processes on this machine (the host of both servers) following files in folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"tail") and any(folder.encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def no_tail_left(folder: str) -> bool:
    return not tails_of(folder)


async def test_twenty_drops_lose_and_repeat_nothing(host: Instance, remote_dir: str) -> None:
    target = ssh.Target.of(host, paths.known_hosts_file())
    control = await ssh.connect(target)
    log = f"{remote_dir}/train.log"
    # A host process writing numbered lines, partial writes included, for about 4 seconds.
    writer = (
        f"mkdir -p {remote_dir} && : > {log} && "
        f"for i in $(seq 1 {LINES}); do printf '%s' \"line-$i\" >> {log}; "
        f"printf '\\n' >> {log}; [ $((i % 500)) -eq 0 ] && sleep 0.2; done; touch {log}.done"
    )
    writing = asyncio.create_task(ssh.run(control, writer))
    connections: list[asyncssh.SSHClientConnection] = []

    async def connect() -> asyncssh.SSHClientConnection:
        conn = await ssh.connect(target)
        connections.append(conn)
        return conn

    received: list[str] = []
    reports: list[str] = []
    follower = Follower(
        connect, [log], lambda _path, lines: received.extend(lines), report=reports.append
    )

    async def drop_connections() -> None:
        for index in range(DROPS):
            while len(connections) <= index:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            connections[index].abort()
        while len(connections) <= DROPS:  # done once the last drop was noticed: else the
            await asyncio.sleep(0.01)  # follower may finish between that abort and its next read

    dropper = asyncio.create_task(drop_connections())
    await follower.run(lambda: writing.done() and dropper.done())
    await writing
    control.close()
    assert follower.reconnects >= DROPS
    assert received == [f"line-{i}" for i in range(1, LINES + 1)]
    assert not [r for r in reports if "Cannot stream" in r]  # it streamed, not polled
    await until(lambda: no_tail_left(remote_dir), "the host's tail processes to end")


async def test_truncated_or_replaced_file_starts_again_and_says_so_once(
    host: Instance, remote_dir: str
) -> None:
    target = ssh.Target.of(host, paths.known_hosts_file())
    control = await ssh.connect(target)
    log = f"{remote_dir}/train.log"
    metrics = f"{remote_dir}/system.jsonl"  # appears only later, like the host sampler's
    await ssh.run(control, f"mkdir -p {remote_dir} && printf 'a1\\na2\\n' > {log}")
    got: dict[str, list[str]] = {log: [], metrics: []}
    reports: list[str] = []
    stop = asyncio.Event()
    online = asyncio.Event()
    online.set()
    connections: list[asyncssh.SSHClientConnection] = []

    async def connect() -> asyncssh.SSHClientConnection:
        await online.wait()
        connections.append(await ssh.connect(target))
        return connections[-1]

    follower = Follower(
        connect, [log, metrics], lambda path, lines: got[path].extend(lines), report=reports.append
    )
    running = asyncio.create_task(follower.run(stop.is_set))
    await until(lambda: got[log] == ["a1", "a2"], "the first lines")
    await ssh.run(control, f": > {log} && printf 'b1\\n' >> {log}")  # truncated in place
    await until(lambda: got[log][-1:] == ["b1"], "the line after the truncation")
    await ssh.run(control, f"printf 'c1\\nc2\\n' > {log}.new && mv {log}.new {log}")
    await until(lambda: got[log][-1:] == ["c2"], "the replaced file's lines")
    await ssh.run(control, f"printf 'm1\\n' > {metrics}")
    await until(lambda: got[metrics] == ["m1"], "the file that appeared")
    assert got[log] == ["a1", "a2", "b1", "c1", "c2"]
    assert len([r for r in reports if "was truncated" in r]) == 1
    assert len([r for r in reports if "was replaced" in r]) == 1
    assert follower.offsets == {log: 6, metrics: 3}

    # While the connection is down, the log is truncated and the metrics file replaced by a
    # longer one: neither can be told from its size alone.
    online.clear()
    connections[-1].abort()
    await until(lambda: follower.reconnects == 1, "the drop to be noticed")
    reports.clear()
    await ssh.run(
        control,
        f"printf 'd1\\n' > {log} && printf 'n1\\nn2\\n' > {metrics}.new && "
        f"mv {metrics}.new {metrics}",
    )
    online.set()
    await until(lambda: got[log][-1:] == ["d1"] and got[metrics][-1:] == ["n2"], "the rest")
    stop.set()
    await running
    control.close()
    assert got == {log: ["a1", "a2", "b1", "c1", "c2", "d1"], metrics: ["m1", "n1", "n2"]}
    assert sorted(reports) == sorted(
        [
            f"{log} was truncated; following it again from its start.",
            f"{metrics} was replaced while the connection was down; "
            "following it again from its start.",
        ]
    )
    await until(lambda: no_tail_left(remote_dir), "the host's tail processes to end")


async def test_host_without_gnu_tail_is_polled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host whose `tail` is not GNU's: the follower polls over SFTP. The stand-in answers
    `--version` as BusyBox's tail does (it has no such option: "unrecognized option", its
    usage on stderr, exit status 1)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tail").write_text(
        "#!/bin/sh\necho \"tail: unrecognized option '$1'\" >&2\n"
        "echo 'BusyBox v1.36.1 multi-call binary.' >&2\n"
        "echo 'Usage: tail [OPTIONS] [FILE]...' >&2\n"
        "exit 1\n"
    )
    (fake / "tail").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    provider = LocalProvider()
    instance = provider.launch(InstanceSpec(run_id=f"t-{secrets.token_hex(3)}", provider="local"))
    target = ssh.Target.of(instance, paths.known_hosts_file())
    control = await ssh.connect(target)
    log = "out/train.log"
    await ssh.run(control, "mkdir -p out && printf 'x1\\nx2\\nx3' > out/train.log")
    received: list[str] = []
    reports: list[str] = []
    follower = Follower(
        lambda: ssh.connect(target),
        [log],
        lambda _path, lines: received.extend(lines),
        report=reports.append,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(follower.run(stop.is_set))
    await until(lambda: received == ["x1", "x2"], "the polled lines")
    await ssh.run(control, "printf '\\nx4\\n' >> out/train.log")
    await until(lambda: received == ["x1", "x2", "x3", "x4"], "the lines written later")
    await ssh.run(control, "printf 'y1\\n' > out/train.log")  # truncated: read again from 0
    await until(lambda: received[-1:] == ["y1"], "the line after the truncation")
    stop.set()
    await running
    control.close()
    provider.terminate(instance.instance_id)
    assert received == ["x1", "x2", "x3", "x4", "y1"]
    assert reports == [
        f"Cannot stream {log} (no GNU tail on the host); polling it over SFTP instead.",
        f"{log} was truncated or replaced; following it again from its start.",
    ]


async def test_embedded_server_ends_a_command_whose_channel_closes(
    local_instance: Instance,
) -> None:
    """Like a host's sshd hanging up a session: closing the channel ends a quiet `tail -F`."""
    control = await ssh.connect(ssh.Target.of(local_instance, paths.known_hosts_file()))
    folder = f"quiet-{secrets.token_hex(3)}"
    await ssh.run(control, f"mkdir -p {folder} && printf 'q1\\n' > {folder}/log")
    process = await control.create_process(f"tail -n +1 -F {folder}/log", encoding=None)
    assert await process.stdout.readline() == b"q1\n"  # passed on at once
    assert tails_of(folder)
    process.close()
    await until(lambda: no_tail_left(folder), "tail to end with its channel")
    control.close()


async def test_embedded_server_gives_commands_default_signals_whatever_it_inherited() -> None:
    """Started from a shell that ignores SIGHUP (`nohup`) or SIGINT and SIGQUIT (a script's
    `cmd &`), the embedded server stands in for a host's sshd all the same: sshd runs under
    systemd, which starts a service with every signal at its default (systemd.exec(5)), and a
    signal ignored at exec stays ignored (POSIX exec), so a command would ignore the hang-up at
    its channel's close. Found by a CI run under `nohup`: the test above waited 60 s for a quiet
    `tail -F` to end (with the hang-up ignored, only the server's pipes closing can end it)."""
    ignored = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in ignored}
    provider = LocalProvider()
    try:
        instance = provider.launch(
            InstanceSpec(run_id=f"test-{secrets.token_hex(3)}", provider="local")
        )
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    try:
        control = await ssh.connect(ssh.Target.of(instance, paths.known_hosts_file()))
        status = (await ssh.run(control, "cat /proc/self/status")).stdout
        control.close()
    finally:
        provider.terminate(instance.instance_id)
    [mask] = [line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")]
    assert [sig.name for sig in ignored if int(mask, 16) & 1 << (sig - 1)] == []


def test_only_tails_notices_about_the_file_are_taken_out_of_the_stream() -> None:
    """GNU coreutils 9.1 tail.c's wording: `%s: file truncated` (quotef: bare name), `%s has
    been replaced;  following new file` (quoteaf: single quotes); a log line that merely
    starts with "tail: " stays a line."""
    notices = Notices("out/train.log")
    data = b"epoch 1\ntail: out/train.log: file truncated\nepoch 1 again\n"
    found = notices.search(data)
    assert found is not None and found.kind is Kind.TRUNCATED
    assert data[: found.start] == b"epoch 1\n" and data[found.end :] == b"epoch 1 again\n"
    replaced = notices.search(b"tail: 'out/train.log' has been replaced;  following new file\n")
    assert replaced is not None and replaced.kind is Kind.REPLACED
    assert notices.search(b"tail: other.log: file truncated\n") is None
    assert notices.search(b"tail: the model said hello\n") is None
    assert not streamable("out/my log.txt") and streamable("pacerid/run-1/output/train.log")
