"""One supervisor per live run: everything that happens while a run lives, above the steps.

The steps (`steps/lifecycle.py`) know no orchestration and the queries (`Lifecycle.statuses`) only
read; the rules that act on a live run are here, once, so they hold the same way in the CLI
(`all`, `train --follow`, `logs --follow`) and in the dashboard (one worker per live run):
following the log and metrics (`follow_loop.py`, whose liveness checks are the controller's
heartbeat on the host), background downloads, the budget (the rule in `steps/budget_rule.py`,
read from the run's status row: a notice once its forecast passes the budget, naming the epoch
it would stop in; a warning at 80 %; at 100 % `budget.py` saves then terminates), spot notices
and recovery (`recovery.py`), stop mode's waits for the same instance to start again
(`restart_wait.py`), coming back to a run that went on unwatched (`reconcile.on_return`), and
each ending told once through the listener (`Listener.ended`: training finished, failed or
interrupted; the budget stopped it), which the CLI and the dashboard only show. A budget stop
runs in the supervisor's own task: nothing that refreshes the screen can cancel it halfway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import InstanceState, MetricEvent, Notice, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise import budget, notify
from pacerid_tui.core.supervise.follow_loop import follow_run
from pacerid_tui.core.supervise.reconcile import Away, on_return
from pacerid_tui.core.supervise.recovery import ending, how_it_ended, recover
from pacerid_tui.core.supervise.restart_wait import (
    STOP_MODE_ENDS,
    STOPPED_POLL_S,
    in_stop_mode,
    until_stopped,
)
from pacerid_tui.core.supervise.restart_wait import wait_for_start as restarted

BUDGET_POLL_S = 5.0
"""How often the budget is checked while a run lives: the cost moves by cents an hour, and a
check reads the registry and a cached price history, no API call."""
RECOVERABLE = ("interrupted", "gone")


class Supervisor:
    """Watches one run (by id) for as long as its instance lives."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        run_id: str,
        *,
        clock: Callable[[], float] = time.time,
        poll_s: float = BUDGET_POLL_S,
        ask: Callable[[Run], Awaitable[bool]] | None = None,
        recover_left: bool = False,
        recover_command: str = "all",
    ) -> None:
        self.lifecycle = lifecycle
        self.run_id = run_id
        self.clock = clock
        self.poll_s = poll_s
        self.ask = ask
        """Asked whether to relaunch a run whose instance is gone for no known reason: True
        relaunches, False leaves it ended; None: never relaunched, an error says how (the CLI's
        `all --recover`)."""
        self.recover_left = recover_left
        """Look again at a run recorded as ended (`Run.ended`) instead of saying so: the CLI's
        `--recover`, which relaunches one whose instance vanished even if it was left ended."""
        self.recover_command = recover_command
        """The command the error for a vanished instance names, with `--run RUN --recover`."""
        self.ended: str | None = None
        """How the run ended when it was not recovered (our own stop, or gone unasked)."""
        self.budget_stopped = False
        """Our own stop ended this run (its budget, or a stall with `instance.on_stall: stop`;
        saved, then terminated): nothing recovers it."""
        self.stall_stopped = False
        """…and it was the stall."""
        self.stopped_poll_s = STOPPED_POLL_S
        self.recovering = False
        """A recovery is under way, or failed (`failure.follow_or_clean_up` ends its host)."""
        self._last_end: MetricEvent | None = None
        """The trainer's terminal event that ended the latest follow (why it was interrupted)."""
        self._best: float | None = None
        """The best validation accuracy streamed so far, for the ending's notice."""
        self._warned = False
        self._foreseen = False
        self._budget_hit = asyncio.Event()
        """The budget stop began: a follow under way ends (`_cut_short`)."""
        """The forecast passing the budget was told (`notify.ahead_of_budget`)."""
        self._stopping: asyncio.Task[Run] | None = None
        self._returning: asyncio.Task[Away | None] | None = None

    @property
    def run(self) -> Run:
        return self.lifecycle.registry.get(self.run_id)

    def alive(self) -> bool:
        instance = self.run.instance
        return instance is not None and instance.state.is_alive

    # -- the budget -------------------------------------------------------------------------------
    async def check_budget(self) -> bool:
        """Apply the money rule once; True when the budget has stopped the run.

        Two callers at once (the dashboard's watch and a run all) share one stop.
        """
        if self._stopping is not None:
            await asyncio.shield(self._stopping)
            return True
        run = self.run
        if run.instance is None or not run.instance.state.is_alive:
            return self.budget_stopped
        limit = self.lifecycle.config_of(run).instance.budget_usd
        if not limit:
            return False
        [row] = await self.lifecycle.statuses([run], now=self.clock())
        if row.budget_verdict == "warn" and not self._warned:
            self._warned = True
            self.lifecycle.listener.alert(
                run.run_id,
                f"{run.run_id} has spent ${row.budgeted_usd:.2f}, "
                f"{row.budget_share or 0.0:.0%} of its ${limit:.2f} budget.",
            )
        if not self._foreseen and budget.foreseen(run, row) and row.budget_verdict != "stop":
            self._foreseen = True  # once: the pace wobbles, the news does not change
            self.lifecycle.listener.noticed(run.run_id, notify.ahead_of_budget(row, limit))
        if row.budget_verdict != "stop" or self._stopping is not None:
            return self._stopping is not None
        self.budget_stopped = True
        self._budget_hit.set()
        self._stopping = asyncio.ensure_future(self._stop(run, limit))
        # Shielded: a caller cancelled meanwhile (a step taken over, a follow ended) leaves the
        # save-then-terminate to finish; only the app's own exit cancels the task itself.
        await asyncio.shield(self._stopping)
        return True

    async def _stop(self, run: Run, limit: float) -> Run:
        """The budget stop (saved, then terminated), then its ending told."""
        run = await budget.stop(self.lifecycle, run, limit)
        notice = dataclasses.replace(notify.BUDGET, best_val_acc=self._best)
        self.lifecycle.listener.ended(self.run_id, notice)
        return run

    async def watch(self, until: Callable[[], bool] | None = None) -> None:
        """Check the budget every `poll_s` until `until()` is true (default: the instance ended)
        or the budget stopped the run."""
        await self.come_back()
        done = until or (lambda: not self.alive())
        while not done():
            if await self.check_budget():
                return
            await asyncio.sleep(self.poll_s)

    def cancel(self) -> None:
        """Cancel a budget stop in progress (the app is leaving; the host's own bound and the
        next supervising command take over)."""
        if self._stopping is not None and not self._stopping.done():
            self._stopping.cancel()

    # -- following --------------------------------------------------------------------------------
    async def follow(self, *, stop: asyncio.Event | None = None, budget: bool = True) -> str:
        """Stream the run's training to its end, the budget watched meanwhile (unless a watch of
        its own already runs: `budget=False`), recovering on the way: a follow that ends
        "interrupted" or "gone" gets `_after_end`'s verdict (a real interruption moves the run
        to a new instance and the follow goes on there), whoever started it (`all`, a plain
        `train --follow`, the dashboard's `t`). How it ended: `follow_run`'s outcomes, "budget",
        "expired", or "ended" (not recovered: `self.ended` says how)."""
        self.recovering = False  # one cancelled halfway (the user terminating) is over
        await self.come_back()
        if self.ended:
            return "expired"
        if self._left_ended():
            return "ended"
        if budget and await self.check_budget():
            return "budget"
        watcher = asyncio.create_task(self.watch()) if budget else None
        try:
            outcome = await self._cut_short(self._follow_on(stop))
            while outcome in RECOVERABLE and not self.budget_stopped:
                if not await self._after_end(outcome):
                    outcome = "ended"
                    break
                outcome = await self._cut_short(self._follow_on(stop))
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        if self._stopping is not None:
            await asyncio.shield(self._stopping)
        if self.budget_stopped:
            return "stalled" if self.stall_stopped else "budget"
        return outcome

    async def _cut_short(self, following: Coroutine[Any, Any, str]) -> str:
        """The follow, ended once the budget stop begins ("budget"): the host is being
        terminated, and its follower would spend a reconnect deadline finding that out."""
        task = asyncio.ensure_future(following)
        halt = asyncio.ensure_future(self._budget_hit.wait())
        try:
            await asyncio.wait([task, halt], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (task, halt):
                waiting.cancel()
            await asyncio.gather(task, halt, return_exceptions=True)
        return "budget" if task.cancelled() else task.result()

    async def _follow_on(self, stop: asyncio.Event | None) -> str:
        """One instance's follow; in stop mode the same instance stopping and starting again
        (waited for, never a second one) is still this instance's follow."""
        outcome = "stopped"  # found stopped (stop mode): wait for it before following
        instance = self.run.instance
        if instance is None or instance.state is not InstanceState.STOPPED:
            outcome = await self._follow_once(stop)
        while outcome in STOP_MODE_ENDS and in_stop_mode(self.run) and not self.budget_stopped:
            if not await self.wait_for_start():
                return "expired" if self.ended else outcome
            outcome = await self._follow_once(stop)
        return outcome

    # -- every step -------------------------------------------------------------------------------
    async def run_all(self) -> Run:
        """Every step in order, skipping what is done; ends with results downloaded, with the
        run stopped by its budget (saved, then terminated), or, for a run whose instance ended
        by our own stop (or was left ended), with how it ended (`self.ended`)."""
        lifecycle = self.lifecycle
        await self.come_back()
        if self.ended or self._left_ended():
            return self.run
        [run] = await lifecycle.refresh([self.run])
        if run.instance is not None and not run.instance.state.is_alive:
            if not await self._after_end("gone"):
                return self.run
        else:
            run = await lifecycle.launch(run)
        watcher = asyncio.create_task(self.watch(until=lambda: False))
        try:
            run = self.run
            await lifecycle.upload(run)
            await lifecycle.setup(run)
            await lifecycle.data(run)
            state = await lifecycle.training_state(run)
            if not state.alive and state.phase != "done":
                await lifecycle.train(run)
            outcome = await self.follow(budget=False)  # recovers on the way
            if outcome == "ended":
                return self.run
            if not self.budget_stopped and outcome != "expired":
                await lifecycle.download(self.run)
        except (PaceridError, OSError, asyncssh.Error):
            if not self.budget_stopped:  # a step cut short by the budget stop is no failure
                raise
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
        return self.run

    # -- one follow, and what it hears ------------------------------------------------------------
    async def _follow_once(self, stop: asyncio.Event | None) -> str:
        """`follow_run`; in stop mode cut short ("stopped") once the provider says the instance
        stopped, as its follower would otherwise keep reconnecting to a host that is down."""
        self._last_end = None
        following = asyncio.ensure_future(
            follow_run(
                self.lifecycle,
                self.run,
                stop=stop,
                on_end=self._ended_with,
                on_epoch=self._epoch,
                on_stall=self._stalled,
            )
        )
        if not in_stop_mode(self.run):
            return await following

        watching = asyncio.ensure_future(
            until_stopped(self.lifecycle, self.run_id, self.stopped_poll_s)
        )
        try:
            await asyncio.wait([following, watching], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (following, watching):
                task.cancel()
            await asyncio.gather(following, watching, return_exceptions=True)
        if following.done() and not following.cancelled():
            return following.result()
        watching.result()  # a provider error ends the follow, as it does without stop mode
        return "stopped"

    def _ended_with(self, event: MetricEvent) -> None:
        """Training ended (finished, failed, interrupted): told once, here, for every face."""
        self._last_end = event
        if self.stall_stopped:
            return  # the trainer saved because the stall stop asked it to: told as the stall
        notice = notify.of_event(event, self._best)
        if notice is not None:
            self.lifecycle.listener.ended(self.run_id, notice)

    def _stalled(self, event: MetricEvent) -> None:
        """The host found training stalled (trainer/stall.py): told once; with
        `instance.on_stall: stop` the run is saved and terminated, in the supervisor's own task
        like a budget stop (the host has asked the trainer to save meanwhile)."""
        stop = self.lifecycle.config_of(self.run).instance.on_stall == "stop"
        notice = notify.of_stall(event, stop, self._best)
        self.lifecycle.listener.alert(self.run_id, f"{self.run_id} {notice.text}")
        if not stop or self._stopping is not None:
            self.lifecycle.listener.ended(self.run_id, notice)
            return
        self.budget_stopped = self.stall_stopped = True
        self._stopping = asyncio.ensure_future(self._stop_stalled(event, notice))

    async def _stop_stalled(self, event: MetricEvent, notice: Notice) -> Run:
        run = await budget.stop_stalled(self.lifecycle, self.run, event.message or "no reason")
        self.lifecycle.listener.ended(self.run_id, notice)
        return run

    def _epoch(self, event: MetricEvent) -> None:
        if event.val_acc is not None:
            self._best = max(event.val_acc, self._best or event.val_acc)

    async def wait_for_start(self) -> bool:
        """Stop mode: wait for EC2 to start the same instance again and training to resume
        (`restart_wait.wait_for_start`); False, and `self.ended` perhaps saying why, when not."""
        return await restarted(self.lifecycle, self.run_id, self.stopped_poll_s, self._end)

    # -- coming back ------------------------------------------------------------------------------
    async def come_back(self) -> Away | None:
        """Once per supervisor, before it acts: reconcile a run that trained while nobody
        watched (what happened while away, said through the listener; what is new downloaded;
        a stopped instance that can never start again terminated, `self.ended` saying so)."""
        if self._returning is None:
            self._returning = asyncio.ensure_future(
                on_return(self.lifecycle, self.run_id, self._end)
            )
        return await asyncio.shield(self._returning)

    async def _after_end(self, outcome: str) -> bool:
        """Training or its instance ended early: recover (True) or say how the run ended."""
        [run] = await self.lifecycle.refresh([self.run])
        last = self._last_end
        why = last.message if last is not None and last.event == outcome else None
        verdict = ending(outcome, run.instance, why)
        left = False  # the user, asked, leaves a vanished instance's run ended
        if verdict == "unknown" and self.ask is not None:
            left = not await self.ask(run)
            verdict = "ended" if left else "recover"
        if verdict == "recover":
            self.recovering = True  # a failure from here on left a replacement host behind
            await recover(self.lifecycle, run, outcome)
            self.recovering = False
            return True
        if verdict == "ended":
            said = "Left ended, as asked." if left else "No relaunch."
            self._end(f"{how_it_ended(run)} {said}")
            return False
        self.ended = how_it_ended(run)
        raise PaceridError(
            f"{self.ended} Nobody knows why, so it is not relaunched by itself; "
            f"`pacerid-tui {self.recover_command} --run {run.run_id} --recover` relaunches it."
        )

    def _end(self, sentence: str) -> None:
        """The run ended and is not recovered: said, and kept with the run (`Run.ended`), so no
        later supervisor (a restarted dashboard, the next `all`) asks or relaunches again."""
        self.ended = sentence
        self.lifecycle.registry.update(self.run_id, ended=sentence)
        self.lifecycle.listener.alert(self.run_id, sentence)

    def _left_ended(self) -> bool:
        """The run was ended before (`Run.ended`) and its instance is gone: nothing to follow or
        to ask; said once more. `recover_left` (the CLI's `--recover`) looks again instead."""
        run = self.run
        if run.ended is None or self.recover_left:
            return False
        if run.instance is not None and run.instance.state.is_alive:
            return False  # a live instance is always supervised, whatever was written
        self.ended = run.ended
        self.lifecycle.listener.report(run.run_id, f"{run.ended} (recorded earlier)")
        return True


async def run_all(lifecycle: Lifecycle, run: Run) -> Run:
    """Every step of `run` under a supervisor of its own (the CLI's `all`)."""
    return await Supervisor(lifecycle, run.run_id).run_all()
