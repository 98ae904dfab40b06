"""A controller's sign of life on the host while a step before training runs.

Until the host watchdog starts (at the end of setup), the boot switch powers the host off
`boot_grace_minutes` after its last heartbeat (core/kernel/boot_switch.py); from then on the
watchdog does so `idle_terminate_minutes` after training ended or never started
(trainer/watchdog.py). A step that outlasts either while the controller is plainly there (a dataset
upload over a slow link, a long setup, a Kaggle download) must not trip them, so upload, setup and
data touch both heartbeats for as long as they run (`keeps_the_host` decorates those steps):
BEATS_PER_LIMIT times within the shorter limit, at most MAX_PERIOD_S apart. The touches go over an
SSH connection of their own: on the step's, a heartbeat waits behind whatever the upload has queued
(up to a channel window, 2 MB: ten seconds at 200 kB/s). A failed touch is tried again, on a new
connection, at the next beat; the step's own connection tells the step what went wrong."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from pacerid_tui import paths
from pacerid_tui.config import Config, InstanceConfig
from pacerid_tui.core.kernel import boot_switch
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Instance, Run
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.remote.host_contract import HostPaths

BEATS_PER_LIMIT = 4
"""Touches within the shorter limit: three can be lost or late before it trips."""
MAX_PERIOD_S = 60.0
"""One command a minute is nothing beside an upload; the default limits are 30 minutes."""


def period(limits: InstanceConfig) -> float:
    """Seconds between touches for a run with these limits."""
    shorter_s = min(limits.boot_grace_minutes, limits.idle_terminate_minutes) * 60
    return min(MAX_PERIOD_S, shorter_s / BEATS_PER_LIMIT)


def command(run_id: str) -> str:
    """Touches the boot switch's heartbeat and the watchdog's (whichever exists yet)."""
    return (
        f"{boot_switch.HEARTBEAT}; touch {HostPaths(run_id).shell_root}/heartbeat 2>/dev/null; true"
    )


@contextlib.asynccontextmanager
async def beating(target: ssh.Target, run_id: str, limits: InstanceConfig) -> AsyncIterator[None]:
    """The host hears from us at once, then every period(limits), until the block ends."""
    every, touch = period(limits), command(run_id)

    done = asyncio.Event()

    async def beat() -> None:
        conn: asyncssh.SSHClientConnection | None = None
        try:
            while True:
                try:
                    conn = conn or await ssh.connect_once(target)
                    await ssh.run(conn, touch)
                except (OSError, asyncio.TimeoutError, asyncssh.Error, HostError):
                    if conn is not None:
                        conn.close()
                    conn = None
                if done.is_set():  # ended while connecting or touching: see below
                    break
                await asyncio.sleep(every)
        finally:
            if conn is not None:
                conn.close()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        # The event as well as the cancel: on Python 3.11 asyncio.wait_for (inside asyncssh's
        # connect) can swallow a cancel that comes as the connection completes (CPython
        # gh-86296, fixed in 3.12), and a beat that went on would touch the heartbeat for as
        # long as this process lives, keeping an idle host billing. Seen once in the fault
        # matrix (launch-pending × ssh-drop: the cell waited on the beat for 18 minutes).
        done.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Steps(Protocol):
    """What `keeps_the_host` needs of the object whose steps it decorates (the Lifecycle)."""

    async def connection(self, run: Run) -> asyncssh.SSHClientConnection: ...

    def live_instance(self, run: Run) -> Instance: ...

    def config_of(self, run: Run) -> Config: ...


S = TypeVar("S", bound=Steps)
P = ParamSpec("P")
R = TypeVar("R")


def keeps_the_host(
    step: Callable[Concatenate[S, Run, P], Awaitable[R]],
) -> Callable[Concatenate[S, Run, P], Awaitable[R]]:
    """A step (taking the lifecycle, then the run) run `beating` the run's host while it runs."""

    @functools.wraps(step)
    async def step_beating(steps: S, run: Run, /, *args: P.args, **kwargs: P.kwargs) -> R:
        # The step's own connection first: it checks the host key and pins it (connections.py);
        # the heartbeat's then only needs the pinned key.
        await steps.connection(run)
        limits = steps.config_of(run).instance
        target = ssh.Target.of(
            steps.live_instance(run),
            paths.known_hosts_file(),
            proxy_command=limits.ssh_proxy_command,
        )
        async with beating(target, run.run_id, limits):
            return await step(steps, run, *args, **kwargs)

    return step_beating
