"""The subcommands: thin wrappers that pick the run, call the lifecycle and print."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core import ssh, sync
from pacerid_tui.core.errors import UsageError
from pacerid_tui.core.lifecycle import Lifecycle, Listener
from pacerid_tui.core.models import MetricEvent, Run
from pacerid_tui.core.registry import Registry
from pacerid_tui.core.status import RunStatus

DEFAULT_CONFIG = Path("configs/local.yaml")


class Printer(Listener):
    """Prints what the lifecycle says: progress to stderr, host output to stdout."""

    def __init__(self, show_metrics: bool = True) -> None:
        self.show_metrics = show_metrics

    def report(self, run_id: str, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def lines(self, run_id: str, source: str, lines: list[str]) -> None:
        print("\n".join(lines), flush=True)

    def metric(self, run_id: str, event: MetricEvent) -> None:
        if self.show_metrics and event.event == "interrupted":
            print(f"Training interrupted: {event.message}", file=sys.stderr, flush=True)

    def progress(self, run_id: str, step: str, progress: sync.Progress) -> None:
        if sys.stderr.isatty() and progress.bytes_total:
            share = progress.bytes_done / progress.bytes_total
            print(
                f"\r{step}: {share:4.0%} of {progress.bytes_total / 1e6:.1f} MB, "
                f"{progress.files_done}/{progress.files_total} files",
                end="",
                file=sys.stderr,
            )
            if progress.files_done == progress.files_total:
                print(file=sys.stderr)


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config else DEFAULT_CONFIG


def pick_run(lifecycle: Lifecycle, args: argparse.Namespace) -> Run:
    """--run, else the newest run of the config's provider when --config is given, else newest."""
    if args.run:
        return lifecycle.registry.get(args.run)
    if args.config:
        provider = load_config(args.config).instance.provider
        runs = [run for run in lifecycle.registry.runs() if run.provider == provider]
        if not runs:
            raise UsageError(
                f"No {provider} runs yet; start one with "
                f"`pacerid-tui launch --config {args.config}`."
            )
        return runs[-1]
    return lifecycle.registry.get(None)


async def dispatch(command: str, args: argparse.Namespace) -> int:
    lifecycle = Lifecycle(Registry(paths.registry_file()), Printer())
    try:
        return await _dispatch(lifecycle, command, args)
    finally:
        lifecycle.close()


async def _dispatch(lifecycle: Lifecycle, command: str, args: argparse.Namespace) -> int:
    if command == "launch":
        path = config_path(args)
        run = lifecycle.create_run(path, load_config(path))
        print(f"Run {run.run_id} created.", file=sys.stderr)
        run = await lifecycle.launch(run)
        print(run.run_id)
        return 0
    if command == "all":
        path = config_path(args)
        run = lifecycle.create_run(path, load_config(path))
        run = await lifecycle.run_all(run)
        await lifecycle.terminate(run)
        return 0
    if command == "status":
        return await status(lifecycle, args)
    if command == "adopt":
        run = await lifecycle.adopt(args.instance, config_path(args))
        print(run.run_id)
        return 0
    if command == "terminate" and args.instance:
        await lifecycle.terminate_instance(args.instance, load_config(config_path(args)))
        return 0
    run = pick_run(lifecycle, args)
    if command == "upload":
        await lifecycle.upload(run)
    elif command == "setup":
        await lifecycle.setup(run)
    elif command == "data":
        await lifecycle.data(run)
    elif command == "train":
        await lifecycle.train(run, resume=args.resume)
        if args.follow:
            await lifecycle.follow(run)
    elif command == "logs":
        await logs(lifecycle, run, follow=args.follow)
    elif command == "download":
        await lifecycle.download(run)
    elif command == "terminate":
        await lifecycle.terminate(run)
    elif command == "ssh":
        return open_ssh(lifecycle, run, args.remote)
    elif command == "export":
        from pacerid_tui.cli.model import export

        await export(lifecycle, run, args.checkpoint)
    elif command == "sync-model":
        from pacerid_tui.cli.model import sync_model

        sync_model(lifecycle, run, args.version, force=args.force)
    return 0


async def logs(lifecycle: Lifecycle, run: Run, *, follow: bool) -> None:
    if follow:
        await lifecycle.follow(run)
        return
    conn = await lifecycle.connection(run)
    log = f"pacerid/{run.run_id}/output/train.log"
    result = await ssh.run(conn, f"cat {ssh.quote(log)} 2>/dev/null || true")
    sys.stdout.write(result.stdout)


def open_ssh(lifecycle: Lifecycle, run: Run, remote: list[str]) -> int:
    """Replace this process with the system ssh client, set up for this host."""
    instance = lifecycle.registry.get(run.run_id).instance
    if instance is None or not instance.state.is_alive:
        raise UsageError(f"Run {run.run_id} has no running instance; launch it first.")
    argv = ssh.Target.of(instance, paths.known_hosts_file()).ssh_argv(*remote)
    if not paths.known_hosts_file().exists():
        raise UsageError("The host key is not pinned yet; run `pacerid-tui upload` first.")
    sys.stdout.flush()
    os.execvp(argv[0], argv)


async def status(lifecycle: Lifecycle, args: argparse.Namespace) -> int:
    runs = await lifecycle.refresh(lifecycle.registry.runs())
    rows = await lifecycle.statuses(runs, now=time.time())
    unknown = await lifecycle.orphans(load_config(config_path(args)))
    if args.json:
        body = {
            "runs": [dataclasses.asdict(row) for row in rows],
            "unknown_instances": [
                {
                    "instance_id": i.instance_id,
                    "provider": i.provider,
                    "state": i.state.value,
                    "launched_at": i.launched_at,
                    "run_id": i.run_id,
                }
                for i in unknown
            ],
        }
        print(json.dumps(body, indent=2))
        return 0
    if rows:
        print(format_table(rows))
    else:
        print("No runs yet. Start one: pacerid-tui launch --config configs/local.yaml")
    for instance in unknown:
        print(
            f"\nUnknown instance of ours: {instance.instance_id} ({instance.provider}, "
            f"{instance.state.value}, run {instance.run_id or '?'}), still billing. "
            f"Adopt it: pacerid-tui adopt {instance.instance_id}; or end it: "
            f"pacerid-tui terminate --instance {instance.instance_id}"
        )
    return 0


def format_table(rows: list[RunStatus]) -> str:
    header = ("RUN", "PROVIDER", "TYPE", "ZONE", "STATE", "UPTIME", "PRICE/H", "COST", "EPOCH")
    body = [
        (
            row.run_id,
            row.provider,
            row.instance_type or "-",
            row.zone or "-",
            row.state + (f" ({row.state_reason})" if row.state_reason else ""),
            _duration(row.uptime_s),
            f"${row.price_per_hour:.4f}" if row.price_per_hour is not None else "-",
            f"${row.cost_usd:.4f}",
            f"{row.epoch or 0}/{row.epochs or '?'}",
        )
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False))
        for line in [header, *body]
    ).rstrip()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
