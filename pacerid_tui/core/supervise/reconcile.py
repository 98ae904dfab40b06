"""Coming back to a stop-mode run: what happened while no controller ran, and what is left over.

With `instance.interruption: stop` a run is interrupted, stopped and resumed on its own
(trainer/boot_service.sh), with nobody watching. When the dashboard or a command next runs,
`on_return` (the supervisor's, once per run before it acts) reconciles what the host could not:

- a stopped instance that can never run again is terminated, its request cancelled first
  (Provider.terminate): its request expired (ValidUntil bounds the request, not the instance),
  was cancelled or closed, or is `disabled` because the host powered itself off after a failed
  self-clean-up (EC2 user guide, "State changes for a Spot request"). One whose request is
  `disabled` by the Spot service's stop (`instance-stopped-no-capacity`) waits for capacity and
  is left alone;
- a running one has its new results downloaded;

and it says what happened from the host's own records, downloaded into the results folder:
each interruption (the trainer's `interrupted` event at the notice) with the boot that came
after it (output/boots.jsonl), the stopped stretch between them, whether training resumed, and
the epochs finished since the controller last looked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pacerid_tui.core.cloud.base import Provider, SpotRequests
from pacerid_tui.core.kernel import host_records
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.host_records import Interruption
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Instance, InstanceState, Run

if TYPE_CHECKING:
    from pacerid_tui.core.steps.lifecycle import Lifecycle

GONE_STATES = ("disabled", "cancelled", "closed", "failed")
"""Request states from which EC2 never starts the stopped instance again by itself, but for
a `disabled` one stopped by the Spot service (WAITING_FOR_CAPACITY)."""
WAITING_FOR_CAPACITY = (
    "instance-stopped-no-capacity",
    "instance-stopped-by-price",
    "instance-stopped-capacity-oversubscribed",
)
"""A `disabled` request's status codes after an interruption with behaviour `stop` (user guide,
"State changes for a Spot request"): the Spot service starts the instance again when capacity
returns. After `instance-stopped-by-user` (a shutdown from inside) it never does."""


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


def away_from(results: Path, since: float) -> Away:
    """What the host's records in `results` say happened after `since` (host clock)."""
    epochs = [
        e.epoch
        for e in host_records.metric_events(results / "metrics.jsonl")
        if e.event == "epoch" and e.epoch and e.time > since
    ]
    return Away(host_records.interruptions(results, since), epochs)


def left_over(provider: Provider, instance: Instance, now: float) -> str | None:
    """Why this stopped instance will never run again, or None (running, or awaiting capacity)."""
    if instance.state is not InstanceState.STOPPED or instance.spot_request_id is None:
        return None
    if not isinstance(provider, SpotRequests):
        return None
    found = provider.spot_request_state(instance.spot_request_id)
    if found is None:
        return "its spot request is gone"
    state, valid_until, status = found
    if valid_until is not None and valid_until <= now:
        return "its spot request expired"
    if state == "disabled" and status in WAITING_FOR_CAPACITY:
        return None
    if state in GONE_STATES:
        return f"its spot request is {state}"
    return None


async def end_left_over(lifecycle: Lifecycle, run: Run) -> str | None:
    """Terminate the run's stopped instance if it can never start again (`left_over`; its
    request cancelled first) and say so; None when it was not left over."""
    instance = run.instance
    if instance is None:
        return None
    why = await asyncio.to_thread(left_over, lifecycle.provider_of(run), instance, time.time())
    if not why:
        return None
    await lifecycle.terminate(run)
    return (
        f"{instance.instance_id} was stopped and {why}, so it was terminated "
        "(its request cancelled first)."
    )


async def reconcile(lifecycle: Lifecycle, run: Run, since: float) -> Away:
    """Clean up and download what is due for this run; what happened after `since`."""
    [run] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
    cleaned = await end_left_over(lifecycle, run)
    if cleaned is None and run.instance is not None and run.instance.state is InstanceState.RUNNING:
        await lifecycle.download(run)
    return replace(away_from(lifecycle.results_dir(run), since), cleaned_up=cleaned)


async def on_return(lifecycle: Lifecycle, run_id: str, end: Callable[[str], None]) -> Away | None:
    """Reconcile a live run that trained while nobody watched: what happened while away said
    through the listener, the training's start moved to the latest boot, and a stopped
    instance that can never start again terminated, `end` told why. None when there was
    nothing to reconcile, or it could not be (said)."""
    [run] = await lifecycle.refresh([lifecycle.registry.get(run_id)])
    if run.instance is None or not run.instance.state.is_alive:
        return None
    if run.training_started_at is None and run.instance.state is not InstanceState.STOPPED:
        return None  # nothing trained yet, so nothing happened while away
    since = run.downloaded_at or run.training_started_at or run.created_at
    try:
        away = await reconcile(lifecycle, run, since)
    except (PaceridError, OSError, asyncssh.Error) as err:
        lifecycle.listener.report(run.run_id, f"Could not reconcile on return: {err}")
        return None
    for line in away.lines():
        lifecycle.listener.report(run.run_id, f"While away: {line}")
    boots = [i.booted_at for i in away.interruptions if i.booted_at is not None]
    if boots and max(boots) > (run.training_started_at or 0):
        # The boot service restarted training then: the follow ends at events after it,
        # never at the interruption before it.
        lifecycle.update(lifecycle.registry.get(run_id), training_started_at=max(boots))
    if away.cleaned_up:
        end(away.cleaned_up)
    return away
