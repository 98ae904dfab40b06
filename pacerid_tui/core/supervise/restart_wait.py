"""Stop mode's waits: a spot instance that AWS stopped is the same run's instance again once EC2
starts it, so the supervisor waits for it (never launching a second one) and then for its boot
service to have training running again.

Apart from `supervisor.py` because it is one question asked of the provider and the host in a
loop, with its own clocks (how often to ask, how long a stop may take to come, how long a
restarted host may take to resume), and nothing of the supervisor's state but how to end the
run (`end`, which records why and says it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise.reconcile import end_left_over

STOPPED_POLL_S = 15.0
"""How often to ask the provider whether EC2 started a stopped instance again. A describe call
is free, and capacity returns after minutes to hours."""
STOP_AFTER_NOTICE_S = 180.0
"""How long after the trainer's notice the instance may still run before AWS stops it (the
two-minute warning, and a margin); past it, nothing stopped it."""
RESUME_WAIT_S = 180.0
"""How long a restarted host's boot service may take to have training running."""
STOP_MODE_ENDS = ("interrupted", "gone", "stopped")
"""A follow ending so in stop mode may be the same instance stopping: wait for it."""


def in_stop_mode(run: Run) -> bool:
    """The run's instance came from a persistent spot request that stops instead of ending."""
    return run.instance is not None and run.instance.spot_request_id is not None


async def until_stopped(lifecycle: Lifecycle, run_id: str, poll_s: float) -> None:
    """Return once the provider says the run's instance is stopped, asking every `poll_s`."""
    while True:
        await asyncio.sleep(poll_s)
        [run] = await lifecycle.refresh([lifecycle.registry.get(run_id)])
        if run.instance is not None and run.instance.state is InstanceState.STOPPED:
            return


async def wait_for_start(
    lifecycle: Lifecycle, run_id: str, poll_s: float, end: Callable[[str], None]
) -> bool:
    """The same instance stops and EC2 starts it again when capacity returns; wait for that
    (never a second instance), polling the provider every `poll_s`.

    True once it runs again with training resumed by its boot service (follow on); False when
    it never stopped, ended, or can never start again (then terminated, as the next
    reconciliation would, and `end` told why).
    """
    say = lifecycle.listener.report
    noticed_at, stopped_seen = time.monotonic(), None
    while True:
        [run] = await lifecycle.refresh([lifecycle.registry.get(run_id)])
        instance = run.instance
        if instance is None or not instance.state.is_alive:
            return False
        if instance.state is InstanceState.STOPPED:
            cleaned = await end_left_over(lifecycle, run)
            if cleaned:
                end(cleaned)
                return False
            if stopped_seen is None:
                say(
                    run.run_id,
                    f"{instance.instance_id} was stopped by AWS ({instance.state_code}); "
                    "EC2 starts it again when capacity returns. Waiting, asking every "
                    f"{poll_s:g} s; no second instance is launched.",
                )
            stopped_seen = time.time()  # host clock ~ ours: the resumed events come later
        elif instance.state is InstanceState.RUNNING and stopped_seen is not None:
            say(run.run_id, f"{instance.instance_id} started again; following on.")
            lifecycle.update(run, training_started_at=stopped_seen)
            return await resumed(lifecycle, run)
        elif stopped_seen is None and time.monotonic() - noticed_at > STOP_AFTER_NOTICE_S:
            return False
        await asyncio.sleep(poll_s)


async def resumed(lifecycle: Lifecycle, run: Run) -> bool:
    """Wait (bounded) for the boot service to have training running again, or done."""
    deadline = time.monotonic() + RESUME_WAIT_S
    while time.monotonic() < deadline:
        try:
            state = await lifecycle.training_state(run)
        except (PaceridError, OSError, asyncssh.Error):
            state = None  # the host is still booting
        if state is not None and (state.alive or state.phase == "done"):
            return True
        await asyncio.sleep(1.0)
    lifecycle.listener.report(
        run.run_id, f"Training did not resume within {RESUME_WAIT_S:.0f} s of the restart."
    )
    return False
