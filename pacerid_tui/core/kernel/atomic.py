"""Atomic file writes: a temporary file in the same folder, fsync, then os.replace.

A crash or a kill -9 leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _through_temp(path: Path, data: bytes, mode: int, put: Callable[[str, Path], None]) -> None:
    """`data` into a synced temporary file beside `path` with `mode`, then `put` in place; the
    temporary file never outlives the call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        put(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    _through_temp(path, data, mode, os.replace)


def write_text(path: Path, text: str, mode: int = 0o600) -> None:
    write_bytes(path, text.encode(), mode)


def create_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Write a new file atomically, refusing to replace one that exists (private keys): a hard
    link fails with FileExistsError instead of overwriting."""
    _through_temp(path, data, mode, os.link)
