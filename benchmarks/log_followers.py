"""The three followers log_stream.py compares, each in its own thread, counting what it sees.

* `Ours`: `pacerid_tui.core.remote.file_follower.Follower` as shipped (a
  `tail -c +OFFSET -F` exec channel per file), the line counted in its `on_lines` callback;
* `Polling`: the follower before it streamed (polling_follower.py: SFTP reads, 0.05-0.4 s polls),
  counted the same way: the old figures, measured again in the same run;
* `Tail`: the OpenSSH client running `tail -n +1 -F FILE` on the host, the line counted when its
  bytes reach ssh's stdout.

A helper module: `make bench` does not run it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncssh
from common import Sshd
from polling_follower import PollingFollower

from pacerid_tui.core.remote import ssh
from pacerid_tui.core.remote.file_follower import Follower


@dataclass
class Stream:
    """What one follower saw: per-line latency (s) by sequence number, and receive times."""

    latencies: dict[int, float] = field(default_factory=dict)
    received: int = 0
    sequence: list[int] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def take(self, lines: list[str], now_ns: int, stamped: bool) -> None:
        for line in lines:
            seq_text, _, rest = line.partition(" ")
            if seq_text == "ready":
                self.ready.set()
                continue
            if stamped:
                seq = int(seq_text)
                self.latencies[seq] = (now_ns - int(rest.split(" ", 1)[0])) / 1e9
                self.sequence.append(seq)
            self.received += 1
        if lines:
            now = now_ns / 1e9
            self.first_at = self.first_at or now
            self.last_at = now


class _InProcess:
    """A follower class run with asyncio in a thread; `drops` aborts the connection that often."""

    name = ""
    kind: type[Follower] | type[PollingFollower] = Follower

    def __init__(self, server: Sshd, path: str, until: int, drops: int = 0) -> None:
        self.stream = Stream()
        self.until = until
        self.drops = drops
        self.reconnects = 0
        self.stamped = not path.endswith("bulk.log")
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self._run(server, path)), daemon=True
        )

    def done(self) -> bool:
        return self.stream.received >= self.until

    async def _run(self, server: Sshd, path: str) -> None:
        connections: list[asyncssh.SSHClientConnection] = []

        async def connect() -> asyncssh.SSHClientConnection:
            connections.append(await ssh.connect(server.target()))
            return connections[-1]

        def on_lines(_path: str, lines: list[str]) -> None:
            self.stream.take(lines, time.monotonic_ns(), self.stamped)

        async def drop() -> None:  # abort each connection 0.1 s after it is made
            for index in range(self.drops):
                while len(connections) <= index:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)
                connections[index].abort()
            while len(connections) <= self.drops:  # until the last drop was noticed
                await asyncio.sleep(0.01)

        follower = self.kind(connect, [path], on_lines)
        dropping = asyncio.create_task(drop())
        await follower.run(lambda: self.done() and dropping.done())
        self.reconnects = follower.reconnects

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def cpu_pids(self) -> list[int]:
        return []


class Ours(_InProcess):
    name = "pacerid Follower (stream)"
    kind = Follower


class Polling(_InProcess):
    name = "old Follower (SFTP polls)"
    kind = PollingFollower


class Tail:
    name = "ssh host tail -F (OpenSSH)"

    def __init__(self, server: Sshd, path: str, until: int, drops: int = 0) -> None:
        self.stream = Stream()
        self.until = until
        self.stamped = not path.endswith("bulk.log")
        self.process = subprocess.Popen(
            server.ssh_argv("tail", "-n", "+1", "-F", path),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            bufsize=0,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        partial = b""
        while self.stream.received < self.until:
            data = os.read(fd, 1 << 20)
            now = time.monotonic_ns()
            if not data:
                return
            if not self.stamped and self.stream.ready.is_set():
                # Throughput: count newlines only (less work than our follower does).
                self.stream.received += data.count(b"\n")
                self.stream.first_at = self.stream.first_at or now / 1e9
                self.stream.last_at = now / 1e9
                continue
            partial += data
            end = partial.rfind(b"\n")
            if end < 0:
                continue
            lines = partial[:end].decode().split("\n")
            partial = partial[end + 1 :]
            self.stream.take(lines, now, self.stamped)

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        self.process.terminate()
        self.process.wait(timeout=10)

    def cpu_pids(self) -> list[int]:
        return [self.process.pid]


Follow = Ours | Polling | Tail
Kind = type[Ours] | type[Polling] | type[Tail]
KINDS: list[Kind] = [Tail, Polling, Ours]


def begin(kind: Kind, server: Sshd, path: str, until: int, fail: Callable[[str], None]) -> Follow:
    """Start a follower on a file that holds one `ready` line; return once it has seen it."""
    follower = kind(server, path, until)
    follower.start()
    if not follower.stream.ready.wait(15):
        fail(f"{follower.name} never delivered the first line")
    return follower
