"""Managed recovery from a spot interruption: the run moves to a new instance and goes on.

Only a real interruption is recovered (`ending`): the trainer's notice (exit 75, an
"interrupted" event) or EC2's `Server.SpotInstanceTermination`. Our own stops (the budget, the
host's watchdog for max runtime or idle, a terminate) end the run, with their reason; an
instance that is simply gone, reason unknown (EC2 forgets terminated instances after about an
hour: the laptop slept), is relaunched only when the user says so.

The run keeps its identity: the old instance's cost is added to `run.cost_usd`, the interruption
is listed, and the new host gets the code, the data, the latest checkpoint and the metrics and
log so far, so training resumes after the last finished epoch and the loss curve continues.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pacerid_tui.core.kernel import cost
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Instance, Run
from pacerid_tui.core.kernel.price_table import prices_for
from pacerid_tui.core.remote.host_contract import HostPaths
from pacerid_tui.core.steps.budget_rule import STOP_REASON
from pacerid_tui.core.supervise.budget import STALL_REASON

if TYPE_CHECKING:
    from pacerid_tui.core.steps.lifecycle import Lifecycle

SAVE_TIMEOUT_S = 120.0
"""A spot host has two minutes after its notice: saving from it is worth that long at most."""
CARRIED_OVER = ("checkpoint_latest.pt", "checkpoint_best.pt", "metrics.jsonl", "train.log")
INTERRUPTED_CODES = ("Server.SpotInstanceTermination",)
"""EC2 reclaimed the instance: recovered."""
OWN_STOP_CODES = ("Client.InstanceInitiatedShutdown", "Client.UserInitiatedShutdown")
"""Powered off from inside (our watchdog: budget, max runtime, idle) or terminated on request."""

NOTICE = "spot interruption notice"
"""How the trainer's "interrupted" event begins when the spot notice stopped it
(trainer/interrupt.py); a signal says "received SIGTERM" instead."""

Ending = Literal["recover", "ended", "unknown"]


def ending(outcome: str, instance: Instance | None, why: str | None = None) -> Ending:
    """What an ended follow means for the run: recover it, it ended by our own stop, or its
    instance is gone for a reason nobody knows (ask the user). `why`: the trainer's
    "interrupted" message, where the follow saw one."""
    code = instance.state_code if instance else None
    reason = instance.state_reason if instance else None
    if code in OWN_STOP_CODES or reason in (STOP_REASON, STALL_REASON):
        return "ended"  # a trainer stopped by our own power-off says "interrupted" too
    if code in INTERRUPTED_CODES:
        return "recover"
    if outcome == "interrupted":
        # The notice, yes; a SIGTERM seen before EC2 says why (our watchdog powering the host
        # off, someone's `kill`) is no proof of an interruption: asked, never relaunched alone.
        return "recover" if why is None or why.startswith(NOTICE) else "unknown"
    return "unknown"


def how_it_ended(run: Run) -> str:
    """One sentence on how a run's instance ended, for the user."""
    instance = run.instance
    if instance is None:
        return f"{run.run_id} has no instance."
    why = instance.state_reason or "no reason known"
    trained = f"after epoch {run.epoch or 0} of {run.epochs or '?'}"
    return f"{run.run_id} ended {trained}: {instance.instance_id} {instance.state.value} ({why})."


async def recover(lifecycle: Lifecycle, run: Run, why: str) -> Run:
    config = lifecycle.config_of(run)
    if len(run.interruptions) >= config.instance.max_recoveries:
        raise PaceridError(
            f"{run.run_id} was interrupted {len(run.interruptions)} times, the limit "
            "(instance.max_recoveries); resume it yourself with `pacerid-tui all` or raise it."
        )
    old = run.instance
    assert old is not None
    lifecycle.listener.alert(
        run.run_id,
        f"{run.run_id}: training {why} on {old.instance_id}; recovering on a new instance.",
    )
    if old.state.is_alive:
        try:
            await asyncio.wait_for(lifecycle.download(run), SAVE_TIMEOUT_S)
        except (PaceridError, OSError, asyncssh.Error, asyncio.TimeoutError) as err:
            lifecycle.listener.report(run.run_id, f"Could not save from the old host: {err}")
        run = await lifecycle.terminate(run)
        old = run.instance or old
    now = time.time()
    history = await lifecycle.prices.history(lifecycle.provider_of(run), old, now)
    where = prices_for(old.provider, old.region)
    gb = old.volume_gb or config.instance.root_volume_gb or 0
    parts = cost.instance_parts(history, old.launched_at or now, old.ended_at or now, gb, where)
    before = run.earlier_parts or {"compute": run.cost_usd}
    earlier = cost.CostParts(**before) + parts
    note = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {old.instance_id}: {why}"
    run = lifecycle.registry.update(
        run.run_id,
        cost_usd=earlier.total,
        earlier_parts=dataclasses.asdict(earlier),
        interruptions=[*run.interruptions, note],
        previous_instances=[*run.previous_instances, old.instance_id],
        instance=None,
        steps_done=[],
        ended=None,
    )
    run = await lifecycle.launch(run)
    await lifecycle.upload(run)
    await lifecycle.setup(run)
    await lifecycle.data(run)
    await carry_over(lifecycle, run)
    await lifecycle.train(run)
    return lifecycle.registry.get(run.run_id)


async def carry_over(lifecycle: Lifecycle, run: Run) -> None:
    """Put the saved checkpoints, metrics and log on the new host, where the trainer resumes."""
    results = lifecycle.results_dir(run)
    files = [results / name for name in CARRIED_OVER if (results / name).exists()]
    if not any(path.name == "checkpoint_latest.pt" for path in files):
        lifecycle.listener.report(run.run_id, "No checkpoint was saved; training starts over.")
    output = HostPaths(run.run_id).output
    conn = await lifecycle.connection(run)
    async with conn.start_sftp_client() as sftp:
        await sftp.makedirs(output, exist_ok=True)
        for path in files:
            await sftp.put(str(path), f"{output}/{Path(path).name}", preserve=True)
    lifecycle.listener.report(run.run_id, f"Carried {len(files)} files over to the new host.")
