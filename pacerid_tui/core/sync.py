"""Delta sync between this machine and a host over one SSH connection (SFTP for the bytes).

Size and whole-second mtime decide what changed, as rsync's quick check does. The remote side
is listed with one `find` command rather than an SFTP walk, so a no-op sync costs one round
trip whatever the tree's depth. Several SFTP transfers run at once to hide latency.
Downloads land in a temporary name and are renamed into place, so a checkpoint on this machine
is always whole.
"""

from __future__ import annotations

import asyncio
import fnmatch
import io
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pacerid_tui.core import ssh
from pacerid_tui.core.errors import HostError
from pacerid_tui.core.lazy import asyncssh

IN_FLIGHT = 8
"""Concurrent SFTP transfers; past ~8 a loopback or WAN link gains nothing more."""
ARGS_PER_COMMAND = 200
"""Paths per remote mkdir/rm, well under any ARG_MAX."""
TAR_FROM_FILES = 64
"""From this many changed files on, one tar stream beats one SFTP transfer per file."""

DEFAULT_EXCLUDES = (
    ".git/",
    "__pycache__/",
    "*.pyc",
    ".venv/",
    "venv/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "*.egg-info/",
    ".DS_Store",
    "data/",
    "datasets/",
    "output/",
    "outputs/",
    "checkpoints/",
    "*.pt",
    "*.mlpackage/",
)


class Excludes:
    """gitignore-style patterns: `name`, `*.ext`, `dir/` (directories only), `a/b` (anchored)."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_EXCLUDES) -> None:
        self.patterns = [p.strip() for p in patterns if p.strip() and not p.startswith("#")]

    def excluded(self, rel: str, is_dir: bool) -> bool:
        name = PurePosixPath(rel).name
        for pattern in self.patterns:
            dir_only = pattern.endswith("/")
            body = pattern.rstrip("/").lstrip("/")
            if dir_only and not is_dir:
                continue
            target = rel if "/" in body or pattern.startswith("/") else name
            if fnmatch.fnmatchcase(target, body):
                return True
        return False


@dataclass(frozen=True)
class FileInfo:
    size: int
    mtime: int


@dataclass(frozen=True)
class Progress:
    """Where a transfer stands; handed to the progress callback many times a second at most."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


@dataclass(frozen=True)
class SyncStats:
    files_listed: int
    files_sent: int
    bytes_sent: int
    files_deleted: int


OnProgress = Callable[[Progress], None]


def _ignore(_progress: Progress) -> None:
    pass


def local_tree(root: Path, excludes: Excludes) -> dict[str, Path]:
    """Relative posix path → file, for every file under root that is not excluded."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_base = base.relative_to(root).as_posix()
        prefix = "" if rel_base == "." else rel_base + "/"
        dirnames[:] = sorted(d for d in dirnames if not excludes.excluded(prefix + d, True))
        for name in sorted(filenames):
            if not excludes.excluded(prefix + name, False):
                found[prefix + name] = base / name
    return found


def info_of(path: Path) -> FileInfo:
    stat = path.stat()
    return FileInfo(stat.st_size, int(stat.st_mtime))


async def remote_tree(conn: asyncssh.SSHClientConnection, root: str) -> dict[str, FileInfo]:
    """Relative path → size and mtime of every file under the remote root (empty if missing)."""
    command = (
        f"[ -d {ssh.quote(root)} ] && find {ssh.quote(root)} -type f "
        "-printf '%P\\t%s\\t%T@\\n' || true"
    )
    result = await ssh.run(conn, command)
    tree: dict[str, FileInfo] = {}
    for line in result.stdout.splitlines():
        rel, size, mtime = line.rsplit("\t", 2)
        tree[rel] = FileInfo(int(size), int(float(mtime)))
    return tree


async def _batched(conn: asyncssh.SSHClientConnection, verb: str, paths: list[str]) -> None:
    for start in range(0, len(paths), ARGS_PER_COMMAND):
        chunk = " ".join(ssh.quote(p) for p in paths[start : start + ARGS_PER_COMMAND])
        await ssh.run(conn, f"{verb} {chunk}")


class _Meter:
    """Sums per-file SFTP progress into one Progress stream."""

    def __init__(self, files_total: int, bytes_total: int, on_progress: OnProgress) -> None:
        self.files_total, self.bytes_total = files_total, bytes_total
        self.files_done, self.bytes_done = 0, 0
        self.on_progress = on_progress
        self.partial: dict[bytes, int] = {}

    def handler(self, src: bytes, _dst: bytes, copied: int, _total: int) -> None:
        self.bytes_done += copied - self.partial.get(src, 0)
        self.partial[src] = copied
        self.report()

    def file_done(self) -> None:
        self.files_done += 1
        self.report()

    def report(self) -> None:
        self.on_progress(
            Progress(self.files_done, self.files_total, self.bytes_done, self.bytes_total)
        )


async def upload(
    conn: asyncssh.SSHClientConnection,
    files: dict[str, Path],
    remote_root: str,
    *,
    delete: bool = True,
    on_progress: OnProgress = _ignore,
) -> SyncStats:
    """Make remote_root hold exactly `files` (relative path → local file); send only changes."""
    remote = await remote_tree(conn, remote_root)
    changed = [rel for rel, path in files.items() if remote.get(rel) != info_of(path)]
    stale = sorted(set(remote) - set(files)) if delete else []
    total = sum(files[rel].stat().st_size for rel in changed)
    meter = _Meter(len(changed), total, on_progress)
    if len(changed) >= TAR_FROM_FILES:
        await _send_tar(conn, files, changed, remote_root, meter)
    elif changed:
        present = {str(PurePosixPath(remote_root, rel).parent) for rel in remote}
        dirs = sorted({str(PurePosixPath(remote_root, rel).parent) for rel in changed} - present)
        if dirs:
            await _batched(conn, "mkdir -p", dirs)
        async with conn.start_sftp_client() as sftp:
            limit = asyncio.Semaphore(IN_FLIGHT)

            async def send(rel: str) -> None:
                async with limit:
                    await sftp.put(
                        str(files[rel]),
                        f"{remote_root}/{rel}",
                        preserve=True,
                        progress_handler=meter.handler,
                    )
                    meter.file_done()

            await asyncio.gather(*(send(rel) for rel in changed))
    if stale:
        await _batched(conn, "rm -f", [f"{remote_root}/{rel}" for rel in stale])
    meter.report()
    return SyncStats(len(files), len(changed), total, len(stale))


class _TarStream(io.RawIOBase):
    """A write-only file that hands each tar block to the SSH channel (bounded by drain)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)


async def _send_tar(
    conn: asyncssh.SSHClientConnection,
    files: dict[str, Path],
    changed: list[str],
    remote_root: str,
    meter: _Meter,
) -> None:
    """Many files at once: one tar stream into `tar -x` (per-file SFTP round trips dominate)."""
    root = ssh.quote(remote_root)
    # PAX keeps sub-second mtimes, so the next quick check sees these files as unchanged.
    command = f"mkdir -p {root} && tar -x --no-same-owner -C {root} -f -"
    async with conn.create_process(command, encoding=None) as process:
        stream = _TarStream()
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for rel in changed:
                path = files[rel]
                info = archive.gettarinfo(str(path), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
                for chunk in stream.chunks:
                    process.stdin.write(chunk)
                    meter.bytes_done += len(chunk)
                stream.chunks.clear()
                await process.stdin.drain()
                meter.file_done()
        for chunk in stream.chunks:
            process.stdin.write(chunk)
        process.stdin.write_eof()
        await process.wait()
    if process.exit_status != 0:
        raise HostError(f"Unpacking the upload on the host failed (exit {process.exit_status}).")


async def download(
    conn: asyncssh.SSHClientConnection,
    remote_root: str,
    local_root: Path,
    *,
    wanted: Callable[[str], bool] = lambda _rel: True,
    on_progress: OnProgress = _ignore,
) -> SyncStats:
    """Fetch new or changed files of remote_root into local_root; never deletes locally."""
    remote = {
        rel: info
        for rel, info in (await remote_tree(conn, remote_root)).items()
        if wanted(rel) and not PurePosixPath(rel).name.startswith(".")
    }
    changed = [
        rel
        for rel, info in remote.items()
        if not (local_root / rel).exists() or info_of(local_root / rel) != info
    ]
    total = sum(remote[rel].size for rel in changed)
    meter = _Meter(len(changed), total, on_progress)
    if changed:
        async with conn.start_sftp_client() as sftp:
            limit = asyncio.Semaphore(IN_FLIGHT)

            async def fetch(rel: str) -> None:
                target = local_root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.part")
                async with limit:
                    await sftp.get(
                        f"{remote_root}/{rel}",
                        str(partial),
                        preserve=True,
                        progress_handler=meter.handler,
                    )
                os.replace(partial, target)
                meter.file_done()

            await asyncio.gather(*(fetch(rel) for rel in changed))
    meter.report()
    return SyncStats(len(remote), len(changed), total, 0)
