"""The details panel: the cost line, every part of the total, egress marked as an upper bound
where the budget leaves it out (issue 15: the first 100 GB a month are free account-wide); its
budget bar, the budget rule's share from the status row (issue 25); and a finished run's test
result beside its validation accuracy (issue 27); the forecast and the work at risk (issue 26)."""

from __future__ import annotations

from pacerid_tui.core.kernel.models import MetricEvent, PricePoint, Run
from pacerid_tui.core.steps.status import RunStatus, row
from pacerid_tui.ui.training import Training
from pacerid_tui.ui.widgets.run_details import RunDetails
from tests.core.test_budget_rule import T0, aws_run
from tests.core.test_forecast import T0 as START
from tests.core.test_forecast import spot_run


def shown(egress_budgeted: bool) -> str:
    run = Run("r1", "aws", "c.yaml", 0.0)
    parts = {"compute": 0.4321, "volume": 0.0125, "ipv4": 0.015, "egress": 0.27}
    status = RunStatus(
        "r1", "aws", None, None, None, "running", None, None, None, sum(parts.values()),
        None, None, None, [], cost_parts=parts, budget_includes_egress=egress_budgeted,
    )  # fmt: skip
    details = RunDetails()
    details.show(run, status)
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


def test_the_details_bar_shows_the_rules_share_not_the_whole_cost() -> None:
    """The bar once re-read the budget with its own 0.8 and counted egress the budget leaves
    out: $1.41 of a $2 budget drawn as 70 %, where the rule counts $0.51, 25 %."""
    history = [PricePoint(T0 - 60, 0.50)]
    run = aws_run(10)
    details = RunDetails()
    details.show(run, row(run, history, T0 + 3600, budget_usd=2.0))
    [bar] = [line for line in details.shown.splitlines() if line.startswith("budget")]
    assert bar.endswith(" 25% of $2.00") and "[green]" in bar
    details.show(run, row(run, history, T0 + 3600, budget_usd=0.6))
    [bar] = [line for line in details.shown.splitlines() if line.startswith("budget")]
    assert bar.endswith(" 84% of $0.60") and "[red]" in bar


def test_the_forecast_and_the_work_at_risk_sit_under_the_cost() -> None:
    """Issue 26: the row's forecast (tests/core/test_forecast.py works out these figures by
    hand: 4 of 20 epochs of 300 s, 100 s into the 5th, $0.365/h) and, beside it, what an
    interruption now would make the run do again."""
    ends = [START + 120 + 300 * k for k in range(1, 5)]
    run = spot_run(
        epoch=4, epochs=20, training_started_at=START + 120, epoch_ends=ends,
        epoch_seconds=[300.0] * 4, downloaded_at=START + 1000,
    )  # fmt: skip
    status = row(run, [PricePoint(START - 60, 0.36)], ends[-1] + 100, budget_usd=0.50)
    details = RunDetails()
    details.show(run, status)
    [line] = [line for line in details.shown.splitlines() if line.startswith("forecast")]
    assert line == "forecast [b]$0.62[/b] · 1h18m left · at risk 11m40s $0.07"
    [bar] = [line for line in details.shown.splitlines() if line.startswith("budget")]
    assert bar.endswith("of $0.50 · [b red]stops in epoch 17[/b red]")
