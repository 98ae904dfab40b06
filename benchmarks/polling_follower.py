"""The follower before it streamed (core/follow.py as of 03d1bee, now remote/file_follower.py):
SFTP polls.

Kept, unchanged but for this docstring and its name, as the baseline row of log_stream.py:
reads by byte offset over one SFTP session, polls halving to 0.05 s while data flows and
doubling to 0.4 s while the log is quiet. A helper module: `make bench` does not run it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pacerid_tui.core.cloud.base import Report, quiet
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.lazy import asyncssh

FAST_POLL_S = 0.05
"""The shortest poll interval, reached by halving while every poll finds data: keeps latency
low while a log is busy."""
IDLE_POLL_S = 0.4
"""The longest poll interval, reached by doubling while nothing new comes (a quiet log costs
a few requests a second; a line-a-second log no longer keeps us at the fast rate)."""
READ_SIZE = 1 << 20
MAX_BACKOFF_S = 10.0

Connect = Callable[[], Awaitable["asyncssh.SSHClientConnection"]]
OnLines = Callable[[str, list[str]], None]


class PollingFollower:
    """Tails several remote files; `offsets` says how far each has been delivered."""

    def __init__(
        self,
        connect: Connect,
        paths: list[str],
        on_lines: OnLines,
        *,
        offsets: dict[str, int] | None = None,
        report: Report = quiet,
    ) -> None:
        self.connect = connect
        self.paths = paths
        self.on_lines = on_lines
        self.offsets = {path: 0 for path in paths} | (offsets or {})
        self.partial: dict[str, bytes] = {}
        """Bytes read past the last newline (not delivered, so not counted in `offsets`)."""
        self.report = report
        self.reconnects = 0

    async def run(self, finished: Callable[[], bool]) -> None:
        """Follow until `finished()` is true after a poll that found nothing new."""
        backoff = 0.5
        while True:
            try:
                conn = await self.connect()
                backoff = 0.5
                try:
                    await self._follow(conn, finished)
                    return
                finally:
                    conn.close()
            except (OSError, asyncssh.Error, HostError, asyncio.TimeoutError) as err:
                self.reconnects += 1
                self.report(f"Connection lost ({err or type(err).__name__}); reconnecting…")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _follow(
        self, conn: asyncssh.SSHClientConnection, finished: Callable[[], bool]
    ) -> None:
        self.partial.clear()  # a new connection re-reads from the delivered offsets
        async with conn.start_sftp_client() as sftp:
            handles: dict[str, asyncssh.SFTPClientFile] = {}
            try:
                delay = FAST_POLL_S
                while True:
                    got = 0
                    for path in self.paths:
                        if path not in handles:
                            try:
                                handles[path] = await sftp.open(path, "rb")
                            except asyncssh.SFTPNoSuchFile:
                                continue
                        got += await self._read(path, handles[path])
                    if got == 0:
                        if finished():
                            return
                        delay = min(delay * 2, IDLE_POLL_S)  # back off while the log is quiet
                    else:  # speed up while data flows: a busy log reaches FAST_POLL_S in a
                        delay = max(delay / 2, FAST_POLL_S)  # few polls, a line a second never
                    await asyncio.sleep(delay)
            finally:
                for handle in handles.values():
                    await handle.close()

    async def _read(self, path: str, handle: asyncssh.SFTPClientFile) -> int:
        """Deliver every whole line past the offset; the next read is in flight meanwhile."""
        delivered = 0
        partial = self.partial.get(path, b"")
        raw = self.offsets[path] + len(partial)
        pending = asyncio.ensure_future(handle.read(READ_SIZE, raw))
        try:
            while True:
                data = await pending
                if not data:
                    break
                assert isinstance(data, bytes)
                raw += len(data)
                more = len(data) == READ_SIZE
                if more:  # read ahead while this chunk is split and handed on
                    pending = asyncio.ensure_future(handle.read(READ_SIZE, raw))
                buffer = partial + data
                end = buffer.rfind(b"\n") + 1
                partial = buffer[end:]
                if end:
                    self.offsets[path] += end
                    delivered += end
                    self.on_lines(path, buffer[:end].decode("utf-8", "replace").splitlines())
                if not more:
                    break
        finally:
            if not pending.done():
                pending.cancel()
            self.partial[path] = partial
        return delivered
