"""Waiting for a new host's SSH host key fingerprints, so the first connect can verify its key.

cloud-init prints the fingerprints to the boot console a minute or more after EC2 says
`running`, while sshd is coming up anyway, so the console is read again with a growing pause
until they appear or `instance.host_key_wait_s` has passed. Only then, and saying so, does the
first connect fall back to trusting the key it is shown. The loop is async (one blocking read
per try in a thread) so a cancelled caller stops it at once; the provider reads, never waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pacerid_tui.core.cloud.base import HostKeyFingerprints, Report
from pacerid_tui.core.kernel.errors import InstanceGone, PaceridError

FIRST_RETRY_S = 3.0
"""Pause before the second read: the console is rarely ready at `running`."""

BACKOFF = 1.5
MAX_RETRY_S = 20.0
"""The longest pause between reads: GetConsoleOutput is rate-limited per account, and the
fingerprints come once, so a few seconds late costs nothing."""


async def printed_fingerprints(
    provider: HostKeyFingerprints,
    instance_id: str,
    wait_s: float,
    say: Report,
    alert: Report,
    gone: Callable[[], Awaitable[str | None]] | None = None,
) -> tuple[str, ...]:
    """The fingerprints the host printed; empty (said through `alert`) when none came in time.

    `gone` is asked before each pause, as the connect loop asks it (ssh.connect): a host that
    ended before it printed anything prints nothing, and waiting out `wait_s` for it (four
    minutes by default) would only hold the step; then InstanceGone with its sentence."""
    deadline = time.monotonic() + wait_s
    pause = FIRST_RETRY_S
    said_waiting = False
    while True:
        try:
            printed = await asyncio.to_thread(provider.host_key_fingerprints, instance_id)
        except PaceridError as err:
            alert(
                f"Cannot read the boot console of {instance_id} ({err}), so its host key cannot "
                "be verified; trusting the key it shows on first connect."
            )
            return ()
        if printed:
            say(f"{instance_id} printed its host key fingerprints; pinning its key if it matches.")
            return tuple(printed)
        left = deadline - time.monotonic()
        if left <= 0:
            alert(
                f"The boot console of {instance_id} printed no SSH host key fingerprints within "
                f"{wait_s:g} s, so its host key cannot be verified; trusting the key it shows on "
                "first connect."
            )
            return ()
        why = await gone() if gone is not None else None
        if why:
            raise InstanceGone(why)
        if not said_waiting:
            say(f"Waiting for {instance_id} to print its host key fingerprints on its console…")
            said_waiting = True
        await asyncio.sleep(min(pause, left))
        pause = min(pause * BACKOFF, MAX_RETRY_S)
