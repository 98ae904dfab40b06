"""Follow files on a host by byte offset, across dropped connections, losing and repeating nothing.

Only whole lines are delivered and the offset advances past exactly the bytes delivered, so a
reconnect (spot hosts and laptops on Wi-Fi both drop links) resumes at the first undelivered
byte. Each file streams over its own exec channel (`tail_stream`: `tail -F` on the host, so a
line arrives as it is written, and a quiet log costs nothing); where that cannot start (no GNU
tail, a server that allows no commands) the file is polled over SFTP instead, faster while data
flows and slower when idle. A file that does not exist yet is waited for either way, and one
that is truncated or replaced is followed again from its start, said once (polling sees that
only when the file got shorter than what was read).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from pacerid_tui.core.cloud.base import Report, quiet
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.remote import tail_stream
from pacerid_tui.core.remote.tail_stream import Kind, Notices

FAST_POLL_S = 0.05
"""The shortest poll interval, reached by halving while every poll finds data: keeps latency
low while a log is busy."""
IDLE_POLL_S = 0.4
"""The longest poll interval, reached by doubling while nothing new comes (a quiet log costs
a few requests a second; a line-a-second log no longer keeps us at the fast rate)."""
FINISHED_CHECK_S = 0.25
"""How often `finished()` is asked while streams run (a local call: costs nothing)."""
HEADER_TIMEOUT_S = 20.0
"""How long a stream's first line may take before the file is polled instead: a server whose
every command is forced to something else (ForceCommand internal-sftp) never sends it."""
SIZE_CHECK_POLLS = 4
"""While polling, every this many quiet polls (~1.6 s once idle) the file's size is asked
for: a file shorter than what was read was truncated or replaced."""
ENDED_GRACE_S = 2.0
"""How long a stream that ended is given to turn out a dropped connection before polling."""
READ_SIZE = 1 << 20
MAX_BACKOFF_S = 10.0

Connect = Callable[[], Awaitable["asyncssh.SSHClientConnection"]]
OnLines = Callable[[str, list[str]], None]


class Follower:
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
        self.inodes: dict[str, str | None] = {}
        """Each streamed file's inode when its stream started: a new one means replaced."""
        self.polled: set[str] = set()
        """Files that could not be streamed (said once, then polled on every connection)."""
        self.report = report
        self.reconnects = 0

    async def run(self, finished: Callable[[], bool]) -> None:
        """Follow until `finished()` is true and every file has been read to its end."""
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
        async with _sftp(conn) as sftp:
            files = [asyncio.create_task(self._file(conn, sftp, path)) for path in self.paths]
            try:
                while not (finished() and await self._caught_up(sftp)):
                    done, _ = await asyncio.wait(
                        files, timeout=FINISHED_CHECK_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        task.result()  # a dropped connection raises here
            finally:
                for task in files:
                    task.cancel()
                await asyncio.gather(*files, return_exceptions=True)

    async def _caught_up(self, sftp: _Sftp) -> bool:
        """Whether every byte each file holds now has arrived (delivered or a partial line)."""
        client = await sftp.get()
        for path in self.paths:
            try:
                size = (await client.stat(path)).size or 0
            except asyncssh.SFTPNoSuchFile:
                continue
            done = self.offsets[path] + len(self.partial.get(path, b""))
            if size > done or (size < self.offsets[path] and path not in self.polled):
                return False  # more to come, or truncated and the stream restarts soon
        return True

    async def _file(self, conn: asyncssh.SSHClientConnection, sftp: _Sftp, path: str) -> None:
        """Follow one file for as long as the connection lasts: streamed, else polled."""
        if path not in self.polled and tail_stream.streamable(path):
            why = await self._stream(conn, path)
            # A host going down (a terminated local instance kills its processes first) ends
            # tail a moment before the connection: that is a drop, not a reason to poll.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), ENDED_GRACE_S)
            if conn.is_closed():
                raise ConnectionError("the connection closed")
            self.polled.add(path)
            self.report(f"Cannot stream {path} ({why}); polling it over SFTP instead.")
        await self._poll(await sftp.get(), path)

    # -- streaming ---------------------------------------------------------------------------
    async def _stream(self, conn: asyncssh.SSHClientConnection, path: str) -> str:
        """Stream until the stream cannot go on; why not. Restarts after a replaced file."""
        while True:
            self.partial[path] = b""
            try:
                process = await conn.create_process(
                    tail_stream.command(path, self.offsets[path]),
                    encoding=None,
                    stderr=asyncssh.DEVNULL,
                )
            except asyncssh.ChannelOpenError as err:
                return f"the host refused the command: {err.reason}"
            async with process:
                try:
                    header = await asyncio.wait_for(_header(process.stdout), HEADER_TIMEOUT_S)
                except asyncio.TimeoutError:
                    return "the host did not start it"
                if not header:
                    return "no GNU tail on the host"
                now = tail_stream.inode(header)
                before = self.inodes.get(path)
                self.inodes[path] = now
                if self.offsets[path] and before and now and before != now:
                    self._restart(path, "was replaced while the connection was down")
                    continue
                kind = await self._pump(path, process.stdout)
            if kind is None:
                return "tail ended"
            if kind is Kind.ENDED:
                return "tail gave up on it"

    async def _pump(self, path: str, stdout: asyncssh.SSHReader[bytes]) -> Kind | None:
        """Deliver what arrives until the file is replaced (REPLACED), tail gives up (ENDED)
        or the stream ends (None)."""
        notices = Notices(path)
        while data := await stdout.read(READ_SIZE):
            buffer = self.partial[path] + data
            while (notice := notices.search(buffer)) is not None:
                self._deliver(path, buffer[: notice.start])
                rest = buffer[notice.end :]
                if notice.kind is Kind.TRUNCATED:
                    self._restart(path, "was truncated")  # tail goes on from its start
                    buffer = rest
                elif notice.kind is Kind.NOTED:
                    buffer = self.partial[path] + rest
                else:
                    if notice.kind is Kind.REPLACED and (self.offsets[path] or self.partial[path]):
                        self._restart(path, "was replaced")
                    return notice.kind
            self._deliver(path, buffer)
        return None

    def _restart(self, path: str, what: str) -> None:
        self.offsets[path] = 0
        self.partial[path] = b""
        self.report(f"{path} {what}; following it again from its start.")

    def _deliver(self, path: str, data: bytes) -> None:
        """Hand on the whole lines in `data` (which starts with the partial line); keep the rest."""
        end = data.rfind(b"\n") + 1
        if end:
            self.offsets[path] += end
            self.on_lines(path, data[:end].decode("utf-8", "replace").splitlines())
        self.partial[path] = data[end:]

    # -- polling -----------------------------------------------------------------------------
    async def _poll(self, sftp: asyncssh.SFTPClient, path: str) -> None:
        handle: asyncssh.SFTPClientFile | None = None
        delay, quiet = FAST_POLL_S, 0
        try:
            while True:
                if handle is None:
                    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                        handle = await sftp.open(path, "rb")
                got = 0 if handle is None else await self._read(path, handle)
                quiet = quiet + 1 if got == 0 else 0
                checking = quiet % SIZE_CHECK_POLLS == SIZE_CHECK_POLLS - 1
                if handle is not None and checking and await self._shrunk(sftp, path):
                    await handle.close()
                    handle = None
                    self._restart(path, "was truncated or replaced")
                    continue
                # Back off while the log is quiet; speed up while data flows: a busy log
                # reaches FAST_POLL_S in a few polls, a line a second never.
                delay = min(delay * 2, IDLE_POLL_S) if got == 0 else max(delay / 2, FAST_POLL_S)
                await asyncio.sleep(delay)
        finally:
            if handle is not None:
                with contextlib.suppress(OSError, asyncssh.Error):
                    await handle.close()

    async def _shrunk(self, sftp: asyncssh.SFTPClient, path: str) -> bool:
        """Whether the file under `path` now holds less than was read of it: truncated, or
        replaced by a shorter one (a longer replacement cannot be told from growth here)."""
        try:
            size = (await sftp.stat(path)).size or 0
        except asyncssh.SFTPNoSuchFile:
            return False
        return size < self.offsets[path] + len(self.partial.get(path, b""))

    async def _read(self, path: str, handle: asyncssh.SFTPClientFile) -> int:
        """Deliver every whole line past the offset; the next read is in flight meanwhile."""
        delivered = 0
        raw = self.offsets[path] + len(self.partial.setdefault(path, b""))
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
                before = self.offsets[path]
                self._deliver(path, self.partial[path] + data)
                delivered += self.offsets[path] - before
                if not more:
                    break
        finally:
            if not pending.done():
                pending.cancel()
        return delivered


async def _header(stdout: asyncssh.SSHReader[bytes]) -> bytes:
    """The stream's header line, past anything a login script printed first; b"" if none."""
    while line := await stdout.readline():
        if line.startswith(tail_stream.HEADER):
            return line
    return b""


class _Sftp:
    """One SFTP session per connection, opened the first time something needs it."""

    def __init__(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn
        self.client: asyncssh.SFTPClient | None = None
        self.lock = asyncio.Lock()

    async def get(self) -> asyncssh.SFTPClient:
        async with self.lock:
            if self.client is None:
                self.client = await self.conn.start_sftp_client()
            return self.client


@contextlib.asynccontextmanager
async def _sftp(conn: asyncssh.SSHClientConnection) -> AsyncIterator[_Sftp]:
    sftp = _Sftp(conn)
    try:
        yield sftp
    finally:
        if sftp.client is not None:
            sftp.client.exit()
