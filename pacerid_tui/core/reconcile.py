"""Coming back to a stop-mode run: what happened while no controller ran, and what is left over.

With `instance.interruption: stop` a run is interrupted, stopped and resumed on its own
(trainer/boot_service.sh), with nobody watching. When the dashboard or a command next runs,
`reconcile` (for the supervisor to call per run) does what the host could not:

- a stopped instance that can never run again is terminated, its request cancelled first
  (Provider.terminate): its request expired (ValidUntil bounds the request, not the instance),
  was cancelled or closed, or is `disabled` because the host powered itself off after a failed
  self-clean-up (EC2 user guide, "State changes for a Spot request"). One whose request is
  `open` waits for capacity and is left alone;
- a running one has its new results downloaded;

and it says what happened from the host's own records, downloaded into the results folder:
each interruption (the trainer's `interrupted` event at the notice) with the boot that came
after it (output/boots.jsonl), the stopped stretch between them, whether training resumed, and
the epochs finished since the controller last looked.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacerid_tui.core.cloud.base import Provider, SpotRequests
from pacerid_tui.core.models import Instance, InstanceState, Run

if TYPE_CHECKING:
    from pacerid_tui.core.lifecycle import Lifecycle

GONE_STATES = ("disabled", "cancelled", "closed", "failed")
"""Request states from which EC2 never starts the stopped instance again by itself."""


@dataclass(frozen=True)
class Interruption:
    at: float
    """The spot notice, host clock (the trainer checkpointed then)."""
    booted_at: float | None = None
    """The next boot, once capacity returned; None while it has not."""
    resumed: bool = False


@dataclass(frozen=True)
class Away:
    interruptions: list[Interruption]
    epochs_gained: list[int]
    cleaned_up: str | None = None

    @property
    def stopped_s(self) -> float:
        """Notice to next boot, summed: the stretches that cost only the volume."""
        return sum(i.booted_at - i.at for i in self.interruptions if i.booted_at is not None)

    def lines(self) -> list[str]:
        said = []
        for i in self.interruptions:
            at = time.strftime("%H:%M", time.localtime(i.at))
            if i.booted_at is None:
                said.append(f"Interrupted at {at}; stopped, waiting for capacity.")
            else:
                back = "training resumed" if i.resumed else "training did not resume"
                said.append(
                    f"Interrupted at {at}; stopped {(i.booted_at - i.at) / 60:.0f} min, "
                    f"then started again and {back}."
                )
        if self.epochs_gained:
            said.append(
                f"{len(self.epochs_gained)} epoch(s) finished while away "
                f"({self.epochs_gained[0]}–{self.epochs_gained[-1]})."
            )
        if self.cleaned_up:
            said.append(self.cleaned_up)
        return said


def jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a stop
    return [item for item in found if isinstance(item, dict)]


def away_from(results: Path, since: float) -> Away:
    """What the host's records in `results` say happened after `since` (host clock)."""
    events = [e for e in jsonl(results / "metrics.jsonl") if float(e.get("time") or 0) > since]
    boots = [b for b in jsonl(results / "boots.jsonl") if float(b.get("time") or 0) > since]
    interruptions = []
    for event in (e for e in events if e.get("event") == "interrupted"):
        at = float(event["time"])
        after = [b for b in boots if float(b["time"]) > at]
        boot = min(after, key=lambda b: float(b["time"])) if after else None
        interruptions.append(
            Interruption(at, float(boot["time"]), bool(boot.get("resumed")))
            if boot
            else Interruption(at)
        )
    epochs = [int(e["epoch"]) for e in events if e.get("event") == "epoch" and e.get("epoch")]
    return Away(interruptions, epochs)


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
    for i in away_from(results, instance.launched_at).interruptions:
        until = i.booted_at
        if until is None and instance.state is InstanceState.STOPPED:
            until = now
        if until is not None:  # a boot not downloaded yet counts as running: never less
            stretches.append((min(i.at + NOTICE_LEAD_S, until), until))
    return stretches


def left_over(provider: Provider, instance: Instance, now: float) -> str | None:
    """Why this stopped instance will never run again, or None (running, or awaiting capacity)."""
    if instance.state is not InstanceState.STOPPED or instance.spot_request_id is None:
        return None
    if not isinstance(provider, SpotRequests):
        return None
    found = provider.spot_request_state(instance.spot_request_id)
    if found is None:
        return "its spot request is gone"
    state, valid_until = found
    if valid_until is not None and valid_until <= now:
        return "its spot request expired"
    if state in GONE_STATES:
        return f"its spot request is {state}"
    return None


async def reconcile(lifecycle: Lifecycle, run: Run, since: float) -> Away:
    """Clean up and download what is due for this run; what happened after `since`."""
    [run] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
    cleaned = None
    if run.instance is not None:
        instance = run.instance
        reason = await asyncio.to_thread(
            left_over, lifecycle.provider_of(run), instance, time.time()
        )
        if reason:
            await lifecycle.terminate(run)
            cleaned = (
                f"{instance.instance_id} was stopped and {reason}, so it was terminated "
                "(its request cancelled first)."
            )
        elif instance.state is InstanceState.RUNNING:
            await lifecycle.download(run)
    return replace(away_from(lifecycle.results_dir(run), since), cleaned_up=cleaned)
