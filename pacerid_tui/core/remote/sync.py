"""Delta sync between this machine and a host over one SSH connection (SFTP for the bytes).

Size and whole-second mtime decide what changed, as rsync's quick check does. The remote side
is listed with one `find` command rather than an SFTP walk, so a no-op sync costs one round
trip whatever the tree's depth. Several SFTP transfers run at once to hide latency.
Downloads land in a temporary name and are renamed into place, so a checkpoint on this machine
is always whole.

The quick check alone misses a file rewritten with the same size within the second it was
listed in (the trainer writes two fp16 snapshots of one model a fraction of a second apart), so
downloads follow git's racy-index rule: the host's clock is read just before each listing, and
an entry whose mtime falls in that second or later is "racily clean": it may change again
unseen. Those entries are named in a file beside the results, and on a later download (the
next one that looks at them: `wanted` may leave them out meanwhile) their content is compared
by hash rather than trusted.

Uploads follow the same rule the other way round: a local file saved twice within one second,
the upload reading it between the two saves, keeps its size and whole-second mtime. This
machine's clock is read before anything is listed or read; the entries whose mtime falls in
that second or later are named in a file on the host (beside the remote root, which then holds
exactly the files uploaded: `racy_file_of`), and the next upload compares them by hash.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.remote import ssh

IN_FLIGHT = 8
"""Concurrent SFTP transfers; past ~8 a loopback or WAN link gains nothing more."""
ARGS_PER_COMMAND = 200
"""Paths per remote mkdir/rm, well under any ARG_MAX."""
TAR_FROM_FILES = 64
"""From this many changed files on, one tar stream beats one SFTP transfer per file."""
RACY = ".racy.json"
"""In a download's local root: the entries that were racily clean when last listed; a dot
name, so it is never mistaken for a result."""
UPLOAD_RACY = ".pacerid-racy.json"
"""Beside an upload's remote root (`<root>.pacerid-racy.json`): the entries that were racily
clean when last uploaded."""

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
    files_hashed: int = 0


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


@dataclass(frozen=True)
class Listing:
    """A remote tree as `find` saw it, and the host's clock just before `find` started: taken
    before, not after, so every file `find` stats is stat'ed in that second or later."""

    files: dict[str, FileInfo]
    taken_at: int
    uploaded_racy: set[str] | None = None
    """The entries of the root's upload racy file; None when it has none."""


async def remote_tree(conn: asyncssh.SSHClientConnection, root: str) -> Listing:
    """Relative path → size and mtime of every file under the remote root (empty if missing),
    in one round trip with the clock and the upload racy file (one line: its JSON, after
    `racy:`)."""
    quoted = ssh.quote(root)
    command = (
        f"date +%s && printf 'racy:' && "
        f"{{ cat {ssh.quote(racy_file_of(root))} 2>/dev/null; echo; }} && "
        f"{{ [ -d {quoted} ] && find {quoted} -type f -printf '%P\\t%s\\t%T@\\n' || true; }}"
    )
    clock, _, rest = (await ssh.run(conn, command)).stdout.partition("\n")
    racy, _, listed = rest.partition("\n")
    tree: dict[str, FileInfo] = {}
    for line in listed.splitlines():
        rel, size, mtime = line.rsplit("\t", 2)
        tree[rel] = FileInfo(int(size), int(float(mtime)))
    return Listing(tree, int(clock), _names(racy.removeprefix("racy:")))


def racy_file_of(remote_root: str) -> str:
    """Where an upload to remote_root keeps its racy entries: beside it, not in it."""
    return remote_root.rstrip("/") + UPLOAD_RACY


def _racy(local_root: Path) -> set[str] | None:
    """The entries racily clean when last listed; None when unknown (then every one is)."""
    try:
        return _names((local_root / RACY).read_text())
    except OSError:
        return None


def _names(text: str) -> set[str] | None:
    """A racy file's JSON list of names; None when it is missing or not such a list."""
    try:
        names = json.loads(text)
    except ValueError:
        return None
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else None


async def _differing(
    conn: asyncssh.SSHClientConnection, remote_root: str, local: dict[str, Path], rels: list[str]
) -> list[str]:
    """Those of rels whose remote content differs from the local copy, by SHA-256: one remote
    command per batch, printing one digest a line in order (`-` for a file that is gone).
    Hashing on both ends moves 64 bytes a file where re-sending moves the whole file, and
    the bytes out of the host are what the run pays for."""
    remote: list[str] = []
    for start in range(0, len(rels), ARGS_PER_COMMAND):
        chunk = " ".join(
            ssh.quote(f"{remote_root}/{rel}") for rel in rels[start : start + ARGS_PER_COMMAND]
        )
        command = f'for f in {chunk}; do sha256sum < "$f" 2>/dev/null || echo -; done'
        result = await ssh.run(conn, command)
        remote += [line.split(" ", 1)[0] for line in result.stdout.splitlines()]
    if len(remote) != len(rels):
        return rels
    differ = []
    for rel, digest in zip(rels, remote, strict=True):
        with open(local[rel], "rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() != digest:
                differ.append(rel)
    return differ


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
    """Make remote_root hold exactly `files` (relative path → local file); send only changes.
    An entry that passes the quick check but was racily clean when last uploaded is compared
    by hash (module docstring); files_hashed in the result counts those."""
    taken_at = int(time.time())  # before any local file is read
    listing = await remote_tree(conn, remote_root)
    remote, before = listing.files, listing.uploaded_racy
    same = {rel for rel, path in files.items() if remote.get(rel) == info_of(path)}
    changed = [rel for rel in files if rel not in same]
    racy = [rel for rel in files if rel in same and (before is None or rel in before)]
    if racy:
        changed += await _differing(conn, remote_root, files, racy)
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
    still = {rel for rel, path in files.items() if info_of(path).mtime >= taken_at}
    if files and still != before:
        target = racy_file_of(remote_root)
        part, names = ssh.quote(target + ".part"), ssh.quote(json.dumps(sorted(still)))
        await ssh.run(
            conn,
            f"mkdir -p {ssh.quote(remote_root)} && printf %s {names} > {part} && "
            f"mv -f {part} {ssh.quote(target)}",
        )
    meter.report()
    return SyncStats(len(files), len(changed), total, len(stale), len(racy))


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
    """Fetch new or changed files of remote_root into local_root; never deletes locally.
    A copy that passes the quick check but was racily clean when last listed is compared by
    hash (module docstring); files_hashed in the result counts those."""
    listing = await remote_tree(conn, remote_root)
    remote = {
        rel: info
        for rel, info in listing.files.items()
        if wanted(rel) and not PurePosixPath(rel).name.startswith(".")
    }
    same = {
        rel
        for rel, info in remote.items()
        if (local_root / rel).exists() and info_of(local_root / rel) == info
    }
    changed = [rel for rel in remote if rel not in same]
    before = _racy(local_root)
    racy = [rel for rel in remote if rel in same and (before is None or rel in before)]
    if racy:
        local = {rel: local_root / rel for rel in racy}
        changed += await _differing(conn, remote_root, local, racy)
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
    if remote or before:
        # racy now, or racy before and not looked at this time (left out by `wanted`)
        still = {rel for rel, info in remote.items() if info.mtime >= listing.taken_at}
        still |= {rel for rel in before or () if rel not in remote and (local_root / rel).exists()}
        atomic.write_text(local_root / RACY, json.dumps(sorted(still)))
    meter.report()
    return SyncStats(len(remote), len(changed), total, 0, len(racy))
