"""Delta upload: pacerid's sync against `rsync -a -e ssh`, both to the same real OpenSSH sshd.

The tree is 2,000 files, 100 MB in all (sizes log-normal around 50 kB, random bytes, 100
folders), the shape of a code-plus-assets upload. Each tool gets its own destination folder under
the sshd's home and is timed end to end as a user would run it, connection included:

* ours: connect with `pacerid_tui.core.remote.ssh.connect` (pinned key), `sync.upload` (a
  remote `find` lists the destination, changed files go over SFTP, 8 at a time), close;
* baseline: `rsync -a -e "ssh -i KEY -p PORT …" SRC/ user@127.0.0.1:DEST/` (OpenSSH client,
  remote rsync started by the same sshd).

Three cases per round: first upload to an empty destination, a no-op re-upload, and a re-upload
after one file (the median-sized one, a different one each round) was rewritten. Rounds alternate
which tool goes first; the table shows medians. The source and destination share this machine's
page cache, disk and 2 cores, so the times are CPU- and syscall-bound, not network-bound.

    .venv/bin/python benchmarks/sync.py [--quick] [--rounds N]

Needs rsync (`apt-get install -y rsync`) for the baseline; without it, only ours is measured.
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import Sshd, loadavg, machine, median, remote_dir, row, sshd, verdict

from pacerid_tui.core.remote import ssh, sync

FILES = 2000
TOTAL_BYTES = 100_000_000
TARGETS = {"first upload": 1.5, "no-op re-upload": 1.0, "one file changed": 1.0}


def make_tree(root: Path, files: int, total: int) -> list[Path]:
    """files random files totalling exactly `total` bytes; returns them sorted by size."""
    rng = random.Random(0)
    weights = [math.exp(rng.gauss(0, 1.2)) for _ in range(files)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[0] += total - sum(sizes)
    made = []
    for i, size in enumerate(sizes):
        path = root / f"pkg{i % 20:02d}" / f"mod{i // 20 % 5}" / f"file{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        made.append(path)
    return sorted(made, key=lambda p: p.stat().st_size)


def touch_one(path: Path, round_no: int) -> None:
    """Rewrite one file's bytes (same size) with an mtime seconds away from its last one."""
    size = path.stat().st_size
    path.write_bytes(os.urandom(size))
    stamp = time.time() + 10 * (round_no + 1)
    os.utime(path, (stamp, stamp))


def ours(server: Sshd, source: Path, dest: str) -> float:
    async def go() -> sync.SyncStats:
        conn = await ssh.connect(server.target())
        try:
            return await sync.upload(conn, sync.local_tree(source, sync.Excludes(())), dest)
        finally:
            conn.close()
            await conn.wait_closed()

    started = time.perf_counter()
    asyncio.run(go())
    return time.perf_counter() - started


def rsync(server: Sshd, source: Path, dest: str) -> float:
    argv = ["rsync", "-a", "-e", server.ssh_e(), f"{source}/", server.remote(f"{dest}/")]
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


def same_tree(source: Path, dest: Path) -> bool:
    def listing(root: Path) -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(root)): (p.stat().st_size, int(p.stat().st_mtime))
            for p in root.rglob("*")
            if p.is_file()
        }

    return listing(source) == listing(dest)


Tool = Callable[[Sshd, Path, str], float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round (~30 s)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument(
        "--user-rc",
        action="store_true",
        help="let remote commands source your ~/.bashrc (see common.sshd)",
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    tools: dict[str, Tool] = {"rsync -a -e ssh": rsync, "pacerid sync.upload": ours}
    if shutil.which("rsync") is None:  # ours is still measured; the ratio needs rsync
        print("rsync is missing, and it is this benchmark's baseline: `apt-get install -y rsync`.")
        del tools["rsync -a -e ssh"]
    times: dict[tuple[str, str], list[float]] = {}

    print(f"# sync — {machine()}" + (" — remote commands source ~/.bashrc" if args.user_rc else ""))
    source = Path(tempfile.mkdtemp(prefix="pacerid-bench-tree-"))
    try:
        by_size = make_tree(source, FILES, TOTAL_BYTES)
        with sshd(user_rc=args.user_rc) as server, remote_dir(server, "sync") as folder:
            for n in range(rounds):
                order = list(tools.items())
                if n % 2:
                    order.reverse()
                dests = {name: f"{folder}/{name.split()[0]}-{n}" for name in tools}
                for case in TARGETS:
                    if case == "one file changed":
                        touch_one(by_size[len(by_size) // 2 + n], n)
                    for name, tool in order:
                        times.setdefault((case, name), []).append(tool(server, source, dests[name]))
                        if not same_tree(source, server.home / dests[name]):
                            sys.exit(f"{name}: the destination differs from the source ({case})")
                for dest in dests.values():
                    shutil.rmtree(server.home / dest, ignore_errors=True)
    finally:
        shutil.rmtree(source, ignore_errors=True)
    print(f"load average at the end: {loadavg()}\n")

    print(
        row(
            f"case ({FILES:,} files, {TOTAL_BYTES / 1e6:.0f} MB; median of {rounds})",
            "baseline: `rsync -a -e ssh`",
            "pacerid sync",
            "ratio",
            "target",
            "",
        )
    )
    print(row("---", "---:", "---:", "---:", "---", "---"))
    for case, target in TARGETS.items():
        mine = median(times[(case, "pacerid sync.upload")])
        if (case, "rsync -a -e ssh") not in times:
            print(row(case, "rsync missing", f"{mine:.2f} s", "—", f"≤ {target:.1f}×", "—"))
            continue
        base = median(times[(case, "rsync -a -e ssh")])
        print(
            row(
                case,
                f"{base:.2f} s",
                f"{mine:.2f} s",
                f"{mine / base:.2f}×",
                f"≤ {target:.1f}×",
                verdict(mine / base <= target),
            )
        )
    print("\nall times (s):")
    for (case, name), values in times.items():
        print(f"  {case:18} {name:22} " + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
