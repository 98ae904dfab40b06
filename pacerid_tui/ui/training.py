"""What the dashboard knows about one run's training, built from the trainer's metric events.

The core passes `MetricEvent`s on as they stream (or as read back from a downloaded
metrics.jsonl); this keeps the per-epoch history for the chart, the latest step for the
throughput, and how long each epoch took. An epoch's duration is the time between its event
and the event before it (the run's `start` or the previous epoch), so it includes evaluation
and checkpointing: what the instance is actually billed for. The epoch events carry the
validation curve; the `done` event the test result of the epoch chosen on it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from pacerid_tui.core.kernel import host_records
from pacerid_tui.core.kernel.models import MetricEvent

STEPS_KEPT = 2000
"""Step events kept per run for the chart: bounded memory however long the run."""
RATE_WINDOW = 20
"""The ETA's rate is measured over the latest this many step events (the run as it is now,
evaluation pauses included when they span an epoch)."""


@dataclass
class Training:
    epochs: dict[int, MetricEvent] = field(default_factory=dict)
    """Epoch events by epoch number; a resumed run's repeats replace the earlier ones."""
    durations: dict[int, float] = field(default_factory=dict)
    """Seconds each epoch took, by epoch number."""
    last_step: MetricEvent | None = None
    steps: deque[MetricEvent] = field(default_factory=lambda: deque(maxlen=STEPS_KEPT))
    """Step events in arrival order (a resumed run's repeats come after)."""
    total_epochs: int | None = None
    ended = False
    """A done, interrupted or error event came after the latest start: no ETA to show."""
    last_time: float | None = None
    """When the latest start or epoch event was written: where the next epoch's time begins."""
    result: MetricEvent | None = None
    """The done event after the latest start: the chosen epoch and its one test pass."""

    def add(self, event: MetricEvent) -> None:
        self.total_epochs = event.epochs or self.total_epochs
        if event.event == "superseded" and event.epoch is not None:  # they run again
            for epoch in [e for e in self.epochs if e > (event.epoch or 0)]:
                self.epochs.pop(epoch)
                self.durations.pop(epoch, None)
        if event.event == "start":
            self.last_time = event.time
            self.ended = False
            self.result = None
        elif event.event in ("done", "interrupted", "error"):
            self.ended = True
            self.result = event if event.event == "done" else self.result
        elif event.event == "epoch" and event.epoch is not None:
            self.epochs[event.epoch] = event
            if self.last_time is not None and event.time > self.last_time:
                self.durations[event.epoch] = event.time - self.last_time
            self.last_time = event.time
        elif event.event == "step":
            self.last_step = event
            self.steps.append(event)

    def history(self) -> list[MetricEvent]:
        return [self.epochs[epoch] for epoch in sorted(self.epochs)]

    def epoch_seconds(self) -> list[float]:
        return [self.durations[epoch] for epoch in sorted(self.durations)]

    @property
    def images_per_s(self) -> float | None:
        """The latest measured throughput: the running step's, else the last epoch's."""
        for event in (self.last_step, *reversed(self.history())):
            if event is not None and event.images_per_s:
                return event.images_per_s
        return None

    def eta_seconds(self) -> float | None:
        """Seconds until the last epoch's last step, at the rate of the latest step events."""
        recent = [s for s in list(self.steps)[-RATE_WINDOW:] if s.step and s.steps and s.epoch]
        if len(recent) < 2 or not self.total_epochs:
            return None
        first, last = recent[0], recent[-1]
        done = [(s.epoch - 1) * s.steps + s.step for s in (first, last)]  # type: ignore[operator]
        if done[1] <= done[0] or last.time <= first.time:
            return None
        rate = (done[1] - done[0]) / (last.time - first.time)
        return max(0.0, (self.total_epochs * (last.steps or 0) - done[1]) / rate)


def read_metrics(path: Path) -> Training:
    """A downloaded metrics.jsonl replayed into a Training (unreadable lines are skipped)."""
    training = Training()
    for event in host_records.metric_events(path):
        training.add(event)
    return training
