"""The details panel: the cost line, every part of the total, egress marked as an upper bound
where the budget leaves it out (issue 15: the first 100 GB a month are free account-wide); and
a finished run's test result beside its validation accuracy (issue 27)."""

from __future__ import annotations

from pacerid_tui.core.kernel.models import MetricEvent, Run
from pacerid_tui.core.steps.status import RunStatus
from pacerid_tui.ui.training import Training
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


def test_a_finished_run_shows_its_test_result_beside_the_validation_accuracy() -> None:
    """The epoch events are the validation curve; the done event the chosen epoch's one test
    pass. Before the end there is no test figure to show."""
    run = Run("r1", "local", "c.yaml", 0.0, epoch=3, epochs=3, val_acc=0.81)
    row = RunStatus(
        "r1", "local", None, None, None, "running", None, None, None, 0.0, None, None, None, [],
    )  # fmt: skip
    training = Training()
    training.add(MetricEvent("start", time=1.0, epochs=3))
    for epoch, accuracy in ((1, 0.7), (2, 0.84), (3, 0.81)):
        training.add(MetricEvent("epoch", time=1.0 + epoch, epoch=epoch, val_acc=accuracy))
    details = RunDetails()
    details.show(run, row, training=training)
    assert "val acc 81.0%" in details.shown and "test acc" not in details.shown
    training.add(MetricEvent("done", time=5.0, epoch=3, best_epoch=2, test_acc=0.8))
    details.show(run, row, training=training)
    assert "val acc 81.0%  [b]test acc 80.0%[/b] (epoch 2)" in details.shown
