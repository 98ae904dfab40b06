"""Failure never leaves money running: a run-all that fails at any step fetches what exists,
then terminates the host, unless the user keeps it.

Used by `pacerid-tui all` (`--keep-on-failure` keeps the host) and the dashboard's run all (its
error dialog asks, and terminates by itself when nobody answers). It wraps the run's
`Supervisor.run_all` rather than living inside the steps, so both callers share one clean-up and
the steps stay as they are. The error it raises is one line: which step failed, why, where its
log is, and what became of the host.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn

from pacerid_tui.core.kernel.errors import PaceridError, RunNotFound
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.remote.host_contract import HostPaths
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise.supervisor import Supervisor

STEPS = ("launch", "upload", "setup", "data", "train", "download")
"""run_all's steps in order, as `run.steps_done` records them."""
HOST_LOGS = {"setup": "setup.log", "data": "data.log", "train": "train.log"}
"""The steps that leave a log under output/ on the host (downloaded with the results)."""

Keep = Callable[[str], Awaitable[bool]]
"""Asked with the failure sentence once what exists is downloaded; True keeps the host."""


class RunAllFailed(PaceridError):
    """A run-all step failed; the message says which, where its log is, and the host's fate."""

    def __init__(self, message: str, step: str, exit_code: int) -> None:
        super().__init__(message)
        self.step = step
        self.exit_code = exit_code


def failed_step(run: Run) -> str:
    """The first step not done: where run_all stopped (following training counts as train)."""
    done = set(run.steps_done)
    for step in STEPS:
        if step not in done:
            return "train" if step == "download" and "train" in done else step
    return "download"


def what_failed(step: str, cause: Exception) -> str:
    """The step and why, without the host step's own pointer to its log (we give a better one)."""
    text = str(cause).rstrip(".") if isinstance(cause, PaceridError) else repr(cause)
    own = f"The {step} step failed on the host"
    if text.startswith(own):
        return "t" + text.split(";")[0][1:]
    return f"the {step} step failed: {text}"


def where_the_log_is(lifecycle: Lifecycle, run: Run, step: str) -> str:
    name = HOST_LOGS.get(step)
    if name is None:
        return "in the messages before this one"
    local = lifecycle.results_dir(run) / name
    if local.exists():
        return f"in {local}"
    return f"in ~/{HostPaths(run.run_id).output}/{name} on the host"


async def run_all_or_clean_up(
    lifecycle: Lifecycle,
    run: Run,
    keep: Keep | bool = False,
    supervisor: Supervisor | None = None,
) -> Run:
    """`supervisor.run_all()` (the run's own, or a new one); on any failure, download, then
    terminate unless kept, then raise RunAllFailed. A cancel (the user terminating, Ctrl-C) is
    not a failure: it passes."""
    try:
        return await (supervisor or Supervisor(lifecycle, run.run_id)).run_all()
    except Exception as err:  # every failure must reach the clean-up
        cause = err
    await clean_up(lifecycle, run.run_id, cause, keep)


async def follow_or_clean_up(
    lifecycle: Lifecycle, supervisor: Supervisor, keep: Keep | bool = False, budget: bool = True
) -> str:
    """`supervisor.follow()` (a plain `train --follow`, `logs --follow`, the dashboard's `t`),
    with run all's clean-up for a recovery that failed on its replacement (that host would bill
    with nothing on it). Any other failure of a follow passes as it is: training goes on on the
    host, and the next follow picks it up. `budget`: as `Supervisor.follow`'s."""
    try:
        return await supervisor.follow(budget=budget)
    except Exception as err:
        if not supervisor.recovering:
            raise
        cause = err
    await clean_up(lifecycle, supervisor.run_id, cause, keep)


async def clean_up(
    lifecycle: Lifecycle, run_id: str, cause: Exception, keep: Keep | bool
) -> NoReturn:
    """After a failed step: download what exists, then terminate unless kept; always raises
    (RunAllFailed, or `cause` where nothing was launched)."""
    try:
        run = lifecycle.registry.get(run_id)
    except RunNotFound:  # its first launch failed: the run is forgotten, nothing to end
        raise cause from None
    if run.instance is None:
        raise cause  # nothing was launched: nothing to fetch or to end
    step = failed_step(run)
    alive = run.instance.state.is_alive
    if alive and step != "launch":
        await download_what_exists(lifecycle, run)
    where = where_the_log_is(lifecycle, run, step)
    sentence = f"{run.run_id}: {what_failed(step, cause)}; its log is {where}"
    if not alive:  # e.g. the user terminated it meanwhile: nothing to keep or to end
        fate = "the host had already ended"
    elif keep if isinstance(keep, bool) else await keep(sentence):
        fate = (
            "the host is kept and billing (one whose setup never finished still powers itself "
            "off instance.boot_grace_minutes after the last controller contact); "
            f"`pacerid-tui terminate --run {run.run_id}` ends it"
        )
    else:
        fate = await terminate(lifecycle, run)
    raise RunAllFailed(f"{sentence}; {fate}.", step, getattr(cause, "exit_code", 1)) from cause


async def download_what_exists(lifecycle: Lifecycle, run: Run) -> None:
    try:
        await lifecycle.download(run)
    except Exception as err:  # the host may be unreachable: terminate anyway
        lifecycle.listener.report(run.run_id, f"Could not download the results: {err}")


async def terminate(lifecycle: Lifecycle, run: Run) -> str:
    try:
        await lifecycle.terminate(run)
    except Exception as err:  # said to the user, who must end it by hand
        return (
            f"terminating the host failed too ({err}); "
            f"end it with `pacerid-tui terminate --run {run.run_id}`"
        )
    return "the host was terminated"
