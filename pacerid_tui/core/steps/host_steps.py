"""The steps done on the run's host over SSH: upload, setup, data, train, download, and asking
how training stands.

`Lifecycle` (lifecycle.py) offers them to every caller; they live here, apart from launching,
ending and listing instances, because they share one way of working that those do not: over the
run's SSH connection, beating the host's heartbeat while they run (`keeps_the_host`), streaming
the host's log lines to the listener, and recording themselves in `run.steps_done`. Each takes
the lifecycle as `HostSide`, what it needs of it, so this module never imports lifecycle.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol

from pacerid_tui import paths
from pacerid_tui.core.kernel.errors import HostError, UsageError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.remote import ssh, sync
from pacerid_tui.core.remote.heartbeat import Steps, keeps_the_host
from pacerid_tui.core.remote.host_contract import (
    HostPaths,
    TrainingState,
    code_files,
    watchdog_settings,
)
from pacerid_tui.core.steps import stop_mode
from pacerid_tui.core.steps.credentials import kaggle_credentials
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.core.steps.run_listener import Listener


class HostSide(Steps, Protocol):
    """What a host step needs of the lifecycle."""

    registry: Registry
    listener: Listener

    def update(self, run: Run, **changes: object) -> Run: ...

    def results_dir(self, run: Run) -> Path: ...

    async def upload(self, run: Run) -> sync.SyncStats: ...

    async def training_state(self, run: Run) -> TrainingState: ...


def record_done(steps: HostSide, run: Run, step: str) -> Run:
    """Record a step in `run.steps_done`, once."""
    run = steps.registry.get(run.run_id)
    if step in run.steps_done:
        return run
    return steps.update(run, steps_done=[*run.steps_done, step])


def say(steps: HostSide, run: Run, message: str) -> None:
    steps.listener.report(run.run_id, message)


@keeps_the_host
async def upload(steps: HostSide, run: Run) -> sync.SyncStats:
    """Delta-sync trainer/, configs/ and the run's config (and a local dataset) to the host."""
    config = steps.config_of(run)
    conn = await steps.connection(run)
    host = HostPaths(run.run_id)
    files = code_files(paths.run_config_file(run.run_id), config.data.excludes)
    stats = await sync.upload(
        conn,
        files,
        host.code,
        on_progress=lambda p: steps.listener.progress(run.run_id, "upload", p),
    )
    say(
        steps,
        run,
        f"Upload: {stats.files_sent} of {stats.files_listed} files sent "
        f"({stats.bytes_sent / 1e6:.2f} MB), {stats.files_deleted} deleted.",
    )
    if config.data.source == "local" and config.data.local_dir:
        data_files = sync.local_tree(
            Path(config.data.local_dir).expanduser(), sync.Excludes(config.data.excludes)
        )
        data = await sync.upload(
            conn,
            data_files,
            host.data,
            on_progress=lambda p: steps.listener.progress(run.run_id, "upload", p),
        )
        say(steps, run, f"Dataset: {data.files_sent} of {data.files_listed} files sent.")
    record_done(steps, run, "upload")
    return stats


async def _stream(steps: HostSide, run: Run, source: str, command: str, stdin: str | None) -> None:
    conn = await steps.connection(run)
    status = await ssh.stream(
        conn,
        command,
        lambda line: steps.listener.lines(run.run_id, source, [line]),
        input=stdin,
    )
    if status != 0:
        raise HostError(
            f"The {source} step failed on the host (exit {status}); "
            f"its log is in output/{source}.log there and above."
        )


@keeps_the_host
async def setup(steps: HostSide, run: Run) -> None:
    """Run the shipped setup script (idempotent: instant the second time)."""
    if "upload" not in steps.registry.get(run.run_id).steps_done:
        await steps.upload(run)
    host = HostPaths(run.run_id)
    run = steps.registry.get(run.run_id)
    instance = steps.live_instance(run)
    settings = watchdog_settings(steps.config_of(run), instance, run.cost_usd)
    conn = await steps.connection(run)
    await ssh.run(
        conn,
        f"mkdir -p {host.shell_root} && cat > {host.shell_root}/watchdog.json",
        input=settings.json(),
    )
    for name, content in stop_mode.boot_files(run.run_id, instance).items():
        await ssh.run(conn, f"cat > {host.shell_root}/{name}", input=content)
    say(steps, run, "Setting up the host…")
    await _stream(steps, run, "setup", host.setup_command(), None)
    record_done(steps, run, "setup")


@keeps_the_host
async def data(steps: HostSide, run: Run) -> None:
    """Fetch the dataset on the host: Kaggle (credentials via stdin only) or synthetic."""
    config = steps.config_of(run)
    host = HostPaths(run.run_id)
    log = f"{host.shell_root}/output/data.log"
    if config.data.source == "kaggle":
        stdin = json.dumps(kaggle_credentials()) + "\n"
        args = host.trainer_args("download", "--credentials-stdin")
    elif config.data.source == "synthetic":
        stdin, args = None, host.trainer_args("synthetic")
    else:
        say(steps, run, "Dataset uploaded from this machine; nothing to fetch.")
        record_done(steps, run, "data")
        return
    say(steps, run, f"Preparing the {config.data.source} dataset on the host…")
    command = f"mkdir -p {host.shell_root}/output && {host.python(*args)} 2>&1 | tee -a {log}"
    await _stream(steps, run, "data", f"set -o pipefail; {command}", stdin)
    record_done(steps, run, "data")


async def training_state(steps: HostSide, run: Run) -> TrainingState:
    conn = await steps.connection(run)
    result = await ssh.run(conn, HostPaths(run.run_id).training_state_command())
    return TrainingState.parse(result.stdout)


async def train(steps: HostSide, run: Run, resume: str = "auto") -> None:
    """Start training detached on the host; refuse when it is already running."""
    state = await steps.training_state(run)
    if state.alive:
        raise UsageError(
            f"Training of {run.run_id} is already running (epoch {state.epoch or 0}/"
            f"{state.epochs or '?'}); follow it with `pacerid-tui logs --follow`."
        )
    conn = await steps.connection(run)
    host_now = float((await ssh.run(conn, "date +%s")).stdout.strip() or 0)
    steps.update(run, training_started_at=host_now)
    await ssh.run(conn, HostPaths(run.run_id).train_command(resume))
    say(steps, run, "Training started on the host (tmux session `training`).")
    record_done(steps, run, "train")


@keeps_the_host  # a long download after training must not trip the watchdog's idle limit
async def download(steps: HostSide, run: Run, *, checkpoints: bool = True) -> sync.SyncStats:
    """Fetch output/ (new or changed files only); epoch checkpoints only when configured.
    `checkpoints=False` (during training) leaves the resumable checkpoints on the host."""
    output = steps.config_of(run).output
    final = output.checkpoints == "every_epoch"  # else latest is all that model_final holds
    conn, target = await steps.connection(run), steps.results_dir(run)
    try:
        stats = await sync.download(
            conn,
            HostPaths(run.run_id).output,
            target,
            wanted=HostPaths.results_filter(checkpoints, output.download_epoch_checkpoints, final),
            on_progress=lambda p: steps.listener.progress(run.run_id, "download", p),
        )
    except (asyncssh.Error, OSError) as err:  # the host went away mid-way (SFTP lost)
        raise HostError(
            f"The download from {run.run_id}'s host was cut off ({err}); download again: "
            "only what is missing is fetched."
        ) from err
    say(
        steps,
        run,
        f"Download: {stats.files_sent} new or changed of {stats.files_listed} "
        f"files ({stats.bytes_sent / 1e6:.2f} MB) into {target}.",
    )
    run = record_done(steps, run, "download")
    total = run.bytes_downloaded + stats.bytes_sent
    saved = {"downloaded_at": time.time()} if checkpoints else {}  # resumable from here
    steps.update(run, bytes_downloaded=total, **saved)
    return stats
