"""The subcommands: thin wrappers that pick the run, call the lifecycle and print."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pacerid_tui import paths
from pacerid_tui.cli.ending_notices import Endings
from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import UsageError
from pacerid_tui.core.kernel.models import MetricEvent, Notice, Run
from pacerid_tui.core.remote import ssh, sync
from pacerid_tui.core.remote.host_contract import INTERRUPTED_EXIT, HostPaths
from pacerid_tui.core.results import delivery
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.core.steps.status import COLUMNS, RunStatus, cells
from pacerid_tui.core.steps.status import row as status_row
from pacerid_tui.core.supervise import orphans
from pacerid_tui.core.supervise.failure import follow_or_clean_up, run_all_or_clean_up
from pacerid_tui.core.supervise.supervisor import Supervisor


class Printer(Listener):
    """Prints what the lifecycle says: progress to stderr, host output to stdout; keeps the
    endings the supervisor tells for the notices (`cli/ending_notices.py`)."""

    def __init__(self, show_metrics: bool = True) -> None:
        self.show_metrics = show_metrics
        self.endings = Endings()

    def report(self, run_id: str, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def lines(self, run_id: str, source: str, lines: list[str]) -> None:
        print("\n".join(lines), flush=True)

    def ended(self, run_id: str, notice: Notice) -> None:
        self.endings.add(run_id, notice)

    def noticed(self, run_id: str, notice: Notice) -> None:
        self.endings.now(run_id, notice)

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
    return paths.config_file(args.config)


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
    printer = Printer()
    lifecycle = Lifecycle(Registry(paths.registry_file()), printer)
    printer.endings.lifecycle = lifecycle
    try:
        return await _dispatch(lifecycle, command, args)
    finally:
        await printer.endings.announce(lifecycle)  # what a follow saw end, even if a step failed
        lifecycle.close()


async def _dispatch(lifecycle: Lifecycle, command: str, args: argparse.Namespace) -> int:
    if command == "launch":
        path = config_path(args)
        run = lifecycle.create_run(path, load_config(path, args.sets or ()))
        print(f"Run {run.run_id} created.", file=sys.stderr)
        run = await lifecycle.launch(run)
        print(run.run_id)
        return 0
    if command == "all":
        return await run_all(lifecycle, args)
    if command == "status":
        return await status(lifecycle, args)
    if command == "history":
        from pacerid_tui.cli.history_commands import show_history

        return await show_history(lifecycle, args)
    if command == "sweep":
        from pacerid_tui.cli.sweep import sweep

        return await sweep(lifecycle, args)
    if command == "doctor":
        from pacerid_tui.cli.doctor_table import doctor

        return await asyncio.to_thread(doctor, config_path(args), args.json)
    if command == "adopt":
        path = config_path(args)
        config = load_config(path, args.sets or ())
        run = await orphans.adopt(lifecycle, args.instance, path, config)
        print(run.run_id)
        return 0
    if command == "terminate" and args.instance:
        await orphans.terminate_instance(lifecycle, args.instance, load_config(config_path(args)))
        return 0
    if getattr(args, "recover", False) and command in ("train", "logs") and not args.follow:
        raise UsageError(
            f"--recover applies to a follow; add --follow: `{command} --follow --recover`."
        )
    run = pick_run(lifecycle, args)
    if command == "mistakes":
        from pacerid_tui.cli.history_commands import show_mistakes

        return show_mistakes(lifecycle, run, args)
    if command == "upload":
        await lifecycle.upload(run)
    elif command == "setup":
        await lifecycle.setup(run)
    elif command == "data":
        await lifecycle.data(run)
    elif command == "train":
        await lifecycle.train(run, resume=args.resume)
        if args.follow:
            return await follow(lifecycle, run, args)
    elif command == "logs":
        if args.follow:
            return await follow(lifecycle, run, args)
        await logs(lifecycle, run)
    elif command == "download":
        await lifecycle.download(run)
    elif command == "terminate":
        await lifecycle.terminate(run)
    elif command == "ssh":
        return open_ssh(lifecycle, run, args.remote)
    elif command == "export":
        say = functools.partial(lifecycle.listener.report, run.run_id)
        exported = await delivery.export(lifecycle, run, args.checkpoint, report=say)
        say(delivery.export_summary(exported))
    elif command == "sync-model":
        synced = delivery.sync_model(lifecycle, run, args.version, force=args.force)
        lifecycle.listener.report(run.run_id, delivery.sync_summary(synced, args.version))
    return 0


def supervisor_for(
    lifecycle: Lifecycle, run: Run, args: argparse.Namespace, command: str
) -> Supervisor:
    """The run's supervisor for a CLI command; `--recover` is the CLI's answer to the
    dashboard's question: relaunch an instance gone for no known reason (even one left ended)."""

    async def asked(run: Run) -> bool:
        return True  # --recover said so; without it an error says how

    return Supervisor(
        lifecycle,
        run.run_id,
        ask=asked if args.recover else None,
        recover_left=args.recover,
        recover_command=command,
    )


async def follow(lifecycle: Lifecycle, run: Run, args: argparse.Namespace) -> int:
    """`train --follow`, `logs --follow`: to the end of training, recovering on the way as
    `all` does (a real interruption moves the run to a new instance and the follow goes on)."""
    supervisor = supervisor_for(lifecycle, run, args, "logs --follow")
    outcome = await follow_or_clean_up(lifecycle, supervisor)
    if outcome == "ended" and supervisor.ended:
        print(f"pacerid-tui: {supervisor.ended}", file=sys.stderr)
        now = lifecycle.registry.get(run.run_id)
        return 0 if (now.epoch or 0) >= (now.epochs or 1) else 1
    return ended(outcome)


async def run_all(lifecycle: Lifecycle, args: argparse.Namespace) -> int:
    """A new run from launch to download, then terminate; with --run, go on with that run
    (its instance relaunched only after a real interruption, or with --recover)."""
    if args.run:
        if args.sets:
            raise UsageError("--set applies to a new run; a run's config is frozen at launch.")
        run = lifecycle.registry.get(args.run)
    else:
        path = config_path(args)
        run = lifecycle.create_run(path, load_config(path, args.sets or ()))

    supervisor = supervisor_for(lifecycle, run, args, "all")
    run = await run_all_or_clean_up(
        lifecycle, run, keep=args.keep_on_failure, supervisor=supervisor
    )
    if run.instance is not None and run.instance.state.is_alive:
        await lifecycle.terminate(run)
    if supervisor.budget_stopped:
        return ended("stalled" if supervisor.stall_stopped else "budget")
    if supervisor.ended:
        print(f"pacerid-tui: {supervisor.ended}", file=sys.stderr)
        return 0 if (run.epoch or 0) >= (run.epochs or 1) else 1
    return 0


def ended(outcome: str) -> int:
    """Exit code of a follow: 0 when training finished well."""
    if outcome == "done":
        return 0
    reasons = {
        "interrupted": "training was interrupted (spot notice or SIGTERM); `pacerid-tui train` "
        "resumes it from the latest checkpoint",
        "error": "training failed; the log above says why",
        "stopped": "the trainer stopped without finishing; the log above says why",
        "gone": "the instance ended; `pacerid-tui all` recovers on a new one",
        "budget": "the run reached its budget (instance.budget_usd): results saved, instance "
        "terminated",
        "stalled": "training stalled (instance.on_stall: stop): results saved, instance terminated",
        "expired": "the stopped instance can never start again (its spot request closed), so it "
        "was terminated",
    }
    print(f"pacerid-tui: {reasons.get(outcome, outcome)}.", file=sys.stderr)
    return INTERRUPTED_EXIT if outcome == "interrupted" else 1


async def logs(lifecycle: Lifecycle, run: Run) -> None:
    conn = await lifecycle.connection(run)
    log = f"{HostPaths(run.run_id).output}/train.log"
    result = await ssh.run(conn, f"cat {ssh.quote(log)} 2>/dev/null || true")
    sys.stdout.write(result.stdout)


def open_ssh(lifecycle: Lifecycle, run: Run, remote: list[str]) -> int:
    """Replace this process with the system ssh client, set up for this host."""
    argv = lifecycle.connections.login_argv(run, *remote)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


async def status(lifecycle: Lifecycle, args: argparse.Namespace) -> int:
    """Every run, plus any live instance of ours that no run knows (it may be billing)."""
    now = time.time()
    runs = await lifecycle.refresh(lifecycle.registry.runs())
    rows = await lifecycle.statuses(runs, now=now)
    unknown = [
        status_row(Run(i.run_id or "?", i.provider, "", i.launched_at or now, instance=i), [], now)
        for i in await orphans.orphans(lifecycle, load_config(config_path(args)))
    ]
    if args.json:
        listed = [
            {**dataclasses.asdict(row), "over_budget": row.over_budget, "known": True}
            for row in rows
        ]
        listed += [{**dataclasses.asdict(row), "known": False} for row in unknown]
        print(json.dumps(listed, indent=2))
        return 0
    console = Console() if sys.stdout.isatty() else Console(width=240)  # pipes: never truncate
    if rows:
        console.print(table(rows, "Runs"))
        for run in runs:
            if run.placement:
                where = f"{run.run_id}: placed by the ranking: {run.placement}"
                console.print(where, markup=False, highlight=False)
            if run.ended:
                console.print(f"{run.run_id}: {run.ended}", markup=False, highlight=False)
    else:
        console.print(f"No runs yet. Start one: pacerid-tui launch --config {paths.DEFAULT_CONFIG}")
    if unknown:
        console.print(table(unknown, "Unknown instances of ours (may be billing)"))
        console.print(
            "Adopt one: [b]pacerid-tui adopt ID[/b]; or end it: "
            "[b]pacerid-tui terminate --instance ID[/b]"
        )
    return 0


def table(rows: list[RunStatus], title: str) -> Table:
    grid = Table(title=title, title_justify="left")
    for name in COLUMNS:
        grid.add_column(
            name, justify="right" if name in ("Price/h", "Cost") else "left", no_wrap=name == "Run"
        )
    for row in rows:
        grid.add_row(*cells(row))
    return grid
