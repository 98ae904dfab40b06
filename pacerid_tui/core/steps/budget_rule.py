"""The money rule, in one place: what counts toward a run's budget, what share of it is spent,
when that share is a warning and when a stop, and the reason a budget stop records.

Pure, and among the steps so that every status row carries the rule's word (`status.row`: the
table, the details' bar, `status --json`) while the supervisor (`supervise/budget.py`) acts on
that same row; the steps never import the supervisor. The host keeps an upper bound of its own
(trainer/watchdog.py), for when this machine is gone.
"""

from __future__ import annotations

from typing import Literal

from pacerid_tui.core.kernel.cost import CostParts

WARN_SHARE = 0.8
"""Share of its budget at which a run is warned about (once, by its supervisor) and the details'
bar turns red."""
STOP_REASON = "budget reached"
"""The state reason a budget stop records on the instance: the table shows it, and recovery
reads it as our own stop (never relaunched)."""

Verdict = Literal["ok", "warn", "stop"]
"""What the rule says at a cost: nothing yet, warn the user, or save then terminate."""


def counted(parts: CostParts, include_egress: bool) -> float:
    """What the budget counts of a run's cost: egress is an upper bound (the first 100 GB a
    month are free account-wide), left out unless `instance.budget_includes_egress`."""
    return parts.total if include_egress else parts.total - parts.egress


def share(counted_usd: float, budget_usd: float | None) -> float | None:
    """How much of the budget is spent (1.0 = all of it); None without a budget."""
    if budget_usd is None or budget_usd <= 0:
        return None
    return counted_usd / budget_usd


def verdict(counted_usd: float, budget_usd: float | None) -> Verdict:
    """What the rule says once `counted_usd` of a `budget_usd` budget is spent."""
    if not budget_usd or counted_usd < WARN_SHARE * budget_usd:
        return "ok"
    return "warn" if counted_usd < budget_usd else "stop"
