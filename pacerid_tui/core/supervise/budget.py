"""Budgets: a warning at 80 %; at 100 %, save what training made, then terminate.

The supervisor (`supervisor.py`) decides when to ask; this module says what the money rule is
and carries out a stop. The host enforces an upper bound of its own (trainer/watchdog.py), for
when this machine is gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Run

if TYPE_CHECKING:
    from pacerid_tui.core.steps.lifecycle import Lifecycle

BUDGET_WARN_SHARE = 0.8
BUDGET_DOWNLOAD_S = 300.0
"""How long a budget stop may spend saving results before it terminates regardless."""
STOP_REASON = "budget reached"


def verdict(cost_usd: float, budget_usd: float | None) -> Literal["ok", "warn", "stop"]:
    """What the money rule says at this cost."""
    if not budget_usd or cost_usd < BUDGET_WARN_SHARE * budget_usd:
        return "ok"
    return "warn" if cost_usd < budget_usd else "stop"


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
