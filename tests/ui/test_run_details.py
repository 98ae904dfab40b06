"""The details panel's cost line: every part of the total, egress marked as an upper bound
where the budget leaves it out (issue 15: the first 100 GB a month are free account-wide)."""

from __future__ import annotations

from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.steps.status import RunStatus
from pacerid_tui.ui.widgets.run_details import RunDetails


def shown(egress_budgeted: bool) -> str:
    run = Run("r1", "aws", "c.yaml", 0.0)
    parts = {"compute": 0.4321, "volume": 0.0125, "ipv4": 0.015, "egress": 0.27}
    row = RunStatus(
        "r1", "aws", None, None, None, "running", None, None, None, sum(parts.values()),
        None, None, None, [], cost_parts=parts,
    )  # fmt: skip
    details = RunDetails()
    details.show(run, row, egress_budgeted=egress_budgeted)
    return details.shown


def test_the_parts_of_the_cost_are_on_one_line() -> None:
    [line] = [line for line in shown(False).splitlines() if line.startswith("compute")]
    assert line == "compute $0.4321 · volume $0.0125 · IPv4 $0.0150 · egress ≤$0.2700"
    assert "cost so far [b]$0.7296[/b]" in shown(False)  # their sum, by hand


def test_egress_counted_in_the_budget_is_no_upper_bound() -> None:
    assert "· egress $0.2700" in shown(True) and "≤" not in shown(True)
