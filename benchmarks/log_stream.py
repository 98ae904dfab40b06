"""Log streaming: pacerid's Follower against `ssh host tail -F file` and against the follower it
replaced (SFTP polling), all three on a real OpenSSH sshd, one after the other, in one run.

A separate "host" process appends numbered lines, each stamped with CLOCK_MONOTONIC (one clock
for every process on this machine) at the moment it is written, to a file in the sshd's home.
Each follower notes when each line reaches it, so a line's latency is receive time minus its
stamp. The followers are in log_followers.py.

Figures: latency p50/p99/max at a steady 1,000 lines/s (first second excluded as warm-up, for
all); the first line after the log was quiet for 1.2-2.2 s (what a user watching a training log
sees: an epoch line every few seconds or minutes); maximum throughput, catching up on a file of
1,000,000 ~100-byte lines from offset 0 (lines/s from the first delivered line to the last; best
of the rounds); the follower's CPU while its log gets a line a second; and 20 dropped
connections during 10,000 lines at 1,000 lines/s (every line once, in order).

    .venv/bin/python benchmarks/log_stream.py [--quick] [--rate 1000] [--seconds 10]

Prints Markdown rows for docs/benchmarks.md. Nothing leaves 127.0.0.1.
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import (
    Sshd,
    cpu_seconds,
    loadavg,
    machine,
    percentile,
    remote_dir,
    row,
    sshd,
    start_writer,
    verdict,
)
from log_followers import KINDS, Follow, Kind, Ours, Polling, begin

BULK_LINE = 100
"""Bytes per line of the throughput file, newline included (a typical training log line)."""
DROPS = 20
MS = 1000.0


@dataclass
class Latency:
    p50: float
    p99: float
    max: float
    lost: int


def _begin(kind: Kind, server: Sshd, folder: str, name: str, until: int) -> tuple[Follow, Path]:
    local = server.home / folder / f"{name}-{kind.__name__}.log"
    local.write_text("ready 0\n")
    return begin(kind, server, str(local.relative_to(server.home)), until, sys.exit), local


def at_rate(kind: Kind, server: Sshd, folder: str, rate: float, seconds: float) -> Latency:
    count = int(rate * seconds)
    follower, local = _begin(kind, server, folder, "rate", count)
    start_writer("rate", local, rate, count).wait()
    follower.join(timeout=30)
    stream = follower.stream
    warmup = int(rate)  # the first second, for all
    values = [lat for seq, lat in stream.latencies.items() if seq >= warmup]
    return Latency(
        percentile(values, 50), percentile(values, 99), max(values), count - stream.received
    )


def after_idle(kind: Kind, server: Sshd, folder: str, probes: int) -> Latency:
    follower, local = _begin(kind, server, folder, "idle", probes)
    start_writer("probe", local, 0, probes).wait()
    follower.join(timeout=30)
    values = list(follower.stream.latencies.values())
    return Latency(
        percentile(values, 50), percentile(values, 99), max(values), probes - len(values)
    )


def idle_cpu(kind: Kind, server: Sshd, folder: str, seconds: int) -> float:
    """Percent of one core the follower uses while its log gets one line a second (this
    process's CPU, plus the ssh client's for `ssh tail -F`)."""
    follower, local = _begin(kind, server, folder, "cpu", seconds)
    pids = follower.cpu_pids()
    time.sleep(1.0)  # past connecting
    before = time.process_time() + sum(cpu_seconds(pid) for pid in pids)
    started = time.monotonic()
    start_writer("rate", local, 1.0, seconds).wait()
    used = time.process_time() + sum(cpu_seconds(pid) for pid in pids) - before
    elapsed = time.monotonic() - started
    follower.join(timeout=30)
    return 100.0 * used / elapsed


@dataclass
class Dropped:
    exact: bool
    received: int
    reconnects: int


def with_drops(kind: type[Ours] | type[Polling], server: Sshd, folder: str) -> Dropped:
    count = 10_000
    local = server.home / folder / f"drops-{kind.__name__}.log"
    local.write_text("")
    follower = kind(server, str(local.relative_to(server.home)), count, drops=DROPS)
    follower.start()
    start_writer("rate", local, 1000.0, count).wait()
    follower.join(timeout=120)
    seen = follower.stream.sequence
    return Dropped(seen == list(range(count)), len(seen), follower.reconnects)


def dropped(seen: Dropped | None) -> str:
    if seen is None:
        return "—"
    exact = "exact" if seen.exact else "**NOT exact**"
    return f"{exact} ({seen.received:,} lines, {seen.reconnects} reconnects)"


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


def catch_up(kind: Kind, server: Sshd, path: str, lines: int) -> Throughput:
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
    parser.add_argument("--quick", action="store_true", help="shorter runs (~2 min in all)")
    parser.add_argument("--rate", type=float, default=1000.0, help="lines/s (default 1000)")
    parser.add_argument("--seconds", type=float, default=None, help="steady-rate run length")
    parser.add_argument("--lines", type=int, default=None, help="catch-up file size in lines")
    args = parser.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    lines = args.lines or (200_000 if args.quick else 1_000_000)
    probes = 5 if args.quick else 10
    rounds = 1 if args.quick else 3
    cpu_window = 8 if args.quick else 20

    print(f"# log_stream — {machine()}")
    with sshd() as server, remote_dir(server, "stream") as folder:
        steady = {k: at_rate(k, server, folder, args.rate, seconds) for k in KINDS}
        idle = {k: after_idle(k, server, folder, probes) for k in KINDS}
        cpu = {k: idle_cpu(k, server, folder, cpu_window) for k in KINDS}
        drops: dict[Kind, Dropped] = {k: with_drops(k, server, folder) for k in (Polling, Ours)}
        bulk = server.home / folder / "bulk.log"
        bulk_file(bulk, lines)
        rel = str(bulk.relative_to(server.home))
        best: dict[Kind, Throughput] = {}
        every: dict[Kind, list[float]] = {k: [] for k in KINDS}
        for n in range(rounds):
            for kind in KINDS if n % 2 == 0 else KINDS[::-1]:
                got = catch_up(kind, server, rel, lines)
                every[kind].append(got.lines_per_s)
                if kind not in best or got.lines_per_s > best[kind].lines_per_s:
                    best[kind] = got
    print(f"load average at the end: {loadavg()}")
    for kind, values in every.items():
        print(f"catch-up, every round, {kind.name}: " + ", ".join(f"{v:,.0f}" for v in values))
    for kind, value in idle.items():
        print(f"first line after quiet, {kind.name}: p99 {value.p99 * MS:.1f} ms")
    print()
    report(args.rate, probes, lines, rounds, cpu_window, steady, idle, cpu, drops, best)


def report(
    rate: float,
    probes: int,
    lines: int,
    rounds: int,
    cpu_window: int,
    steady: dict[Kind, Latency],
    idle: dict[Kind, Latency],
    cpu: dict[Kind, float],
    drops: dict[Kind, Dropped],
    best: dict[Kind, Throughput],
) -> None:
    print(
        row("figure", "`ssh host tail -F`", "old Follower (SFTP polls)", "pacerid Follower")
        + " ratio to old | target | |"
    )
    print(row("---", "---:", "---:", "---:", "---:", "---", "---"))

    def line(
        name: str, cell: Callable[[Kind], object], ratio: float | None, target: str, ok: bool | None
    ) -> None:
        cells = [cell(k) for k in KINDS]
        shown = "" if ratio is None else f"{ratio:.2g}×"
        print(row(name, *cells, shown, target, "" if ok is None else verdict(ok)))

    s_old, s_new = steady[Polling], steady[Ours]
    line(
        f"latency p50 / p99 / max at {rate:,.0f} lines/s",
        lambda k: (
            " / ".join(f"{v * MS:.1f}" for v in (steady[k].p50, steady[k].p99, steady[k].max))
            + " ms"
        ),
        s_new.p99 / s_old.p99,
        "p99 ≤ 250 ms, none lost",
        s_new.p99 <= 0.25 and s_new.lost == 0,
    )
    line("lines lost at that rate", lambda k: steady[k].lost, None, "0", s_new.lost == 0)
    i_new = idle[Ours]
    line(
        f"first line after 1.2–2.2 s quiet, p50 / max of {probes}",
        lambda k: f"{idle[k].p50 * MS:.1f} / {idle[k].max * MS:.1f} ms",
        i_new.p50 / idle[Polling].p50,
        "p50 ≤ 20 ms, max ≤ 100 ms",
        i_new.p50 <= 0.020 and i_new.max <= 0.100 and i_new.lost == 0,
    )
    line(
        f"follower CPU, a line a second ({cpu_window} s)",
        lambda k: f"{cpu[k]:.2f} %",
        cpu[Ours] / max(cpu[Polling], 1e-9),
        "≤ old",
        cpu[Ours] <= cpu[Polling],
    )
    line(
        f"{DROPS} dropped connections, 10,000 lines at 1,000/s",
        lambda k: dropped(drops.get(k)),
        None,
        "every line once, in order",
        drops[Ours].exact and drops[Ours].reconnects >= DROPS,
    )
    t_old, t_new = best[Polling], best[Ours]
    line(
        f"max throughput, catch-up of {lines:,} lines (best of {rounds})",
        lambda k: f"{best[k].lines_per_s:,.0f} lines/s ({best[k].mb_per_s:.0f} MB/s)",
        t_new.lines_per_s / t_old.lines_per_s,
        "≥ old",
        t_new.lines_per_s >= t_old.lines_per_s,
    )
    line(
        "  same, wall time incl. connect",
        lambda k: f"{best[k].total_s:.2f} s",
        t_new.total_s / t_old.total_s,
        "",
        None,
    )


if __name__ == "__main__":
    main()
