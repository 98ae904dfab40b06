"""The processes of a local instance's "machine": what its power-off ends (local_server.py) and
what terminating it ends (local.py), found by the instance id in their environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def processes_of(instance_id: str) -> Iterator[int]:
    """Every process started inside this instance (they carry its id in their environment)."""
    marker = f"PACERID_LOCAL_INSTANCE={instance_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and b"local_server" not in cmdline:
            yield int(entry.name)
