"""The forecast of a running run (issue 26, item 2): the cost at the end, the time left, the
epoch the budget would stop it in, and the work at risk, checked against sums worked out by
hand; and the same figures on a status row built from a run as the registry holds it."""

from __future__ import annotations

import pytest

from pacerid_tui.core.kernel.forecast import (
    Forecast,
    forecast,
    resumable_since,
    seconds_per_epoch,
    with_epoch,
)
from pacerid_tui.core.kernel.models import Instance, InstanceState, PricePoint, Run
from pacerid_tui.core.steps.status import row
from pacerid_tui.core.supervise import notify

T0 = 1_750_000_000.0


def test_the_pace_is_the_recent_epochs_not_the_warm_up() -> None:
    assert seconds_per_epoch([540.0, 310.0, 290.0, 300.0]) == pytest.approx(300.0)
    assert seconds_per_epoch([540.0, 310.0, 290.0]) == pytest.approx(300.0)  # not 380
    assert seconds_per_epoch([540.0]) == pytest.approx(540.0)  # the only measure there is
    assert seconds_per_epoch([]) is None
    assert seconds_per_epoch([0.0]) is None  # an epoch whose start is unknown is no measure


def test_cost_at_the_end_and_time_left() -> None:
    """4 of 20 epochs done at 300 s each, 100 s into the 5th: 200 s + 15 x 300 s = 4,700 s
    left; $1.20 spent, at $0.36/h: 4,700 s cost $0.47."""
    ahead = forecast(1.20, 0.36, [540.0, 310.0, 290.0, 300.0], 4, 20, 100.0, None)
    assert ahead == Forecast(pytest.approx(4700.0), pytest.approx(1.67), None)


def test_the_epoch_the_budget_runs_out_in() -> None:
    """A $1.50 budget: $0.30 left at $0.36/h is 3,000 s; the 5th epoch's 200 s, then 2,800 s
    buy 9 whole epochs (6th to 14th) and part of the 15th."""
    ahead = forecast(1.20, 0.36, [300.0] * 4, 4, 20, 100.0, 1.50)
    assert ahead is not None and ahead.budget_epoch == 15
    # by hand, epoch by epoch: the 15th starts at 200 + 9 x 300 = 2,900 s, ends at 3,200 s
    assert 200 + 9 * 300 <= 3000 < 200 + 10 * 300


def test_money_gone_within_the_current_epoch_names_it() -> None:
    ahead = forecast(1.49, 0.36, [300.0] * 4, 4, 20, 100.0, 1.50)  # 100 s left of money
    assert ahead is not None and ahead.budget_epoch == 5


def test_a_budget_that_lasts_names_no_epoch() -> None:
    ahead = forecast(1.20, 0.36, [300.0] * 4, 4, 20, 100.0, 1.68)
    assert ahead is not None and ahead.budget_epoch is None
    assert forecast(1.20, 0.36, [], 0, 20, 100.0, 1.50) is None  # no pace before an epoch


def test_trained_to_the_end_nothing_is_left() -> None:
    assert forecast(2.0, 0.36, [300.0] * 3, 3, 3, 10.0, 1.0) == Forecast(0.0, 2.0, None)


def test_epochs_recorded_as_streamed() -> None:
    """Training started at 100; epochs end at 400 and 690; resumed at 800 (the instance was
    stopped between), the 3rd ends at 1,100: 300 s, never the stopped time."""
    ends, seconds = with_epoch([], [], 1, 400.0, 100.0)
    ends, seconds = with_epoch(ends, seconds, 2, 690.0, 100.0)
    assert (ends, seconds) == ([400.0, 690.0], [300.0, 290.0])
    assert with_epoch(ends, seconds, 2, 690.0, 100.0) == (ends, seconds)  # replayed: the same
    ends, seconds = with_epoch(ends, seconds, 3, 1100.0, 800.0)
    assert seconds == [300.0, 290.0, 300.0]
    # a follow that starts at epoch 3 (the first two before this machine watched)
    assert with_epoch([], [], 3, 1100.0, None) == ([0.0, 0.0, 1100.0], [0.0, 0.0, 0.0])


def test_work_at_risk_since_the_checkpoint_the_run_could_resume_from() -> None:
    ends = [400.0, 700.0, 1000.0]
    # stop mode: the host's volume keeps checkpoint_latest.pt of the last epoch
    assert resumable_since(True, ends, 100.0, None) == 1000.0
    # relaunch mode: what this machine downloaded, at 800: the 2nd epoch's checkpoint
    assert resumable_since(False, ends, 100.0, 800.0) == 700.0
    assert resumable_since(False, ends, 100.0, None) == 100.0  # nothing saved: from the start


def spot_run(**fields: object) -> Run:
    instance = Instance(
        "i-1", "aws", InstanceState.RUNNING, instance_type="g4dn.xlarge", zone="us-east-1a",
        launched_at=T0, region="us-east-1", volume_gb=0,
    )  # fmt: skip
    return Run("r1", "aws", "c.yaml", T0, instance=instance, **fields)  # type: ignore[arg-type]


def test_the_status_row_carries_the_forecast_for_status_json() -> None:
    """Launched at T0 at $0.36/h, training from T0 + 120 s; 4 epochs of 300 s done of 20, now
    100 s into the 5th: $0.144 billed so far (the IPv4 address adds $0.005/h)."""
    ends = [T0 + 120 + 300 * k for k in range(1, 5)]
    run = spot_run(
        epoch=4, epochs=20, training_started_at=T0 + 120, epoch_ends=ends,
        epoch_seconds=[300.0] * 4, downloaded_at=T0 + 1000,
    )  # fmt: skip
    now = ends[-1] + 100
    status = row(run, [PricePoint(T0 - 60, 0.36)], now, budget_usd=0.50)
    hourly = 0.36 + 0.005
    spent = hourly * (now - T0) / 3600
    assert status.cost_usd == pytest.approx(spent)
    assert status.seconds_left == pytest.approx(4700.0)
    assert status.forecast_usd == pytest.approx(spent + hourly * 4700 / 3600)
    # $0.50 - $0.144 buys 3,511 s: the 5th's 200 s, then 11 whole epochs: stopped in the 17th
    assert status.budget_epoch == 17
    # relaunch mode (no spot request): the checkpoint downloaded at T0 + 1000 is epoch 2's
    assert status.at_risk_s == pytest.approx(now - (T0 + 720))
    assert status.at_risk_usd == pytest.approx(hourly * (now - (T0 + 720)) / 3600)


def test_the_notice_names_the_epoch_and_both_ways_out() -> None:
    run = spot_run(epoch=4, epochs=20, training_started_at=T0, epoch_seconds=[300.0] * 4)
    status = row(run, [PricePoint(T0 - 60, 0.36)], T0 + 1300, budget_usd=0.50)
    notice = notify.ahead_of_budget(status, 0.50)
    assert notice.state == "budget short" and notice.key == "forecast"
    assert f"runs out during epoch {status.budget_epoch} of 20" in notice.text
    assert f"--set training.epochs={(status.budget_epoch or 0) - 1}" in notice.text
    assert "--set instance.budget_usd=" in notice.text


def test_the_minute_billed_at_a_start_is_not_billed_again() -> None:
    """30 s after launch EC2 has billed a minute ($0.006 at $0.36/h): the next 30 s cost
    nothing more. 1 of 3 epochs of 20 s done, 5 s into the 2nd: 35 s left, 5 of them billed."""
    ahead = forecast(0.006, 0.36, [20.0], 1, 3, 5.0, 0.008, paid_ahead_s=30.0)
    assert ahead is not None
    assert ahead.cost_at_end_usd == pytest.approx(0.006 + 0.36 * 5 / 3600)
    assert ahead.budget_epoch is None  # $0.0065 by the end, within $0.008
    # a $0.0062 budget: 30 s paid, then 2 s more: 32 s, in the 3rd epoch (15 s to 35 s)
    short = forecast(0.006, 0.36, [20.0], 1, 3, 5.0, 0.0062, paid_ahead_s=30.0)
    assert short is not None and short.budget_epoch == 3


def test_the_money_at_risk_is_what_was_billed_since_the_checkpoint() -> None:
    """Free until T0 + 1,000 s, then $0.36/h (the IPv4 address $0.005/h throughout): of the
    700 s since epoch 2's checkpoint (T0 + 720), 420 s billed compute."""
    ends = [T0 + 120 + 300 * k for k in range(1, 5)]
    run = spot_run(
        epoch=4, epochs=20, training_started_at=T0 + 120, epoch_ends=ends,
        epoch_seconds=[300.0] * 4, downloaded_at=T0 + 1000,
    )  # fmt: skip
    history = [PricePoint(T0 - 60, 0.0), PricePoint(T0 + 1000, 0.36)]
    status = row(run, history, T0 + 1420)
    assert status.at_risk_s == pytest.approx(700.0)
    assert status.at_risk_usd == pytest.approx(0.36 * 420 / 3600 + 0.005 * 700 / 3600)
