"""A stalled run caught on the host, where it works with the laptop closed.

A run whose data loader hangs, whose loss went NaN, or whose GPU sits idle while the process
lives looks alive and bills. The host watchdog (watchdog.py) asks `StallWatch.check` every
poll; the rule itself is `stall_reason`, a pure function of the trainer's events
(metrics.jsonl), the host samples (system.jsonl) and the time, so it is tested without a host:

- no progress (a `start`, `step` or `epoch` event) for the limit: `training.stall_minutes`
  (watchdog.json's `stall_s`), by default the larger of 10 minutes and 20 step intervals (the
  median so far: an epoch's evaluation or a slow step must not look like a hang);
- a non-finite loss in the latest step event (nothing after it can be worth paying for);
- every host sample of the last limit with GPUs below 5 % busy while the trainer lives.

A stall is told once per trainer process: a `stall` event with the reason appended to
metrics.jsonl, which the controller streams and tells (toast, line, webhook). With
`instance.on_stall: stop` the trainer is then asked to save (SIGTERM: it checkpoints at its next
step and exits; one that does not within the save window is killed, as one with a NaN loss is at
once, so NaN weights never replace the last good checkpoint). A controller that follows (its
heartbeat comes after the stall) gets `HANDOVER_S` to download and terminate, as a budget stop
does; with none, the run ends `ANSWER_S` after the save window, the way the watchdog's budget
bound ends it. The small readers both need (a pid alive, a file's mtime, a JSON file) live here,
and the watchdog takes them from here (it imports this module, so not the other way round).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import signal
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

FLOOR_S = 600.0
"""The default limit is never below 10 minutes: a first epoch's compile or cache build, or a
validation pass, has no step events for minutes."""
INTERVALS = 20
"""…and never below 20 median step intervals (a slow model's steps are minutes apart)."""
IDLE_PERCENT = 5.0
"""A GPU below this (nvidia-smi's utilisation) over the whole limit is doing nothing."""
STARVED_SHARE = 0.5
"""Recent steps that waited for data more than half their time: the input pipeline is why."""
PROGRESS = ("start", "step", "epoch", "superseded")
SAVE_S = 60.0
"""How long a trainer asked to save (SIGTERM) may take before it is killed (at most the limit):
one that still answers checkpoints within seconds; a hung one never does."""
HANDOVER_S = 300.0
"""How long a following controller gets to download and terminate after a stall stop (the
controller's own budget-stop bound, core/supervise/budget.py BUDGET_DOWNLOAD_S)."""
ANSWER_S = 15.0
"""A following controller touches the heartbeat every 5 s (its liveness poll); none after the
stall within this long past the save window means nobody follows: the host ends the run."""
SAMPLES_TAIL_BYTES = 256_000
"""Only the end of system.jsonl is read each poll: a day of samples is megabytes."""
FIX = (
    "the input pipeline is the bottleneck (raise data.num_workers, or keep the image cache on "
    "local disk)"
)
"""The same fix the dashboard's "GPU starved" verdict names (core/supervise/host_health.py)."""


def finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and math.isfinite(value)


def limit_s(events: Sequence[dict[str, Any]], configured_s: float | None) -> float:
    """The no-step limit: the configured one, else max(FLOOR_S, INTERVALS × median interval)."""
    if configured_s:
        return float(configured_s)
    times = [float(e["time"]) for e in events if e.get("event") == "step" and finite(e.get("time"))]
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return max(FLOOR_S, INTERVALS * statistics.median(gaps)) if gaps else FLOOR_S


def starved(events: Sequence[dict[str, Any]]) -> bool:
    """The latest step events waited for data most of the time (their `data_wait`)."""
    waits = [
        e["data_wait"] for e in events if e.get("event") == "step" and finite(e.get("data_wait"))
    ]
    recent = waits[-10:]
    return bool(recent) and sum(recent) / len(recent) > STARVED_SHARE


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def stall_reason(
    events: Sequence[dict[str, Any]],
    samples: Sequence[dict[str, Any]],
    now: float,
    configured_s: float | None = None,
) -> str | None:
    """Why the live trainer counts as stalled, or None. `events`: metrics.jsonl since the
    trainer's latest `start`; `samples`: the latest system.jsonl lines."""
    progress = [e for e in events if e.get("event") in PROGRESS and finite(e.get("time"))]
    if not progress:
        return None  # not started yet (decoding the data): not judged
    steps = [e for e in progress if e.get("event") == "step"]
    if steps and "loss" in steps[-1] and not finite(steps[-1]["loss"]):
        last = steps[-1]
        return f"the loss is {last['loss']} at epoch {last.get('epoch')}, step {last.get('step')}"
    limit = limit_s(events, configured_s)
    why = f"; {FIX}" if starved(events) else ""
    quiet = now - max(float(e["time"]) for e in progress)
    if quiet >= limit:
        return f"no training step for {minutes(quiet)} (the limit is {minutes(limit)}){why}"
    window = [s for s in samples if finite(s.get("time")) and s["time"] >= now - limit]
    covered = any(finite(s.get("time")) and s["time"] <= now - limit for s in samples)
    utils = [gpu_util(s) for s in window]
    if covered and window and all(u is not None and u < IDLE_PERCENT for u in utils):
        return f"the GPU was below {IDLE_PERCENT:.0f} % busy for {minutes(limit)}{why}"
    return None


def gpu_util(sample: dict[str, Any]) -> float | None:
    """The mean utilisation over the sample's GPUs; None without GPUs."""
    gpus = sample.get("gpus")
    values = [g.get("util_percent") for g in gpus if isinstance(g, dict)] if gpus else []
    known = [float(v) for v in values if finite(v)]
    return sum(known) / len(known) if known else None


def lines(path: Path, tail: int | None = None) -> list[dict[str, Any]]:
    """The JSON object lines of a .jsonl file (its last `tail` bytes), a cut-off line skipped."""
    try:
        with path.open("rb") as stream:
            if tail is not None and path.stat().st_size > tail:
                stream.seek(-tail, os.SEEK_END)
            text = stream.read().decode("utf-8", "replace")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if isinstance(raw, dict):
            found.append(raw)
    return found


def since_start(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the trainer's latest start (a resumed run appends after the old ones)."""
    starts = [i for i, e in enumerate(events) if e.get("event") == "start"]
    return events[starts[-1] :] if starts else []


def alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class StallWatch:
    """The stall rule applied to one run folder, poll after poll (see the module docstring)."""

    def __init__(self, run: Path, log: Callable[[str], None]) -> None:
        self.run, self.output, self.log = run, run / "output", log
        self.told: set[int] = set()
        """Trainer pids whose stall was told: each is told once."""
        self.stopping: tuple[float, int, float, str] | None = None
        """A stall stop under way: (when, the trainer's pid, its save window, the reason)."""

    def check(self, stall_s: float | None, on_stall: str, now: float) -> str | None:
        """Tell a new stall (no step for `stall_s`, None: the default limit; `on_stall`: notify
        or stop); the reason to end the run now, once a stall stop has come to it."""
        if self.stopping is not None:
            return self._stop_done(now)
        state = read_json(self.output / "status.json")
        pid = state.get("pid")
        if state.get("phase") != "training" or not isinstance(pid, int) or not alive(pid):
            return None
        if pid in self.told:
            return None
        events = since_start(lines(self.output / "metrics.jsonl"))
        samples = lines(self.output / "system.jsonl", SAMPLES_TAIL_BYTES)
        reason = stall_reason(events, samples, now, stall_s)
        if reason is None:
            return None
        self.told.add(pid)
        action = "stop" if on_stall == "stop" else "notify"
        epoch = next((e.get("epoch") for e in reversed(events) if "epoch" in e), None)
        record = {"event": "stall", "time": round(now, 3), "epoch": epoch, "message": reason}
        with (self.output / "metrics.jsonl").open("a", encoding="utf-8") as stream:
            stream.write(json.dumps({**record, "action": action}) + "\n")
        self.log(f"training stalled: {reason} (on_stall: {action})")
        if action == "stop":
            nan = reason.startswith("the loss is")
            send(pid, signal.SIGKILL if nan else signal.SIGTERM)
            save = min(SAVE_S, limit_s(events, stall_s))
            self.stopping = (now, pid, 0.0 if nan else save, reason)
        return None

    def _stop_done(self, now: float) -> str | None:
        assert self.stopping is not None
        since, pid, save, reason = self.stopping
        if alive(pid):
            if now - since < save:
                return None
            self.log(f"the trainer (pid {pid}) did not save within {save:.0f} s; killing it")
            send(pid, signal.SIGKILL)
        following = mtime(self.run / "heartbeat") > since
        if now - since < save + (HANDOVER_S if following else ANSWER_S):
            return None  # a following controller downloads, then terminates this host
        return f"training stalled ({reason}) and instance.on_stall is stop"


def send(pid: int, signum: int) -> None:
    """Signal the trainer; one that ended meanwhile needs nothing more."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}
