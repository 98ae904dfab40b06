"""The dashboard under load: cold start, idle CPU, memory after 1,000,000 lines, key latency.

Every app runs as its own process in a real pseudo-terminal (160×45, TERM=xterm-256color) that
this script drains as a terminal emulator would, so Textual's real Linux driver parses the keys
and writes every frame. Nothing is headless and nothing is mocked: training runs are followed
over SSH from the embedded local provider (`LocalProvider`, an SSH server on 127.0.0.1), with a
"fake trainer" process on the host side writing train.log, metrics.jsonl and status.json.

Baseline: a bare Textual app — Header, `Log(max_lines=5000)` (the same bound as ours), Footer —
that tails the same log file straight from the local disk with a 50 ms polling thread. It is the
least any Textual log viewer costs, so the gap to it is what pacerid-tui adds (SSH, the follower,
the runs table, details, chart, messages). For idle CPU the other natural baseline runs beside
it: `ssh host tail -F train.log` through the OpenSSH client, as the guide had users do.

* cold start: spawn → first frame (the Footer's "Quit" on the terminal), the real
  `python -m pacerid_tui --config configs/local.yaml` against the bare app's script; warm OS
  file cache (one unmeasured start each first), median of 5, alternating.
* idle CPU: the unmodified program following one run whose fake trainer writes one log line and
  one metrics step a second (a GPU epoch's pace); CPU seconds of each process over the same
  window (/proc/PID/stat), as % of one core. The host's SSH server is not counted (on AWS it is
  the instance's).
* memory: the app catches up on a train.log of 1,000,000 ~100-byte lines from offset 0, then
  RSS (and peak RSS) is read in-process once the last line has reached the log pane.
* key latency: a host process writes 10,000 lines/s to train.log; every 0.2-0.35 s this script
  writes `r` to the terminal; latency is from that write to the start of the `r` action
  (`action_refresh`, overridden to note the time — its own work is a worker start, so the figure
  is the queueing delay of the key). The lag of the log pane behind the writer is sampled too.

For memory and key latency the app is PaceridApp subclassed only to note times and RSS (the
`--child` modes below); cold start and idle CPU run the program exactly as shipped.

    .venv/bin/python benchmarks/dashboard.py [--quick]
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_terminal import (
    FAKE_TRAINER,
    REPO,
    Host,
    Terminal,
    read_stats,
    term_env,
    wait_stats,
)

MEMORY_LINE = 100
APPS = Path(__file__).resolve().parent / "dashboard_apps.py"
"""The two apps measured inside the terminal (ours instrumented, and the bare baseline)."""


# -- the parent ----------------------------------------------------------------------------------
def app_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "pacerid_tui", "--config", str(config)]


def child_argv(kind: str, stats: Path) -> list[str]:
    return [sys.executable, str(APPS), "--child", kind, "--stats", str(stats)]


# -- cold start -----------------------------------------------------------------------------------
def checkout_start(config: Path, repo: Path) -> tuple[list[str], dict[str, str]]:
    """The dashboard of another checkout: its tree first on the path (-P: not this one's cwd)."""
    env = {**term_env(), "PYTHONPATH": str(repo)}
    return [sys.executable, "-P", "-m", "pacerid_tui", "--config", str(config)], env


def cold_start(config: Path, repeats: int, repos: list[Path]) -> dict[str, list[float]]:
    starts = {
        "bare": ([sys.executable, str(APPS), "--child", "bare"], term_env()),
        **(
            {f"ours {repo}": checkout_start(config, repo) for repo in repos}
            if repos
            else {"ours": (app_argv(config), term_env())}
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in starts}
    for n in range(repeats + 1):
        for name in starts if n % 2 == 0 else list(starts)[::-1]:
            argv, env = starts[name]
            term = Terminal(argv, env)
            try:
                took = term.wait_frame(30)
            finally:
                term.close()
            if n > 0:  # the first start of each warms the OS file cache and .pyc files
                times[name].append(took)
    interpreter = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        interpreter.append(time.monotonic() - started)
    times["python -c pass"] = interpreter
    return times


# -- idle CPU -------------------------------------------------------------------------------------
def idle_cpu(host: Host, work: Path, window: float, repos: list[Path]) -> dict[str, float]:
    """CPU of each app over the same window; with `repos`, each checkout's dashboard in place
    of this one's, all following the same run side by side."""
    from common import cpu_seconds

    _, output = host.new_run()
    trainer = subprocess.Popen([sys.executable, "-c", FAKE_TRAINER, str(output)])
    terms: list[Terminal] = []
    tail: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.3)
        starts = (
            {f"ours {repo}": checkout_start(host.config, repo) for repo in repos}
            if repos
            else {"ours": (app_argv(host.config), term_env())}
        )
        oursides = {name: Terminal(argv, env) for name, (argv, env) in starts.items()}
        terms.extend(oursides.values())
        bare = Terminal(
            [
                *child_argv("bare", work / "idle-bare.jsonl"),
                *("--follow", str(output / "train.log"), "--idle"),
            ],
            term_env(),
        )
        terms.append(bare)
        for term in oursides.values():
            term.wait_frame(30)
        bare.wait_frame(30)
        tail = subprocess.Popen(
            host.ssh_argv(
                "tail", "-n", "+1", "-F", f"pacerid/{output.parent.name}/output/train.log"
            ),
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(5.0)  # connected, following, first refreshes done
        pids = {
            **{name: term.pid for name, term in oursides.items()},
            "bare": bare.pid,
            "ssh tail -F": tail.pid,
            "host SSH server": host.server_pid,
        }
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        time.sleep(window)
        took = time.monotonic() - started
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        return {name: 100 * (after[name] - before[name]) / took for name in pids}
    finally:
        for term in terms:
            term.close()
        if tail is not None:
            tail.terminate()
            tail.wait()
        trainer.kill()
        trainer.wait()


# -- key latency under a 10,000 lines/s stream ---------------------------------------------------
def key_latency(
    host: Host, work: Path, kind: str, rate: float, seconds: float
) -> tuple[list[float], list[float], int]:
    """Key delays (s), log-pane lags sampled (s), last line seen, for one app."""
    from common import start_writer

    _, output = host.new_run()
    log = output / "train.log"
    log.write_text(f"-1 {time.monotonic_ns()} warm\n")
    sleeper = subprocess.Popen(["sleep", str(seconds + 120)])  # the "trainer" the app checks on
    host.status_for(output, sleeper.pid)
    stats_path = work / f"keys-{kind}.jsonl"
    argv = (
        app_argv_child(host.config, stats_path)
        if kind == "ours"
        else [*child_argv("bare", stats_path), "--follow", str(log)]
    )
    term = Terminal(argv, term_env())
    pressed: list[int] = []
    count = int(rate * seconds)
    try:
        term.wait_frame(30)
        wait_stats(stats_path, lambda s: any(e.get("seq") == -1 for e in s), 30, "the warm line")
        time.sleep(1.0)
        writer = start_writer("rate", log, rate, count)
        time.sleep(1.0)  # the stream is flowing
        while writer.poll() is None:
            pressed.append(term.key("\x12"))  # ctrl+r: refresh in both apps
            time.sleep(random.uniform(0.2, 0.35))
        wait_stats(
            stats_path, lambda s: any(e.get("seq") == count - 1 for e in s), 30, "the last line"
        )
        time.sleep(0.5)
    finally:
        term.close()
        sleeper.kill()
        sleeper.wait()
    stats = read_stats(stats_path)
    handled = [e["t"] for e in stats if e["kind"] == "key"]
    if len(handled) != len(pressed):
        raise RuntimeError(f"{kind}: {len(pressed)} keys pressed, {len(handled)} handled")
    delays = [(h - p) / 1e9 for p, h in zip(pressed, handled, strict=True)]
    lags = [e["lag"] for e in stats if e["kind"] == "line" and e.get("lag") and e["seq"] >= 0]
    last = max((e["seq"] for e in stats if e["kind"] == "line"), default=-1)
    return delays, lags, last


def app_argv_child(config: Path, stats: Path, *extra: str) -> list[str]:
    return [*child_argv("app", stats), "--config", str(config), *extra]


# -- memory after 1,000,000 lines -----------------------------------------------------------------
def write_bulk(path: Path, lines: int) -> None:
    pad = "y" * MEMORY_LINE
    with open(path, "w") as out:
        for start in range(0, lines, 10_000):
            out.write(
                "".join(
                    f"{seq} 0 {pad}"[: MEMORY_LINE - 1] + "\n"
                    for seq in range(start, min(lines, start + 10_000))
                )
            )


def memory(host: Host, work: Path, kind: str, lines: int) -> tuple[float, float, float, float]:
    """(RSS at start, RSS after, peak RSS, seconds to catch up) in MiB / s."""
    _, output = host.new_run()
    log = output / "train.log"
    write_bulk(log, lines)
    sleeper = subprocess.Popen(["sleep", "600"])
    host.status_for(output, sleeper.pid)
    stats_path = work / f"memory-{kind}.jsonl"
    argv = (
        app_argv_child(host.config, stats_path, "--expect", str(lines))
        if kind == "ours"
        else [*child_argv("bare", stats_path), "--follow", str(log), "--expect", str(lines)]
    )
    started = time.monotonic()
    term = Terminal(argv, term_env())
    try:
        term.wait_frame(30)
        from common import rss_mib

        at_start = rss_mib(term.pid)[0]
        stats = wait_stats(
            stats_path, lambda s: any(e["kind"] == "memory" for e in s), 240, "memory"
        )
    finally:
        term.close()
        sleeper.kill()
        sleeper.wait()
    done = next(e for e in stats if e["kind"] == "memory")
    last = next(e for e in stats if e["kind"] == "line" and e["seq"] == lines - 1)
    return at_start, done["rss"], done["peak"], last["t"] / 1e9 - started


# -- main ----------------------------------------------------------------------------------------
FIGURES = ("cold", "idle", "keys", "memory")


def main(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="pacerid-bench-home-"))
    os.environ["PACERID_HOME"] = str(home)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    from common import loadavg, machine

    quick = args.quick
    wanted = args.only or FIGURES
    config = REPO / "configs" / "local.yaml"
    work = home / "bench"
    work.mkdir()
    print(f"# dashboard — {machine()}")
    found: dict[str, Any] = {}
    host: Host | None = None
    try:
        if "cold" in wanted:
            found["cold"] = cold_start(config, args.repeats or (2 if quick else 5), args.repo or [])
            print(f"cold start done (load {loadavg()})", file=sys.stderr)
        if set(wanted) - {"cold"}:
            host = Host(config)
        if "idle" in wanted and host:
            found["idle"] = idle_cpu(host, work, 8.0 if quick else 20.0, args.repo or [])
            print(f"idle CPU done (load {loadavg()})", file=sys.stderr)
        if "keys" in wanted and host:
            seconds = 5.0 if quick else 12.0
            found["keys"] = {
                k: key_latency(host, work, k, args.rate, seconds) for k in ("bare", "ours")
            }
            print(f"key latency done (load {loadavg()})", file=sys.stderr)
        if "memory" in wanted and host:
            lines = args.lines or (200_000 if quick else 1_000_000)
            found["memory"] = (lines, {k: memory(host, work, k, lines) for k in ("bare", "ours")})
            print(f"memory done (load {loadavg()})", file=sys.stderr)
    finally:
        if host is not None:
            host.close()
        shutil.rmtree(home, ignore_errors=True)
    print(f"load average at the end: {loadavg()}\n")
    report(found, args.rate)


def report(found: dict[str, Any], rate: float) -> None:
    from common import median, percentile, row, verdict

    ms = 1000.0
    context = []
    print(row("figure", "baseline", "pacerid-tui", "ratio", "target", ""))
    print(row("---", "---:", "---:", "---:", "---", "---"))
    if "cold" in found:
        starts = found["cold"]
        base_s = median(starts["bare"])
        for name in (n for n in starts if n.startswith("ours")):
            ours_s = median(starts[name])
            print(
                row(
                    f"cold start to first frame, {name} (median of {len(starts[name])})",
                    f"{base_s:.2f} s (bare Textual)",
                    f"{ours_s:.2f} s",
                    f"{ours_s / base_s:.2f}×",
                    "≤ 1.5× bare",
                    verdict(ours_s <= 1.5 * base_s),
                )
            )
            context.append(f"cold start, all runs (s), {name}: {starts[name]}")
        context.append(f"cold start, all runs (s), bare: {starts['bare']}")
        context.append(
            f"python -c pass: {median(starts['python -c pass']):.3f} s (the interpreter alone)"
        )
    if "idle" in found:
        cpu = found["idle"]
        for name in (n for n in cpu if n.startswith("ours")):
            print(
                row(
                    f"idle CPU following one run, {name} (% of one core)",
                    f"{cpu['bare']:.1f} % (bare Textual) / {cpu['ssh tail -F']:.2f} % "
                    "(ssh tail -F)",
                    f"{cpu[name]:.1f} %",
                    f"{cpu[name] / max(cpu['bare'], 0.01):.1f}× bare",
                    "≤ 3 %",
                    verdict(cpu[name] <= 3.0),
                )
            )
        context.append(f"idle CPU, host-side embedded SSH server: {cpu['host SSH server']:.1f} %")
    if "memory" in found:
        lines, mem = found["memory"]
        b_mem, o_mem = mem["bare"], mem["ours"]
        print(
            row(
                f"RSS after {lines:,} log lines (peak)",
                f"{b_mem[1]:.0f} MiB ({b_mem[2]:.0f})",
                f"{o_mem[1]:.0f} MiB ({o_mem[2]:.0f})",
                f"{o_mem[1] / b_mem[1]:.2f}×",
                "≤ 150 MB",
                verdict(o_mem[1] * 2**20 / 1e6 <= 150),
            )
        )
        context.append(
            f"RSS at first frame: ours {o_mem[0]:.0f} MiB, bare {b_mem[0]:.0f} MiB; "
            f"catch-up of {lines:,} lines: ours {o_mem[3]:.1f} s, bare {b_mem[3]:.1f} s"
        )
    if "keys" in found:
        (b_keys, b_lags, _b_last), (o_keys, o_lags, _o_last) = (
            found["keys"]["bare"],
            found["keys"]["ours"],
        )
        print(
            row(
                f"key delay at {rate:,.0f} lines/s, p50 / p99 / max ({len(o_keys)} keys)",
                f"{percentile(b_keys, 50) * ms:.0f} / {percentile(b_keys, 99) * ms:.0f} / "
                f"{max(b_keys) * ms:.0f} ms",
                f"{percentile(o_keys, 50) * ms:.0f} / {percentile(o_keys, 99) * ms:.0f} / "
                f"{max(o_keys) * ms:.0f} ms",
                f"{percentile(o_keys, 99) / percentile(b_keys, 99):.1f}× (p99)",
                "≤ 200 ms",
                verdict(percentile(o_keys, 99) <= 0.2),
            )
        )
        context.append(
            f"log pane lag behind the writer at {rate:,.0f} lines/s, p50 / max: "
            f"ours {percentile(o_lags, 50) * ms:.0f} / {max(o_lags) * ms:.0f} ms, "
            f"bare {percentile(b_lags, 50) * ms:.0f} / {max(b_lags) * ms:.0f} ms"
        )
    print("\ncontext:")
    for line in context:
        print(f"  {line}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, 200,000 lines")
    parser.add_argument("--rate", type=float, default=10_000.0, help="lines/s for key latency")
    parser.add_argument("--lines", type=int, default=None, help="lines for the memory figure")
    parser.add_argument(
        "--repo",
        type=Path,
        action="append",
        help="cold start and idle CPU of this checkout instead (repeatable: e.g. the base commit "
        "and this one)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="cold starts of each (median)")
    parser.add_argument(
        "--only", nargs="+", choices=FIGURES, help="measure only these figures (default: all)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main(parse())
