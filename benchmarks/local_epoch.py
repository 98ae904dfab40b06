"""The default local run's epoch on the CPU, two checkouts side by side (before/after a change).

Runs `python -m trainer train --config configs/local.yaml` of each checkout (`--repo`, given
twice or more) as the controller does, alternating the checkouts run after run so a shared
machine's load falls on both alike, and reads each run's metrics.jsonl:

- epoch (wall): the time between consecutive `epoch` events, so training, precise BN,
  evaluation and checkpoint writes together: what a host is billed for, per epoch;
- training: the `epoch_seconds` the trainer measured for the training steps alone;
- overhead: the difference, what one epoch costs beyond its training steps;
- end: from the last `epoch` event to `done` (final evaluation, report, final checkpoint);
- run: the whole process, start to exit, and the CPU seconds it used (user + system): on a
  machine shared with other work the wall times stretch with its load, the CPU time far less.

Each checkout gets its own data folder, generated and cached once before the timed runs, and a
fresh output folder per run. Medians over `--runs` runs per checkout.

    .venv/bin/python benchmarks/local_epoch.py --repo /tmp/base --repo . [--runs 5 | --quick]

Without --repo it measures this checkout alone (`make bench`).
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLUMNS = ("epoch (wall)", "training", "overhead", "end", "run", "run CPU")


def trainer(repo: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo), "PACERID_IMDS_URL": "off"}
    return subprocess.run(
        [sys.executable, "-m", "trainer", *map(str, args)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def measure(repo: Path, data: Path, output: Path) -> dict[str, float]:
    config = repo / "configs" / "local.yaml"
    started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    trainer(repo, "train", "--config", config, "--data", data, "--output", output)
    run_s = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    events = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    [done] = [e for e in events if e["event"] == "done"]
    walls = [later["time"] - earlier["time"] for earlier, later in itertools.pairwise(epochs)]
    training = [e["epoch_seconds"] for e in epochs[1:]]  # the first epoch warms up: left out
    return {
        "epoch (wall)": statistics.median(walls),
        "training": statistics.median(training),
        "overhead": statistics.median(w - t for w, t in zip(walls, training, strict=True)),
        "end": done["time"] - epochs[-1]["time"],
        "run": run_s,
        "run CPU": cpu_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, action="append", help="a checkout (default: this)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per checkout")
    parser.add_argument("--quick", action="store_true", help="one timed run per checkout")
    args = parser.parse_args()
    repos = [repo.resolve() for repo in args.repo or [REPO]]
    args.runs = 1 if args.quick else args.runs
    root = Path(tempfile.mkdtemp(prefix="pacerid-local-epoch-"))
    found: dict[Path, list[dict[str, float]]] = {repo: [] for repo in repos}
    try:
        for index, repo in enumerate(repos):  # data and its decode cache, once, untimed
            measure(repo, root / f"data{index}", root / f"warm{index}")
        for turn in range(args.runs):
            for index, repo in enumerate(repos):
                output = root / f"out{index}-{turn}"
                found[repo].append(measure(repo, root / f"data{index}", output))
                shutil.rmtree(output)
                figures = ", ".join(f"{k} {v:.2f}" for k, v in found[repo][-1].items())
                print(f"run {turn + 1}, {repo}: {figures}", flush=True)  # survives a cut run
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"# local_epoch — {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPU cores, "
          f"load {load:.1f}, {args.runs} runs per checkout (medians, seconds)")  # fmt: skip
    print("| checkout | " + " | ".join(COLUMNS) + " |")
    print("| --- |" + " ---: |" * len(COLUMNS))
    for repo, runs in found.items():
        cells = [f"{statistics.median(r[c] for r in runs):.2f}" for c in COLUMNS]
        print(f"| {repo} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
