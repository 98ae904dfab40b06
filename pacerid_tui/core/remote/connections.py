"""The SSH connections of the steps: one kept per run, opened when a step first needs the host.

Kept apart from the steps (steps/lifecycle.py) because reaching a host is its own small policy: the
provider's SSH rule follows this machine's address on every (re)connect, and before the first
pin the host key is checked against the fingerprints the host printed on its console. The
lifecycle hands in how to read a run (as last recorded), how to refresh it from its provider
(recording what it says), its config, provider and listener as callables, so the listener it
calls is always the current one (the dashboard replaces it after construction), and this room
never imports the steps' registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from pacerid_tui import paths
from pacerid_tui.config import Config
from pacerid_tui.core.cloud.base import CallerAccess, HostKeyFingerprints, Provider
from pacerid_tui.core.kernel.errors import InstanceGone, PaceridError, UsageError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Instance, Run
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.remote.host_keys import printed_fingerprints

Tell = Callable[[str, str], None]
"""Receives (run id, one sentence): the listener's report or alert."""


class Connections:
    def __init__(
        self,
        current: Callable[[str], Run],
        refresh: Callable[[list[Run]], Awaitable[list[Run]]],
        config_of: Callable[[Run], Config],
        provider_of: Callable[[Run], Provider],
        report: Tell,
        alert: Tell,
    ) -> None:
        self._current = current
        self._refresh = refresh
        self._config_of = config_of
        self._provider_of = provider_of
        self._report = report
        self._alert = alert
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}

    async def connection(self, run: Run) -> asyncssh.SSHClientConnection:
        """The run's open connection, or a new one to its live instance."""
        conn = self._conns.get(run.run_id)
        if conn is not None and not conn.is_closed():
            return conn
        run = self._current(run.run_id)
        if run.instance is None or not run.instance.state.is_alive:
            raise UsageError(f"Run {run.run_id} has no running instance; launch it first.")
        instance = run.instance

        async def gone() -> str | None:
            # Through the refresh, so the registry records the ending too: the next command
            # and the dashboard must not take the instance for live (or billing).
            try:
                [now] = await self._refresh([self._current(run.run_id)])
            except PaceridError:
                return None  # cannot tell: keep waiting, as for a host still booting
            if now.instance is not None and now.instance.state.is_alive:
                return None
            why = (now.instance.state_reason if now.instance else None) or "gone"
            return f"Instance {instance.instance_id} ended ({why}); it cannot be reached."

        target = await self.ssh_target(run, instance, gone)
        conn = await ssh.connect(target, report=lambda m: self._report(run.run_id, m), gone=gone)
        self._conns[run.run_id] = conn
        return conn

    def live_instance(self, run: Run) -> Instance:
        """The run's instance as the registry knows it; InstanceGone when it is not alive."""
        instance = self._current(run.run_id).instance
        if instance is None or not instance.state.is_alive:
            raise InstanceGone(f"Run {run.run_id} has no running instance.")
        return instance

    async def ssh_target(
        self,
        run: Run,
        instance: Instance,
        gone: Callable[[], Awaitable[str | None]] | None = None,
    ) -> ssh.Target:
        """How to reach the host; before the first pin, the fingerprints its console printed
        (waiting for them ends early when `gone` says the instance has ended)."""
        config = self._config_of(run).instance
        target = ssh.Target.of(
            instance, paths.known_hosts_file(), proxy_command=config.ssh_proxy_command
        )
        provider = self._provider_of(run)

        def say(message: str) -> None:
            self._report(run.run_id, message)

        if isinstance(provider, CallerAccess):  # every (re)connect: the rule follows this machine
            try:
                await asyncio.to_thread(provider.let_caller_in, say)
            except PaceridError as err:
                say(f"Could not update the SSH rule ({err}).")
        if ssh.is_pinned(target) or not isinstance(provider, HostKeyFingerprints):
            return target
        printed = await printed_fingerprints(
            provider,
            instance.instance_id,
            config.host_key_wait_s,
            say,
            lambda m: self._alert(run.run_id, m),
            gone,
        )
        return replace(target, fingerprints=printed)

    def login_argv(self, run: Run, *command: str) -> list[str]:
        """The system `ssh` command line for the run's host (the CLI's `ssh`, the dashboard's s).

        Refused until the host key is pinned: the argv checks the key strictly, and only our
        own first connect checks it against what the host printed at boot.
        """
        instance = self._current(run.run_id).instance
        if instance is None or not instance.state.is_alive:
            raise UsageError(f"Run {run.run_id} has no running instance; launch it first.")
        proxy = self._config_of(run).instance.ssh_proxy_command
        target = ssh.Target.of(instance, paths.known_hosts_file(), proxy_command=proxy)
        if not ssh.is_pinned(target):
            raise UsageError(
                f"The host key of {instance.instance_id} is not pinned yet; upload first "
                "(`pacerid-tui upload`), which checks and pins it."
            )
        return target.ssh_argv(*command)

    def drop(self, run: Run) -> None:
        """Close the run's connection, if any (its instance is going away)."""
        conn = self._conns.pop(run.run_id, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close every connection; training goes on, detached on its host."""
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
