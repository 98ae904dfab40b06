"""A budget stop: save what training made (bounded in time), then terminate, recording why;
and when the forecast that one is coming is worth telling.

The rule itself (what counts, the warning share, when to stop, the reason recorded) is
`steps/budget_rule.py`, which every status row carries; the supervisor (`supervisor.py`) reads
it from the run's row and calls `stop` here. The host enforces an upper bound of its own
(trainer/watchdog.py), for when this machine is gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.steps.budget_rule import STOP_REASON

if TYPE_CHECKING:
    from pacerid_tui.core.steps.lifecycle import Lifecycle
    from pacerid_tui.core.steps.status import RunStatus

WARM_EPOCHS = 2
"""Epochs measured before the forecast's epoch is told: the first one's warm-up (the model
built, the data cached) made it three times the next on 2 cores, and the news comes once."""
BUDGET_DOWNLOAD_S = 300.0
"""How long a budget stop may spend saving results before it terminates regardless."""


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
    if "train" in run.steps_done:
        try:
            await asyncio.wait_for(lifecycle.download(run), BUDGET_DOWNLOAD_S)
        except (PaceridError, OSError, asyncssh.Error, asyncio.TimeoutError) as err:
            lifecycle.listener.alert(
                run.run_id, f"Could not download before the budget stop: {err}"
            )
    run = await lifecycle.terminate(run)
    instance = run.instance
    which = f"; {instance.instance_id} terminated" if instance is not None else ""
    ended = (
        f"{run.run_id} was stopped at its ${budget_usd:.2f} budget after epoch "
        f"{run.epoch or 0} of {run.epochs or '?'}{which}."
    )
    if instance is not None:
        instance = replace(instance, state_reason=STOP_REASON)
    return lifecycle.update(run, instance=instance, ended=ended)
