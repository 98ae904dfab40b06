"""The stall rule (trainer/stall.py) as a pure function: the trainer's events and the host's
samples, shaped as trainer/metrics.py and trainer/system.py write them, and the time."""

from __future__ import annotations

import json
import math
from typing import Any

from trainer.stall import FLOOR_S, limit_s, since_start, stall_reason


def steps(every_s: float, count: int, start: float = 1000.0, **extra: Any) -> list[dict[str, Any]]:
    """A `start` event, then `count` step events `every_s` apart."""
    events: list[dict[str, Any]] = [{"event": "start", "time": start, "epoch": 0}]
    for i in range(count):
        events.append(
            {"event": "step", "time": start + (i + 1) * every_s, "epoch": 1, "step": i + 1,
             "loss": 1.0, "data_wait": 0.1, **extra}
        )  # fmt: skip
    return events


def samples(util: float | None, start: float, end: float, every_s: float = 5.0) -> list[dict]:
    gpus = None if util is None else [{"index": 0, "util_percent": util}]
    count = int((end - start) / every_s) + 1
    return [{"time": start + i * every_s, "gpus": gpus} for i in range(count)]


def test_the_default_limit_is_ten_minutes_or_twenty_median_intervals() -> None:
    assert limit_s(steps(2.0, 50), None) == FLOOR_S  # 20 × 2 s is less than 10 minutes
    slow = steps(60.0, 5)
    slow[3]["time"] += 500  # one long gap (an evaluation) moves the median not at all
    assert limit_s(slow, None) == 20 * 60.0
    assert limit_s(steps(60.0, 5), 90.0) == 90.0  # training.stall_minutes wins
    assert limit_s(steps(60.0, 1), None) == FLOOR_S  # one step: no interval yet


def test_no_step_for_the_limit_is_a_stall_and_one_moment_less_is_not() -> None:
    events = steps(2.0, 10)
    last = events[-1]["time"]
    assert stall_reason(events, [], last + FLOOR_S - 1) is None
    reason = stall_reason(events, [], last + FLOOR_S)
    assert reason is not None and reason.startswith("no training step for 10 min")
    assert "data.num_workers" not in reason  # the steps did not wait for data
    configured = stall_reason(events, [], last + 7, configured_s=6)
    assert configured == "no training step for 0.1 min (the limit is 0.1 min)"


def test_a_stall_after_steps_that_waited_for_data_names_the_input_pipeline() -> None:
    events = steps(2.0, 10, data_wait=0.8)
    reason = stall_reason(events, [], events[-1]["time"] + FLOOR_S)
    assert reason is not None and "input pipeline" in reason and "data.num_workers" in reason


def test_a_non_finite_loss_is_a_stall_at_once() -> None:
    events = steps(2.0, 4)
    events[-1]["loss"] = json.loads("NaN")  # as json reads the trainer's round(nan, 6)
    assert math.isnan(events[-1]["loss"])
    assert stall_reason(events, [], events[-1]["time"]) == "the loss is nan at epoch 1, step 4"
    events[-1]["loss"] = float("inf")
    assert stall_reason(events, [], events[-1]["time"]) == "the loss is inf at epoch 1, step 4"
    events[-1]["loss"] = 0.5  # a finite loss after it: training recovered
    assert stall_reason(events, [], events[-1]["time"]) is None


def test_an_idle_gpu_for_the_whole_limit_is_a_stall() -> None:
    now = 2000.0
    events = steps(1.0, 10, start=now - 12)  # steps keep coming (a loop that does no work)
    idle = samples(2.0, now - 700, now)
    reason = stall_reason(events, idle, now)
    assert reason == "the GPU was below 5 % busy for 10 min"
    busy_once = [dict(s) for s in idle]
    busy_once[-3]["gpus"] = [{"index": 0, "util_percent": 40.0}]
    assert stall_reason(events, busy_once, now) is None
    assert stall_reason(events, samples(2.0, now - 300, now), now) is None  # not idle long enough
    assert stall_reason(events, samples(None, now - 700, now), now) is None  # no GPU: no verdict


def test_nothing_is_judged_before_training_starts_and_a_resume_starts_afresh() -> None:
    assert stall_reason([], [], 1e9) is None
    first = steps(2.0, 5)
    first[-1]["loss"] = float("nan")
    resumed = [*first, *steps(2.0, 3, start=first[-1]["time"] + 100)]
    assert since_start(resumed)[0]["time"] == first[-1]["time"] + 100
    assert stall_reason(since_start(resumed), [], resumed[-1]["time"] + 1) is None
