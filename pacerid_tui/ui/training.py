"""What the dashboard knows about one run's training, built from the trainer's metric events.

The core passes `MetricEvent`s on as they stream (or as read back from a downloaded
metrics.jsonl); this keeps the per-epoch history for the chart, the latest step for the
throughput, and how long each epoch took. An epoch's duration is the time between its event
and the event before it (the run's `start` or the previous epoch), so it includes evaluation
and checkpointing: what the instance is actually billed for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pacerid_tui.core.models import MetricEvent


@dataclass
class Training:
    epochs: dict[int, MetricEvent] = field(default_factory=dict)
    """Epoch events by epoch number; a resumed run's repeats replace the earlier ones."""
    durations: dict[int, float] = field(default_factory=dict)
    """Seconds each epoch took, by epoch number."""
    last_step: MetricEvent | None = None
    last_time: float | None = None
    """When the latest start or epoch event was written: where the next epoch's time begins."""

    def add(self, event: MetricEvent) -> None:
        if event.event == "start":
            self.last_time = event.time
        elif event.event == "epoch" and event.epoch is not None:
            self.epochs[event.epoch] = event
            if self.last_time is not None and event.time > self.last_time:
                self.durations[event.epoch] = event.time - self.last_time
            self.last_time = event.time
        elif event.event == "step":
            self.last_step = event

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


def read_metrics(path: Path) -> Training:
    """A downloaded metrics.jsonl replayed into a Training (unreadable lines are skipped)."""
    training = Training()
    try:
        text = path.read_text()
    except OSError:
        return training
    for line in text.splitlines():
        try:
            training.add(MetricEvent.from_dict(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return training
