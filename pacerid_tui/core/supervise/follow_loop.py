"""Following a training run to its end: logs and metrics streamed, results saved meanwhile.

`Supervisor.follow` delegates here. The file tailing itself is `follow.Follower`; this module
decides when training has ended (a terminal metrics event, the trainer process gone, or the
instance gone), records each epoch in the registry, downloads new results in the background
so they are never only on the host, and reconnects, asking the provider only when the host
does not answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from pacerid_tui.core.kernel import forecast, host_records
from pacerid_tui.core.kernel.errors import HostError, InstanceGone, PaceridError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import MetricEvent, Run
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.remote.file_follower import Follower
from pacerid_tui.core.remote.host_contract import HostPaths

if TYPE_CHECKING:
    from pacerid_tui.core.steps.lifecycle import Lifecycle

TERMINAL_EVENTS = ("done", "interrupted", "error")
RECONNECT_DEADLINE_S = 60.0
"""While following, how long one reconnect tries before asking the provider if the host lives."""
LIVENESS_POLL_S = 5.0
"""While following, how often to ask whether the trainer process still lives."""


async def follow_run(
    lifecycle: Lifecycle,
    run: Run,
    *,
    stop: asyncio.Event | None = None,
    on_end: Callable[[MetricEvent], None] | None = None,
    on_epoch: Callable[[MetricEvent], None] | None = None,
    on_stall: Callable[[MetricEvent], None] | None = None,
) -> str:
    """Stream train.log, metrics.jsonl and system.jsonl until training ends; how it ended.

    Returns the last event ("done", "interrupted", "error"), "stopped" when the trainer died
    without one, "gone" when the instance itself ended, or "cancelled" when `stop` was set.
    Each new epoch's metrics, logs and best weights (and, with `output.checkpoints:
    every_epoch`, its checkpoints) are downloaded in the background meanwhile, so results are
    never only on the host; the full checkpoint comes when the run is saved (notice, stop, end).
    `on_end` is given the terminal event that ended it, `on_epoch` each epoch's event, `on_stall`
    the host's `stall` event (trainer/stall.py) of this training.
    """
    host = HostPaths(run.run_id)
    log, metrics = f"{host.output}/train.log", f"{host.output}/metrics.jsonl"
    system = f"{host.output}/system.jsonl"
    ended = asyncio.Event()
    outcome = "cancelled"
    output = lifecycle.config_of(run).output
    background, every_epoch = output.download_during_training, output.checkpoints == "every_epoch"
    started_at = lifecycle.registry.get(run.run_id).training_started_at or 0.0
    saving: asyncio.Task[object] | None = None

    def on_lines(path: str, lines: list[str]) -> None:
        nonlocal outcome, saving
        if path == log:
            lifecycle.listener.lines(run.run_id, "train", lines)
            return
        if path == system:
            _samples(lifecycle, run, lines)
            return
        for line in lines:
            event = host_records.metric(line)
            if event is None:
                continue
            _record(lifecycle, run, event)
            if event.event == "epoch" and on_epoch is not None:
                on_epoch(event)
            if event.event == "stall" and event.time >= started_at and on_stall is not None:
                on_stall(event)
            if event.event in TERMINAL_EVENTS and event.time >= started_at:
                outcome = event.event
                ended.set()
                if on_end is not None:  # the supervisor reads why it was interrupted
                    on_end(event)
            elif event.event == "epoch" and background and (saving is None or saving.done()):
                saving = asyncio.create_task(_quiet_download(lifecycle, run, every_epoch))

    async def watch() -> None:
        nonlocal outcome
        while not ended.is_set():
            await asyncio.sleep(LIVENESS_POLL_S)
            try:
                state = await lifecycle.training_state(run)
            except (HostError, OSError, asyncssh.Error, InstanceGone):
                continue
            if not state.alive and not ended.is_set():
                await asyncio.sleep(1.0)  # let the follower read the trainer's last lines
                outcome = "stopped" if outcome == "cancelled" else outcome
                ended.set()

    follower = Follower(
        lambda: _fresh_connection(lifecycle, run),
        [log, metrics, system],
        on_lines,
        report=lambda m: lifecycle.listener.report(run.run_id, m),
    )
    watcher = asyncio.create_task(watch())
    try:
        await follower.run(lambda: ended.is_set() or (stop is not None and stop.is_set()))
    except InstanceGone as gone:
        lifecycle.listener.report(run.run_id, str(gone))
        return "gone"
    finally:
        watcher.cancel()
        if saving is not None:
            await asyncio.gather(saving, return_exceptions=True)
    return outcome


def _record(lifecycle: Lifecycle, run: Run, event: MetricEvent) -> None:
    lifecycle.listener.metric(run.run_id, event)
    if event.event == "superseded":  # resumed from an older checkpoint: those epochs run again
        lifecycle.update(run, epoch=event.epoch)
    elif event.event == "epoch":
        now = lifecycle.registry.get(run.run_id)
        ends, seconds = forecast.with_epoch(
            now.epoch_ends,
            now.epoch_seconds,
            event.epoch or len(now.epoch_ends) + 1,
            event.time,
            now.training_started_at,
        )
        lifecycle.update(
            run,
            epoch_ends=ends,
            epoch_seconds=seconds,
            epoch=event.epoch,
            epochs=event.epochs or run.epochs,
            train_loss=event.train_loss,
            val_loss=event.val_loss,
            val_acc=event.val_acc,
        )


def _samples(lifecycle: Lifecycle, run: Run, lines: list[str]) -> None:
    for line in lines:
        sample = host_records.sample(line)
        if sample is not None:
            lifecycle.listener.system(run.run_id, sample)


async def _quiet_download(lifecycle: Lifecycle, run: Run, checkpoints: bool) -> None:
    try:
        await lifecycle.download(run, checkpoints=checkpoints)
    except (PaceridError, OSError, asyncssh.Error) as err:
        lifecycle.listener.report(
            run.run_id, f"Background download failed ({err}); will try again next epoch."
        )


async def _fresh_connection(lifecycle: Lifecycle, run: Run) -> asyncssh.SSHClientConnection:
    """A new connection for the follower; InstanceGone once the provider says it ended.

    The provider is asked only when the host does not answer: reconnects stay one SSH
    handshake, and a host that is gone for good (spot reclaimed it) ends the follow.
    """
    instance = lifecycle.live_instance(run)
    try:
        target = await lifecycle.ssh_target(run, instance)
        return await ssh.connect(
            target,
            deadline_s=RECONNECT_DEADLINE_S,
            report=lambda m: lifecycle.listener.report(run.run_id, m),
        )
    except HostError:
        [now] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
        if now.instance is None or not now.instance.state.is_alive:
            reason = now.instance.state_reason if now.instance else None
            raise InstanceGone(
                f"Instance {instance.instance_id} ended ({reason or 'gone'})."
            ) from None
        raise
