"""Budgets, enforced by the controller: a warning at 80 %; at 100 %, save, then terminate.

The host enforces an upper bound of its own (trainer/watchdog.py), for when this machine is gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from pacerid_tui.core.errors import PaceridError
from pacerid_tui.core.lazy import asyncssh
from pacerid_tui.core.status import RunStatus

if TYPE_CHECKING:
    from pacerid_tui.core.lifecycle import Lifecycle

BUDGET_WARN_SHARE = 0.8
BUDGET_DOWNLOAD_S = 300.0
"""How long a budget stop may spend saving results before it terminates regardless."""


async def enforce_budget(lifecycle: Lifecycle, row: RunStatus) -> None:
    """At 80 % of the budget warn; at 100 % save what training made, then terminate."""
    run = lifecycle.registry.get(row.run_id)
    if run.instance is None or not run.instance.state.is_alive:
        return
    budget = lifecycle.config_of(run).instance.budget_usd
    if not budget or row.cost_usd < BUDGET_WARN_SHARE * budget:
        return
    if row.cost_usd < budget:
        if run.run_id not in lifecycle.budget_warned:
            lifecycle.budget_warned.add(run.run_id)
            lifecycle.listener.alert(
                run.run_id,
                f"{run.run_id} has spent ${row.cost_usd:.2f}, "
                f"{row.cost_usd / budget:.0%} of its ${budget:.2f} budget.",
            )
        return
    lifecycle.listener.alert(
        run.run_id,
        f"{run.run_id} reached its ${budget:.2f} budget; saving results, then terminating.",
    )
    if "train" in run.steps_done:
        try:
            await asyncio.wait_for(lifecycle.download(run), BUDGET_DOWNLOAD_S)
        except (PaceridError, OSError, asyncssh.Error, asyncio.TimeoutError) as err:
            lifecycle.listener.alert(
                run.run_id, f"Could not download before the budget stop: {err}"
            )
    run = await lifecycle.terminate(run)
    if run.instance is not None:
        lifecycle.update(run, instance=replace(run.instance, state_reason="budget reached"))
