"""Log streaming: pacerid's Follower against `ssh host tail -F file`, both on a real OpenSSH sshd.

A separate "host" process appends numbered lines, each stamped with CLOCK_MONOTONIC (one clock
for every process on this machine) at the moment it is written, to a file in the sshd's home.
Each follower notes when each line reaches it, so a line's latency is receive time minus its
stamp. The two followers run one after the other on the same machine in the same run:

* ours: `pacerid_tui.core.follow.Follower` (SFTP reads by byte offset, 0.05 s polls while data
  flows, 0.5 s once idle), the line counted in its `on_lines` callback;
* baseline: the OpenSSH client running `tail -n +1 -F FILE` on the host (GNU tail, inotify), the
  line counted when its bytes arrive on ssh's stdout.

Figures: latency p50/p99/max at a steady 1,000 lines/s (first second excluded as warm-up, for
both); the first line after the log was quiet for over a second (the follower's idle polling);
and maximum throughput, catching up on a file of 1,000,000 ~100-byte lines from offset 0
(lines/s from the first delivered line to the last; best of the rounds).

    .venv/bin/python benchmarks/log_stream.py [--quick] [--rate 1000] [--seconds 10]

Prints Markdown rows for docs/benchmarks.md. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    Sshd,
    loadavg,
    machine,
    percentile,
    remote_dir,
    row,
    sshd,
    start_writer,
    verdict,
)

from pacerid_tui.core import ssh
from pacerid_tui.core.follow import Follower

BULK_LINE = 100
"""Bytes per line of the throughput file, newline included (a typical training log line)."""


@dataclass
class Stream:
    """What one follower saw: per-line latency (s) by sequence number, and receive times."""

    latencies: dict[int, float] = field(default_factory=dict)
    received: int = 0
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
                self.latencies[int(seq_text)] = (now_ns - int(rest.split(" ", 1)[0])) / 1e9
            self.received += 1
        if lines:
            now = now_ns / 1e9
            self.first_at = self.first_at or now
            self.last_at = now


# -- the two followers ----------------------------------------------------------------------------
async def _ours(server: Sshd, path: str, stream: Stream, done: Callable[[], bool]) -> None:
    def on_lines(_path: str, lines: list[str]) -> None:
        stream.take(lines, time.monotonic_ns(), stamped)

    stamped = not path.endswith("bulk.log")
    follower = Follower(lambda: ssh.connect(server.target()), [path], on_lines)
    await follower.run(done)


class Ours:
    name = "pacerid Follower (SFTP)"

    def __init__(self, server: Sshd, path: str, until: int) -> None:
        self.stream = Stream()
        self.until = until
        self.thread = threading.Thread(
            target=lambda: asyncio.run(_ours(server, path, self.stream, self.done)), daemon=True
        )

    def done(self) -> bool:
        return self.stream.received >= self.until

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)


class Tail:
    name = "ssh host tail -F (OpenSSH)"

    def __init__(self, server: Sshd, path: str, until: int) -> None:
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


Follow = Ours | Tail


def _begin(kind: type[Ours] | type[Tail], server: Sshd, path: str, until: int) -> Follow:
    """Start a follower on a file that holds one `ready` line; return once it has seen it."""
    follower = kind(server, path, until)
    follower.start()
    if not follower.stream.ready.wait(15):
        sys.exit(f"{follower.name} never delivered the first line")
    return follower


# -- the three figures ----------------------------------------------------------------------------
@dataclass
class Latency:
    p50: float
    p99: float
    max: float
    lost: int


def at_rate(
    kind: type[Ours] | type[Tail], server: Sshd, folder: str, rate: float, seconds: float
) -> Latency:
    count = int(rate * seconds)
    local = server.home / folder / f"rate-{kind.__name__}.log"
    local.write_text("ready 0\n")
    follower = _begin(kind, server, str(local.relative_to(server.home)), count)
    writer = start_writer("rate", local, rate, count)
    writer.wait()
    follower.join(timeout=30)
    warmup = int(rate)  # the first second, for both
    values = [lat for seq, lat in follower.stream.latencies.items() if seq >= warmup]
    lost = count - follower.stream.received
    return Latency(percentile(values, 50), percentile(values, 99), max(values), lost)


def after_idle(kind: type[Ours] | type[Tail], server: Sshd, folder: str, probes: int) -> Latency:
    local = server.home / folder / f"idle-{kind.__name__}.log"
    local.write_text("ready 0\n")
    follower = _begin(kind, server, str(local.relative_to(server.home)), probes)
    writer = start_writer("probe", local, 0, probes)
    writer.wait()
    follower.join(timeout=30)
    values = list(follower.stream.latencies.values())
    return Latency(
        percentile(values, 50), percentile(values, 99), max(values), probes - len(values)
    )


@dataclass
class Throughput:
    lines_per_s: float
    mb_per_s: float
    total_s: float


def bulk_file(path: Path, lines: int) -> None:
    pad = "y" * BULK_LINE
    with open(path, "w") as out:
        out.write("ready 0\n")
        for start in range(0, lines, 10_000):
            out.write(
                "".join(
                    f"{seq} {pad}"[: BULK_LINE - 1] + "\n"
                    for seq in range(start, min(lines, start + 10_000))
                )
            )


def catch_up(kind: type[Ours] | type[Tail], server: Sshd, path: str, lines: int) -> Throughput:
    started = time.monotonic()
    follower = kind(server, path, lines)
    follower.start()
    follower.join(timeout=300)
    stream = follower.stream
    if stream.received < lines or stream.first_at is None or stream.last_at is None:
        sys.exit(f"{follower.name} delivered {stream.received} of {lines} lines")
    span = max(stream.last_at - stream.first_at, 1e-9)
    return Throughput(lines / span, lines * BULK_LINE / span / 1e6, stream.last_at - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (~30 s in all)")
    parser.add_argument("--rate", type=float, default=1000.0, help="lines/s (default 1000)")
    parser.add_argument("--seconds", type=float, default=None, help="steady-rate run length")
    parser.add_argument("--lines", type=int, default=None, help="catch-up file size in lines")
    args = parser.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    lines = args.lines or (200_000 if args.quick else 1_000_000)
    probes = 3 if args.quick else 6
    rounds = 1 if args.quick else 3

    print(f"# log_stream — {machine()}")
    kinds: list[type[Ours] | type[Tail]] = [Tail, Ours]
    with sshd() as server, remote_dir(server, "stream") as folder:
        steady = {k: at_rate(k, server, folder, args.rate, seconds) for k in kinds}
        idle = {k: after_idle(k, server, folder, probes) for k in kinds}
        bulk = server.home / folder / "bulk.log"
        bulk_file(bulk, lines)
        rel = str(bulk.relative_to(server.home))
        best: dict[type[Ours] | type[Tail], Throughput] = {}
        every: dict[type[Ours] | type[Tail], list[float]] = {k: [] for k in kinds}
        for n in range(rounds):
            for kind in kinds if n % 2 == 0 else kinds[::-1]:
                got = catch_up(kind, server, rel, lines)
                every[kind].append(got.lines_per_s)
                if kind not in best or got.lines_per_s > best[kind].lines_per_s:
                    best[kind] = got
    print(f"load average at the end: {loadavg()}")
    for kind, values in every.items():
        print(f"catch-up, every round, {kind.name}: " + ", ".join(f"{v:,.0f}" for v in values))
    print()

    base, ours = steady[Tail], steady[Ours]
    ms = 1000.0
    print(row("figure", "baseline: `ssh host tail -F`", "pacerid Follower", "ratio", "target", ""))
    print(row("---", "---:", "---:", "---:", "---", "---"))
    print(
        row(
            f"latency p50 at {args.rate:,.0f} lines/s",
            f"{base.p50 * ms:.1f} ms",
            f"{ours.p50 * ms:.1f} ms",
            f"{ours.p50 / base.p50:.1f}×",
            "—",
            "",
        )
    )
    print(
        row(
            f"latency p99 at {args.rate:,.0f} lines/s",
            f"{base.p99 * ms:.1f} ms",
            f"{ours.p99 * ms:.1f} ms",
            f"{ours.p99 / base.p99:.1f}×",
            "≤ 250 ms",
            verdict(ours.p99 <= 0.25 and ours.lost == 0),
        )
    )
    print(
        row(
            "latency max (after warm-up)",
            f"{base.max * ms:.1f} ms",
            f"{ours.max * ms:.1f} ms",
            f"{ours.max / base.max:.1f}×",
            "—",
            "",
        )
    )
    print(row("lines lost", base.lost, ours.lost, "", "0", verdict(ours.lost == 0)))
    bi, oi = idle[Tail], idle[Ours]
    print(
        row(
            f"first line after >1 s quiet, p50 / max of {probes}",
            f"{bi.p50 * ms:.1f} / {bi.max * ms:.1f} ms",
            f"{oi.p50 * ms:.0f} / {oi.max * ms:.0f} ms",
            f"{oi.p50 / bi.p50:.0f}×",
            "—",
            "",
        )
    )
    bt, ot = best[Tail], best[Ours]
    print(
        row(
            f"max throughput, catch-up of {lines:,} lines (best of {rounds})",
            f"{bt.lines_per_s:,.0f} lines/s ({bt.mb_per_s:.0f} MB/s)",
            f"{ot.lines_per_s:,.0f} lines/s ({ot.mb_per_s:.0f} MB/s)",
            f"{ot.lines_per_s / bt.lines_per_s:.2f}×",
            "≥ baseline",
            verdict(ot.lines_per_s >= bt.lines_per_s),
        )
    )
    print(
        row(
            "  same, wall time incl. connect",
            f"{bt.total_s:.2f} s",
            f"{ot.total_s:.2f} s",
            f"{ot.total_s / bt.total_s:.2f}×",
            "",
            "",
        )
    )


if __name__ == "__main__":
    main()
