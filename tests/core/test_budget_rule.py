"""The money rule, once (`core/steps/budget_rule.py`): every status row carries its word, so the
table, the details' bar, `status --json` and the supervisor's stop all read the same verdict on
the same counted cost. Figures by hand."""

from __future__ import annotations

import pytest

from pacerid_tui.core.kernel.models import Instance, InstanceState, PricePoint, Run
from pacerid_tui.core.steps import budget_rule
from pacerid_tui.core.steps.status import row, state_text

T0 = 1_700_000_000.0
GIB = 1024**3


def test_warn_from_the_share_stop_at_the_budget() -> None:
    assert budget_rule.verdict(0.79, 1.0) == "ok"
    assert budget_rule.verdict(0.80, 1.0) == "warn"
    assert budget_rule.verdict(0.99, 1.0) == "warn"
    assert budget_rule.verdict(1.00, 1.0) == "stop"
    assert budget_rule.verdict(50.0, None) == "ok"  # no budget, no rule
    assert budget_rule.share(0.25, 2.0) == 0.125
    assert budget_rule.share(0.25, None) is None


def aws_run(downloaded_gib: float) -> Run:
    """One hour of a $0.50/h spot instance in us-east-1, `downloaded_gib` fetched from it."""
    instance = Instance("i-0abc", "aws", InstanceState.RUNNING, launched_at=T0, region="us-east-1")
    return Run(
        "r1", "aws", "c.yaml", T0, instance=instance, bytes_downloaded=int(downloaded_gib * GIB)
    )


def test_the_row_carries_the_rule_on_what_the_budget_counts() -> None:
    # compute $0.50 + IPv4 $0.005 = $0.505 counted; 10 GiB of egress at $0.09 = $0.90 is not.
    history = [PricePoint(T0 - 60, 0.50)]
    status = row(aws_run(10), history, T0 + 3600, budget_usd=0.6)
    assert status.cost_usd == pytest.approx(1.405)
    assert status.budgeted_usd == pytest.approx(0.505)
    assert status.budget_share == pytest.approx(0.505 / 0.6)
    assert (status.budget_verdict, status.budget_warning, status.over_budget) == (
        "warn",
        True,
        False,
    )
    assert "(over budget)" not in state_text(status)
    counted = row(aws_run(10), history, T0 + 3600, budget_usd=0.6, include_egress=True)
    assert (counted.budget_verdict, counted.over_budget) == ("stop", True)
    assert state_text(counted) == "running (over budget)"
    unbudgeted = row(aws_run(0), history, T0 + 3600)
    assert (unbudgeted.budget_share, unbudgeted.budget_verdict) == (None, "ok")
