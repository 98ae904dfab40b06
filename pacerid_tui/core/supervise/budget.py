"""Our own stops of a live run: save what training made (bounded in time), then terminate,
recording why. Two rules end a run so: the budget and a stall. And when the forecast that a
budget stop is coming is worth telling.

The budget's rule (what counts, the warning share, when to stop, the reason recorded) is
`steps/budget_rule.py`, which every status row carries; the supervisor (`supervisor.py`) reads
it from the run's row and calls `stop` here. A stall is found on the host (trainer/stall.py,
which asks the trainer to save first); with `instance.on_stall: stop` the supervisor calls
`stop_stalled`, which waits for the trainer to have ended, then saves and terminates the same
way. The host enforces both of its own (trainer/watchdog.py), for when this machine is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.remote.host_contract import TrainingState
from pacerid_tui.core.steps.budget_rule import STOP_REASON

if TYPE_CHECKING:
    from pacerid_tui.core.steps.lifecycle import Lifecycle
    from pacerid_tui.core.steps.status import RunStatus

WARM_EPOCHS = 2
"""Epochs measured before the forecast's epoch is told: the first one's warm-up (the model
built, the data cached) made it three times the next on 2 cores, and the news comes once."""
BUDGET_DOWNLOAD_S = 300.0
"""How long a budget stop may spend saving results before it terminates regardless."""
STALL_REASON = "training stalled"
"""The instance's recorded reason after a stall stop: our own stop, never recovered."""
SAVE_WAIT_S = 90.0
"""How long a stall stop waits for the trainer to have saved and ended: the host gives it 60 s
(trainer/stall.py SAVE_S) before it kills it."""


def foreseen(run: Run, row: RunStatus) -> bool:
    """Whether the forecast that the budget will stop the run (`row.budget_epoch`) is worth
    telling: on a pace past the first epoch's warm-up (`WARM_EPOCHS` measured), or when the
    money runs out in the epoch under way (no later look would come before the stop)."""
    if row.budget_epoch is None:
        return False
    measured = sum(1 for seconds in run.epoch_seconds if seconds > 0)
    return measured >= WARM_EPOCHS or row.budget_epoch <= (run.epoch or 0) + 1


async def stop(lifecycle: Lifecycle, run: Run, budget_usd: float) -> Run:
    """Save what training made (bounded in time), then terminate, recording why: on the
    instance (its reason) and with the run (`Run.ended`, so no later supervisor relaunches or
    asks about it)."""
    lifecycle.listener.alert(
        run.run_id,
        f"{run.run_id} reached its ${budget_usd:.2f} budget; saving results, then terminating.",
    )

    def ended(run: Run, which: str) -> str:
        return (
            f"{run.run_id} was stopped at its ${budget_usd:.2f} budget after epoch "
            f"{run.epoch or 0} of {run.epochs or '?'}{which}."
        )

    return await _save_then_terminate(lifecycle, run, STOP_REASON, ended)


async def stop_stalled(lifecycle: Lifecycle, run: Run, reason: str) -> Run:
    """`instance.on_stall: stop`: once the trainer the host asked to save has ended (bounded),
    save what training made, then terminate, recording why (the supervisor has told the
    stall)."""
    deadline = asyncio.get_running_loop().time() + SAVE_WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        try:
            state: TrainingState | None = await lifecycle.training_state(run)
        except (PaceridError, OSError, asyncssh.Error):
            state = None
        if state is not None and not state.alive:
            break
        await asyncio.sleep(1.0)

    def ended(run: Run, which: str) -> str:
        return (
            f"{run.run_id} was stopped after epoch {run.epoch or 0} of {run.epochs or '?'} "
            f"because training stalled: {reason}{which}."
        )

    return await _save_then_terminate(lifecycle, run, STALL_REASON, ended)


async def _save_then_terminate(
    lifecycle: Lifecycle, run: Run, why: str, ended: Callable[[Run, str], str]
) -> Run:
    """Download (bounded), terminate, and keep `why` with the instance and `ended(run, which
    instance)` with the run (`Run.ended`), so no later supervisor relaunches or asks."""
    if "train" in run.steps_done:
        try:
            await asyncio.wait_for(lifecycle.download(run), BUDGET_DOWNLOAD_S)
        except (PaceridError, OSError, asyncssh.Error, asyncio.TimeoutError) as err:
            lifecycle.listener.alert(run.run_id, f"Could not download before the stop: {err}")
    run = await lifecycle.terminate(run)
    instance = run.instance
    which = f"; {instance.instance_id} terminated" if instance is not None else ""
    if instance is not None:
        instance = replace(instance, state_reason=why)
    return lifecycle.update(run, instance=instance, ended=ended(run, which))
