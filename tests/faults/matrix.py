"""`make faults`: every cell of the fault matrix (tests/faults/cells.py), three at a time,
printed as a Markdown table for docs/reliability.md (each cell's verdict on stderr as it comes).

    python -m tests.faults.matrix [--phase P ...] [--fault F ...] [--jobs N]

Cells run N at a time (default 3), each in a fresh process of its own: a cell spends most of its
time waiting out its bound, and one at a time the 72 take about 45 minutes. Each cell gets its
own state folder and tmux folder (a short temporary folder: a local
instance's tmux socket path must fit 107 bytes), as the test suite's `isolated` fixture does,
and nothing can reach AWS, IMDS or Kaggle. Exit 1 when a cell does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.cells import BOUND_S, CELL_TIMEOUT_S, ENV, FAULTS, PHASES, Outcome, run_cell

ISOLATION = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "KAGGLE_API_ENVIRONMENT": "TEST",
}


def one_cell(phase: str, fault: str) -> Outcome:
    root = Path(tempfile.mkdtemp(prefix="pacerid-fault-"))
    os.environ.update(
        PACERID_HOME=str(root / "home"), TMUX_TMPDIR=str(root / "tmux"), **ENV, **ISOLATION
    )
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ["KAGGLE_CONFIG_DIR"] = str(root / "no-kaggle")
    try:
        return asyncio.run(bounded(phase, fault, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def bounded(phase: str, fault: str, root: Path) -> Outcome:
    """The cell, or a failed row when it has not ended within CELL_TIMEOUT_S: one stuck cell
    must not hold up the matrix (one did, on a heartbeat that would not stop)."""
    try:
        async with asyncio.timeout(CELL_TIMEOUT_S):
            return await run_cell(phase, fault, root)
    except TimeoutError:
        said = f"did not end within {CELL_TIMEOUT_S:.0f} s"
        return Outcome(phase, fault, said, 0.0, 0.0, "FAILS: stuck", CELL_TIMEOUT_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", action="append", choices=PHASES)
    parser.add_argument("--fault", action="append", choices=FAULTS)
    parser.add_argument("--jobs", type=int, default=3, help="cells at a time (default 3)")
    args = parser.parse_args()
    started = time.monotonic()
    print(
        f"Fault matrix, {time.strftime('%Y-%m-%d')}, {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}); bound {BOUND_S:.0f} s "
        f"after each fault; {args.jobs} cells at a time.\n"
    )
    cells = [(p, f) for p in args.phase or PHASES for f in args.fault or FAULTS]
    outcomes = []
    # A fresh process per cell (spawned: nothing of a cell before it is inherited).
    with concurrent.futures.ProcessPoolExecutor(args.jobs, max_tasks_per_child=1) as pool:
        running = [pool.submit(one_cell, phase, fault) for phase, fault in cells]
        for finished in concurrent.futures.as_completed(running):
            done = finished.result()
            outcomes.append(done)
            print(
                f"[{len(outcomes)}/{len(cells)}] {done.phase} × {done.fault}: {done.verdict} "
                f"({done.seconds:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    outcomes.sort(key=lambda o: cells.index((o.phase, o.fault)))
    print("| cell | what happened | billed past the fault | verdict | cell took |")
    print("| --- | --- | --- | --- | --- |")
    for outcome in outcomes:
        print(outcome.row())
    held = sum(o.verdict == "holds" for o in outcomes)
    slowest = max(outcomes, key=lambda o: o.seconds)
    print(
        f"\n{held} of {len(outcomes)} cells hold; slowest {slowest.phase} × {slowest.fault} "
        f"({slowest.seconds:.0f} s); all in {time.monotonic() - started:.0f} s."
    )
    return 0 if held == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
