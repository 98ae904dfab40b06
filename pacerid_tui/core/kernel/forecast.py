"""What a running run will cost by its end, whether its budget lasts, and what is at risk now.

Pure functions over what a status row already knows (the spend so far, the hourly rate now,
the epochs measured), so the forecast is tested on numbers and `status --json`, the details
panel and the supervisor's warning read the same one. The pace is the recent epochs' wall time
(steps, validation and checkpoint together: what the meter sees), averaged over the last
`cost.RECENT_EPOCHS`, the first epoch left out once there is another (measured here on 2
cores: 19.4 s for the first, with the model built and the data cached, then 6.3 s and 4.1 s);
the rate is the price in force now plus what bills by the hour beside it (volume, IPv4).
Egress is left out: it comes with downloads, not with time. Nothing here reads a clock:
callers pass `now` in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pacerid_tui.core.kernel import cost
from pacerid_tui.core.kernel.cost import RECENT_EPOCHS, SECONDS_PER_HOUR


@dataclass(frozen=True)
class Forecast:
    """Where the run is heading at today's pace and price."""

    seconds_left: float
    """Until the last epoch ends (the current one's rest included)."""
    cost_at_end_usd: float
    """What the budget will count when the last epoch ends."""
    budget_epoch: int | None
    """The epoch (1-based) during which the budget runs out; None when it lasts to the end."""


def seconds_per_epoch(epoch_seconds: Sequence[float]) -> float | None:
    """The pace: the mean of the recent epochs, the first left out once another is measured
    (it counts from training's start: building the model, loading and caching the data); None
    before one was measured."""
    measured = [s for s in epoch_seconds if s > 0]
    if len(measured) > 1 and epoch_seconds[0] > 0:
        measured = measured[1:]
    recent = measured[-RECENT_EPOCHS:]
    return sum(recent) / len(recent) if recent else None


def forecast(
    spent_usd: float,
    hourly_usd: float,
    epoch_seconds: Sequence[float],
    epoch: int,
    epochs: int,
    into_epoch_s: float,
    budget_usd: float | None,
    paid_ahead_s: float = 0.0,
) -> Forecast | None:
    """The run's end from here: `epoch` epochs done of `epochs`, `into_epoch_s` seconds into
    the next one, `spent_usd` counted so far at `hourly_usd` from now on, of which the next
    `paid_ahead_s` seconds are already in it (EC2's minute billed at a start). None before an
    epoch was measured (no pace yet)."""
    pace = seconds_per_epoch(epoch_seconds)
    if pace is None:
        return None
    if epoch >= epochs:
        return Forecast(0.0, spent_usd, None)
    current_left = max(pace - into_epoch_s, 0.0)
    left = current_left + (epochs - epoch - 1) * pace
    at_end = spent_usd + hourly_usd * max(left - paid_ahead_s, 0.0) / SECONDS_PER_HOUR
    if not budget_usd or at_end <= budget_usd:
        return Forecast(left, at_end, None)
    # at no hourly rate only a budget already spent is passed: no runway at all
    runway = paid_ahead_s + (cost.budget_runway_s(spent_usd, budget_usd, hourly_usd) or 0.0)
    return Forecast(left, at_end, budget_epoch(runway, pace, epoch, current_left))


def budget_epoch(runway: float, pace: float, epoch: int, current_left_s: float) -> int:
    """The epoch (1-based) running when the money's `runway` seconds are over: the next one
    (`epoch` + 1) while its rest outlasts them, else one more for each whole epoch they buy."""
    if runway < current_left_s:
        return epoch + 1
    return epoch + 2 + math.floor((runway - current_left_s) / pace)


def resumable_since(
    stop_mode: bool,
    epoch_ends: Sequence[float],
    training_started_at: float | None,
    saved_at: float | None,
) -> float | None:
    """When the newest checkpoint the run could resume from was made: in stop mode the host's
    volume survives an interruption, so the last epoch's end (the trainer writes
    checkpoint_latest.pt then); in relaunch mode only what is on this machine survives, so the
    last epoch's end before the latest checkpoint download (`saved_at`). Without one, training's
    start: everything since would run again."""
    ends = [end for end in epoch_ends if stop_mode or (saved_at is not None and end <= saved_at)]
    if ends:
        return max(ends)
    return training_started_at


def with_epoch(
    ends: Sequence[float],
    seconds: Sequence[float],
    epoch: int,
    at: float,
    started_at: float | None,
) -> tuple[list[float], list[float]]:
    """The run's epoch end times and wall seconds (index = epoch - 1) with epoch `epoch` ended
    at `at` (host clock). An epoch starts when the one before it ended, or when training was
    last started if that came later (a resumed run: the time stopped is no epoch's); an epoch
    whose start is unknown gets 0.0, which the pace leaves out. Replaying the same events (a
    follow from the start) gives the same lists."""
    new_ends, new_seconds = list(ends[: epoch - 1]), list(seconds[: epoch - 1])
    new_ends += [0.0] * (epoch - 1 - len(new_ends))
    new_seconds += [0.0] * (epoch - 1 - len(new_seconds))
    starts = [s for s in (new_ends[-1] if new_ends else 0.0, started_at or 0.0) if 0 < s <= at]
    new_ends.append(at)
    new_seconds.append(at - max(starts) if starts else 0.0)
    return new_ends, new_seconds
