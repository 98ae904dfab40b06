"""The embedded provider: each "instance" is an SSH server process on 127.0.0.1.

It exists so a newcomer without an AWS account (and the test suite) drives the very same
lifecycle as on EC2: upload, setup, training, streaming and download all go over real SSH.
An instance is a folder under the state folder:

    <home>/local/<id>/  host_key, client_key (0400), client_key.pub, launched.json, user-data,
                        server.json (pid, port), server.log, terminated.json, workspace/,
                        boot/ (the boot-time dead-man switch's state, core/boot.py)

The server runs in its own session, so it outlives the dashboard; describe reads the folder and
checks the pid, so any later process finds the instance again. Cost is $0.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pacerid_tui import paths
from pacerid_tui.core import atomic, boot
from pacerid_tui.core.cloud.base import Report, quiet
from pacerid_tui.core.cloud.local_server import processes_of
from pacerid_tui.core.errors import ProviderError
from pacerid_tui.core.lazy import asyncssh
from pacerid_tui.core.models import Instance, InstanceSpec, InstanceState, PricePoint

START_TIMEOUT_S = 15.0
"""The server starts in well under a second; this only guards against a broken interpreter."""
STOP_TIMEOUT_S = 5.0


class LocalProvider:
    name = "local"

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.local_instances_dir()

    def launch(self, spec: InstanceSpec, report: Report = quiet) -> Instance:
        instance_id = f"local-{secrets.token_hex(4)}"
        folder = self.root / instance_id
        folder.mkdir(parents=True, mode=0o700)
        report(f"Creating local instance {instance_id} (an SSH server on 127.0.0.1)…")
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        atomic.write_bytes(folder / "host_key", host_key.export_private_key(), mode=0o600)
        atomic.create_exclusive(folder / "client_key", client_key.export_private_key(), 0o400)
        atomic.write_bytes(folder / "client_key.pub", client_key.export_public_key(), mode=0o644)
        launched = {"launched_at": time.time(), "run_id": spec.run_id}
        atomic.write_text(folder / "launched.json", json.dumps(launched) + "\n")
        # What EC2 would run at first boot; local_server runs it (no max-runtime `shutdown`
        # here: that would power off this machine, and the host watchdog enforces it anyway).
        atomic.write_text(folder / "user-data", boot.user_data(spec.boot_grace_minutes))
        with open(folder / "server.log", "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "pacerid_tui.core.cloud.local_server", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PACERID_LOCAL_INSTANCE": instance_id},
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (folder / "server.json").exists():
            if time.monotonic() > deadline:
                tail = (folder / "server.log").read_text()[-300:]
                raise ProviderError(f"The local SSH server did not start: {tail.strip()}")
            time.sleep(0.05)
        instance = self._describe_one(folder)
        report(f"Local instance {instance_id} is running on 127.0.0.1:{instance.port}.")
        return instance

    def describe(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        found = {}
        for instance_id in instance_ids:
            folder = self.root / instance_id
            if (folder / "launched.json").exists():
                found[instance_id] = self._describe_one(folder)
        return found

    def terminate(self, instance_id: str, report: Report = quiet) -> Instance:
        folder = self.root / instance_id
        if not (folder / "launched.json").exists():
            raise ProviderError(f"No local instance {instance_id}; nothing to terminate.")
        if (folder / "terminated.json").exists():
            return self._describe_one(folder)
        report(f"Terminating local instance {instance_id}…")
        info = _read_json(folder / "server.json")
        socket = folder / "t" / f"tmux-{os.getuid()}" / "default"
        if shutil.which("tmux") and socket.exists():
            # The instance's own tmux server, by socket: never $TMUX, which may be the user's.
            subprocess.run(
                ["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False
            )
        for pid in processes_of(instance_id):
            _kill(pid, signal.SIGKILL)
        if info:
            _stop(int(info["pid"]))
        ended = {"ended_at": time.time(), "reason": "terminated by you"}
        atomic.write_text(folder / "terminated.json", json.dumps(ended) + "\n")
        shutil.rmtree(folder / "workspace", ignore_errors=True)
        shutil.rmtree(folder / "t", ignore_errors=True)
        report(f"Local instance {instance_id} terminated.")
        return self._describe_one(folder)

    def price_history(self, instance: Instance, start: float, end: float) -> list[PricePoint]:
        return [PricePoint(timestamp=start, price=0.0, zone="local")]

    def zone_prices(self) -> dict[str, float]:
        return {"local": 0.0}

    def find_managed(self) -> list[Instance]:
        if not self.root.exists():
            return []
        return [
            instance
            for folder in sorted(self.root.iterdir())
            if (folder / "launched.json").exists()
            and (instance := self._describe_one(folder)).state.is_alive
        ]

    def _describe_one(self, folder: Path) -> Instance:
        launched = _read_json(folder / "launched.json") or {}
        server = _read_json(folder / "server.json")
        ended = _read_json(folder / "terminated.json")
        state, reason, ended_at, code = InstanceState.PENDING, None, None, None
        if ended:
            state, reason, ended_at = InstanceState.TERMINATED, ended["reason"], ended["ended_at"]
            code = "Client.UserInitiatedShutdown"  # EC2's code for a terminate call
        elif server and _alive(int(server["pid"])):
            state = InstanceState.RUNNING
        elif server:
            state, reason = InstanceState.TERMINATED, "the server process stopped (powered off)"
            ended_at = (folder / "server.log").stat().st_mtime
            code = "Client.InstanceInitiatedShutdown"  # EC2's code for a power-off inside
        return Instance(
            instance_id=folder.name,
            provider=self.name,
            state=state,
            host="127.0.0.1",
            port=int(server["port"]) if server else 0,
            user=os.environ.get("USER") or "pacerid",
            key_path=str(folder / "client_key"),
            launched_at=launched.get("launched_at"),
            ended_at=ended_at,
            region="local",
            zone="local",
            instance_type="local-cpu",
            market="local",
            state_reason=reason,
            state_code=code,
            image_name="this machine's Python",
            run_id=launched.get("run_id"),
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _alive(pid: int) -> bool:
    """True when pid is a live (not zombie) process of ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _stop(pid: int) -> None:
    _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        _kill(pid, signal.SIGKILL)
