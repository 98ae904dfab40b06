"""The one reader of the host's records: metrics.jsonl, system.jsonl and boots.jsonl.

The trainer appends them on the host (trainer/metrics.py, trainer/system.py, boot_service.sh)
and the controller reads them twice over: streamed line by line while a run lives
(supervise/follow_loop.py), and from the downloaded copies afterwards (the dashboard's curve,
history, reconcile, a stopped instance's cost). Both go through here, so a record means the
same thing everywhere and a line cut short by a stop or a kill is skipped the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacerid_tui.core.kernel.models import Instance, InstanceState, MetricEvent


@dataclass(frozen=True)
class GpuSample:
    index: int
    util_percent: float | None = None
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None


@dataclass(frozen=True)
class SystemSample:
    """One line of system.jsonl; GPU fields are None on a host without nvidia-smi."""

    time: float
    cpu_percent: float | None = None
    ram_used_gb: float | None = None
    ram_total_gb: float | None = None
    disk_free_gb: float | None = None
    disk_total_gb: float | None = None
    gpus: tuple[GpuSample, ...] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> SystemSample:
        """Keep the fields we know; ValueError/TypeError when the line is not a sample."""
        gpus = raw.get("gpus")
        rows = None
        if isinstance(gpus, list):
            rows = tuple(
                GpuSample(
                    index=int(gpu.get("index") or 0),
                    **{
                        name: _number(gpu.get(name))
                        for name in GpuSample.__dataclass_fields__
                        if name != "index"
                    },
                )
                for gpu in gpus
                if isinstance(gpu, dict)
            )
        return cls(
            time=float(raw["time"]),  # type: ignore[arg-type]
            **{
                name: _number(raw.get(name))
                for name in cls.__dataclass_fields__
                if name not in ("time", "gpus")
            },
            gpus=rows,
        )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def records(path: Path) -> list[dict[str, Any]]:
    """Every whole JSON object line of a downloaded .jsonl file; [] when it is not there."""
    try:
        text = path.read_text()
    except OSError:
        return []
    return [raw for raw in map(_object, text.splitlines()) if raw is not None]


def _object(line: str) -> dict[str, Any] | None:
    try:
        raw = json.loads(line)
    except ValueError:
        return None  # a line cut short by a stop
    return raw if isinstance(raw, dict) else None


def metric(line: str) -> MetricEvent | None:
    """One streamed metrics.jsonl line, or None when it is not a metrics event."""
    raw = _object(line)
    try:
        return MetricEvent.from_dict(raw) if raw is not None else None
    except (ValueError, TypeError, KeyError):
        return None


def sample(line: str) -> SystemSample | None:
    """One streamed system.jsonl line, or None when it is not a sample."""
    raw = _object(line)
    try:
        return SystemSample.from_dict(raw) if raw is not None else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def metric_events(path: Path) -> list[MetricEvent]:
    """A downloaded metrics.jsonl's events, in the order the trainer wrote them."""
    found = []
    for raw in records(path):
        try:
            found.append(MetricEvent.from_dict(raw))
        except (ValueError, TypeError, KeyError):
            continue
    return found


def epoch_curve(path: Path) -> list[MetricEvent]:
    """The epoch events of a downloaded metrics.jsonl, by epoch (a resume's repeats replace)."""
    epochs = {e.epoch: e for e in metric_events(path) if e.event == "epoch" and e.epoch is not None}
    return [epochs[n] for n in sorted(epochs)]


@dataclass(frozen=True)
class Interruption:
    at: float
    """The spot notice, host clock (the trainer checkpointed then)."""
    booted_at: float | None = None
    """The next boot, once capacity returned; None while it has not."""
    resumed: bool = False


def interruptions(results: Path, since: float) -> list[Interruption]:
    """Each spot notice after `since` (the trainer's `interrupted` event) with the boot that
    came after it (output/boots.jsonl), from the downloaded records in `results`."""
    boots = [b for b in records(results / "boots.jsonl") if _time(b) > since]
    found = []
    for event in records(results / "metrics.jsonl"):
        if event.get("event") != "interrupted" or _time(event) <= since:
            continue
        at = _time(event)
        after = [b for b in boots if _time(b) > at]
        if after:
            boot = min(after, key=_time)
            found.append(Interruption(at, _time(boot), bool(boot.get("resumed"))))
        else:
            found.append(Interruption(at))
    return found


def _time(raw: dict[str, Any]) -> float:
    try:
        return float(raw.get("time") or 0)
    except (TypeError, ValueError):
        return 0.0


NOTICE_LEAD_S = 120.0
"""EC2 stops a spot instance two minutes after its interruption notice; the host's records hold
the notice, not the stop, so a stopped stretch is counted from then (never less compute)."""


def stopped_stretches(results: Path, instance: Instance, now: float) -> list[tuple[float, float]]:
    """The instance's stopped stretches for its cost, from the host's records in `results`:
    each interruption notice (+ NOTICE_LEAD_S) to the boot after it (output/boots.jsonl), or to
    `now` while the instance is stopped. EC2 tells no stop times (a restart only moves its
    LaunchTime), and these records are downloaded with the results anyway."""
    if instance.spot_request_id is None or instance.launched_at is None:
        return []
    stretches = []
    for i in interruptions(results, instance.launched_at):
        until = i.booted_at
        if until is None and instance.state is InstanceState.STOPPED:
            until = now
        if until is not None:  # a boot not downloaded yet counts as running: never less
            stretches.append((min(i.at + NOTICE_LEAD_S, until), until))
    return stretches
