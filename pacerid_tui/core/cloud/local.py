"""The embedded provider: each "instance" is an SSH server process on 127.0.0.1.

It exists so a newcomer without an AWS account (and the test suite) drives the very same
lifecycle as on EC2: upload, setup, training, streaming and download all go over real SSH.
An instance is a folder under the state folder:

    <home>/local/<id>/  host_key, client_key (0400), client_key.pub, launched.json, user-data,
                        server.json (pid, port, endpoints), server.log, terminated.json,
                        workspace/, cloud/ (cloud-init's: per-boot scripts, its semaphore),
                        boot/ (the boot-time dead-man switch's state, core/kernel/boot_switch.py),
                        request.json, role.json, stopped.json, systemd/ (stop mode, below)

The server runs in its own session, so it outlives the dashboard; describe reads the folder and
checks the pid, so any later process finds the instance again. Cost is $0 unless a
simulated spot price was set (`set_price`, for trying the money rules).

`interruption: stop` is simulated with EC2's rules, each named with its page of the EC2 User
Guide (UG) or API reference (API) where its method does it. The instance comes from a
persistent "spot request" (request.json: `state` and status code `status`) and its shutdown
behaviour is `stop`:
- launch: the request is `active`, `fulfilled`; its ValidUntil leaves room for stopped time
  (base.request_valid_until; API, SpotMarketOptions) — `launch`;
- `interrupt` (AWS takes the capacity back): every process dies, the disk stays, the instance
  is stopped (`Server.SpotInstanceShutdown`) and its request `disabled`,
  `instance-stopped-no-capacity` (UG, "State changes for a Spot request"; "Interruption
  behaviors": only the Spot service starts it again); `capacity_returns` boots it again, and
  that boot runs the enabled boot units and cloud-init's per-boot scripts, never the user data
  again (UG, "Work with instance user data"; local_server.py);
- a shutdown from inside (behaviour `stop`): stopped, request `disabled`,
  `instance-stopped-by-user`; the Spot service never starts it — `spot_request_state`;
- terminating the instance of an uncancelled (open, active or disabled) persistent request:
  the request returns to pending evaluation and launches a fresh instance (UG, "State changes
  for a Spot request", persistent requests) — `terminate_instance`; `terminate` cancels first;
- cancelling: the request is `cancelled`, its instance, running or stopped, is not terminated
  (UG, "Cancel a Spot Instance request") — `cancel_request`;
- ValidUntil reached: the request ends (`closed`), its instance keeps its state (API,
  SpotMarketOptions: the request stays active until then) — `spot_request_state`;
- RebootInstances: a new boot on the same disk, the request unchanged — `reboot`.
What each state bills (a running instance its compute, volume and public IPv4, a stopped one
its volume) is core/kernel/cost.py's. Such an instance has an instance role (role.json), and
the host makes its two calls as on EC2: boto3, credentials from its instance metadata, EC2's
Query API (local_imds.py and local_ec2.py, served by the instance's server).
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pacerid_tui import paths
from pacerid_tui.core.cloud.base import Report, quiet, request_valid_until
from pacerid_tui.core.cloud.local_imds import HOST_ROLE, ROLE_FILE
from pacerid_tui.core.cloud.local_processes import processes_of
from pacerid_tui.core.kernel import atomic, boot_switch
from pacerid_tui.core.kernel.errors import PaceridError, ProviderError
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import (
    Instance,
    InstanceSpec,
    InstanceState,
    Inventory,
    Leftover,
    PricePoint,
    Swept,
)

PRICES_FILE = "prices.json"
"""The simulated spot price's steps (`set_price`); none: $0, always."""
START_TIMEOUT_S = 15.0
"""The server starts in well under a second; this only guards against a broken interpreter."""
STOP_TIMEOUT_S = 5.0
INSIDE_STOP = "shut down from inside the instance"


class LocalProvider:
    name = "local"

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.local_instances_dir()

    def launch(self, spec: InstanceSpec, report: Report = quiet) -> Instance:
        request = None
        if spec.interruption == "stop" and spec.market == "spot":  # on-demand: no request
            request = {
                "request_id": f"sir-local{secrets.token_hex(4)}",
                "state": "active",
                "status": "fulfilled",
                "valid_until": request_valid_until(time.time(), None),  # as on EC2
            }
        return self._launch(spec, request, report)

    def _launch(
        self, spec: InstanceSpec, request: dict[str, Any] | None, report: Report
    ) -> Instance:
        instance_id = f"local-{secrets.token_hex(4)}"
        folder = self.root / instance_id
        folder.mkdir(parents=True, mode=0o700)
        report(f"Creating local instance {instance_id} (an SSH server on 127.0.0.1)…")
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        atomic.write_bytes(folder / "host_key", host_key.export_private_key(), mode=0o600)
        atomic.create_exclusive(folder / "client_key", client_key.export_private_key(), 0o400)
        atomic.write_bytes(folder / "client_key.pub", client_key.export_public_key(), mode=0o644)
        launched = {
            "launched_at": time.time(),
            "run_id": spec.run_id,
            "boot_grace_minutes": spec.boot_grace_minutes,
            "max_runtime_minutes": spec.max_runtime_minutes,
            "shutdown": "stop" if request else "terminate",
        }
        atomic.write_text(folder / "launched.json", json.dumps(launched) + "\n")
        if request:
            atomic.write_text(folder / "request.json", json.dumps(request) + "\n")
            atomic.write_text(folder / ROLE_FILE, json.dumps(HOST_ROLE) + "\n")
        # What EC2 would run at first boot; local_server runs it.
        script = boot_switch.user_data(spec.boot_grace_minutes, spec.max_runtime_minutes)
        atomic.write_text(folder / "user-data", script)
        self._boot(folder)
        instance = self._describe_one(folder)
        report(f"Local instance {instance_id} is running on 127.0.0.1:{instance.port}.")
        return instance

    def _boot(self, folder: Path) -> None:
        """Start the instance's server (its "machine"); it runs the first-boot and boot units."""
        (folder / "server.json").unlink(missing_ok=True)
        instance_id = folder.name
        with open(folder / "server.log", "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "pacerid_tui.core.cloud.local_server", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=folder,
                env={**os.environ, "PACERID_LOCAL_INSTANCE": instance_id},
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (folder / "server.json").exists():
            if time.monotonic() > deadline:
                tail = (folder / "server.log").read_text()[-300:]
                raise ProviderError(f"The local SSH server did not start: {tail.strip()}")
            time.sleep(0.05)

    def describe(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        found = {}
        for instance_id in instance_ids:
            folder = self.root / instance_id
            if (folder / "launched.json").exists():
                found[instance_id] = self._describe_one(folder)
        return found

    def terminate(self, instance_id: str, report: Report = quiet) -> Instance:
        """Cancel its spot request (stop mode) first, then terminate: nothing comes back."""
        folder = self._folder(instance_id)
        request = _read_json(folder / "request.json")
        if request and request["state"] != "cancelled":
            self.cancel_request(request["request_id"])
            report(f"Spot request {request['request_id']} cancelled.")
        return self.terminate_instance(instance_id, report)

    def terminate_instance(self, instance_id: str, report: Report = quiet) -> Instance:
        """EC2's TerminateInstances: the instance of an uncancelled persistent request is
        replaced by a fresh one (a new folder, an empty workspace) for the same request."""
        folder = self._folder(instance_id)
        if (folder / "terminated.json").exists():
            return self._describe_one(folder)
        report(f"Terminating local instance {instance_id}…")
        self._power_down(folder)
        ended = {"ended_at": time.time(), "reason": "terminated by you"}
        atomic.write_text(folder / "terminated.json", json.dumps(ended) + "\n")
        shutil.rmtree(folder / "workspace", ignore_errors=True)
        shutil.rmtree(folder / "t", ignore_errors=True)
        report(f"Local instance {instance_id} terminated.")
        request = _read_json(folder / "request.json")
        if request and request["state"] in ("open", "active", "disabled"):
            launched = _read_json(folder / "launched.json") or {}
            spec = InstanceSpec(
                run_id=str(launched.get("run_id")),
                provider=self.name,
                boot_grace_minutes=float(launched.get("boot_grace_minutes") or 30),
                max_runtime_minutes=launched.get("max_runtime_minutes"),
            )
            (folder / "request.json").unlink()
            request = {**request, "state": "active", "status": "fulfilled"}
            fresh = self._launch(spec, request, report)
            report(
                f"Spot request {request['request_id']} was open: it launched {fresh.instance_id}."
            )
        return self._describe_one(folder)

    def cancel_request(self, request_id: str) -> bool:
        """EC2's CancelSpotInstanceRequests: the instance keeps running, or stays stopped (UG,
        "Cancel a Spot Instance request": cancelling does not terminate it); False when
        unknown."""
        for path in self.root.glob("*/request.json"):
            request = _read_json(path)
            if request and request["request_id"] == request_id:
                cancelled = {
                    **request,
                    "state": "cancelled",
                    "status": "request-canceled-and-instance-running",
                }
                atomic.write_text(path, json.dumps(cancelled) + "\n")
                return True
        return False

    def interrupt(self, instance_id: str) -> Instance:
        """AWS takes the capacity back (stop mode): every process dies, the disk stays."""
        folder = self._folder(instance_id)
        if not (folder / "request.json").exists():
            raise ProviderError(f"{instance_id} is not from a persistent request; it cannot stop.")
        stopped = {"stopped_at": time.time(), "reason": "interrupted by AWS (stopped)"}
        atomic.write_text(folder / "stopped.json", json.dumps(stopped) + "\n")
        self._power_down(folder)
        self._set_request(folder, "disabled", "instance-stopped-no-capacity")
        return self._describe_one(folder)

    def capacity_returns(self, instance_id: str) -> Instance:
        """The Spot service starts the instance it stopped again: a new boot (UG, "Interruption
        behaviors"); never one whose request was cancelled or expired meanwhile."""
        folder = self._folder(instance_id)
        request = _read_json(folder / "request.json")
        waiting = request and (request["state"], request.get("status")) == (
            "disabled",
            "instance-stopped-no-capacity",
        )
        if not (folder / "stopped.json").exists() or not waiting or _expired(request):
            raise ProviderError(f"{instance_id} is not waiting for capacity.")
        (folder / "stopped.json").unlink()
        self._set_request(folder, "active", "fulfilled")
        self._boot(folder)
        return self._describe_one(folder)

    def reboot(self, instance_id: str) -> Instance:
        """EC2's RebootInstances (user guide, "Reboot your instance": like an operating system
        reboot, the instance keeps its host and disk, its request stays active): every process
        dies, then a new boot runs the boot units and per-boot scripts, not the user data."""
        folder = self._folder(instance_id)
        if self._describe_one(folder).state is not InstanceState.RUNNING:
            raise ProviderError(f"{instance_id} is not running; only a running one reboots.")
        self._power_down(folder)
        self._boot(folder)
        return self._describe_one(folder)

    def spot_request_state(self, request_id: str) -> tuple[str, float | None, str] | None:
        """The SpotRequests capability (base.py): (state, ValidUntil, status code). A request
        whose instance powered itself off is `disabled`, `instance-stopped-by-user` (UG, "State
        changes for a Spot request"); one past its ValidUntil is `closed` (the guide names no
        status code for an expiry after fulfilment; the last one is kept)."""
        for path in self.root.glob("*/request.json"):
            request = _read_json(path)
            if request and request["request_id"] == request_id:
                state, status = str(request["state"]), str(request.get("status", ""))
                until = float(request.get("valid_until") or 0) or None
                inside = self._describe_one(path.parent).state_reason == INSIDE_STOP
                if inside and state == "active":
                    state, status = "disabled", "instance-stopped-by-user"
                if _expired(request) and state not in ("cancelled", "closed"):
                    state = "closed"
                return state, until, status
        return None

    def _set_request(self, folder: Path, state: str, status: str) -> None:
        request = _read_json(folder / "request.json")
        if request:
            changed = {**request, "state": state, "status": status}
            atomic.write_text(folder / "request.json", json.dumps(changed) + "\n")

    def _folder(self, instance_id: str) -> Path:
        folder = self.root / instance_id
        if not (folder / "launched.json").exists():
            raise ProviderError(f"No local instance {instance_id}; nothing to do.")
        return folder

    def _power_down(self, folder: Path) -> None:
        """Every process of the instance ends, its server last (as a machine losing power)."""
        info = _read_json(folder / "server.json")
        socket = folder / "t" / f"tmux-{os.getuid()}" / "default"
        if shutil.which("tmux") and socket.exists():
            # The instance's own tmux server, by socket: never $TMUX, which may be the user's.
            subprocess.run(
                ["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False
            )
        for pid in processes_of(folder.name):
            _kill(pid, signal.SIGKILL)
        if info:
            _stop(int(info["pid"]))

    def set_price(self, usd_per_hour: float, at: float | None = None) -> None:
        """A simulated spot price from `at` (default now) on, for every local instance: the
        money rules (budget, forecast) can be tried, and tested, without AWS. The steps are
        kept in `prices.json` beside the instances, as the zone's price history."""
        steps = [*self._price_steps(), (time.time() if at is None else at, usd_per_hour)]
        self.root.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.root / PRICES_FILE, json.dumps(sorted(steps)))

    def _price_steps(self) -> list[tuple[float, float]]:
        try:
            raw = json.loads((self.root / PRICES_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return []
        return [(float(t), float(p)) for t, p in raw]

    def price_history(self, instance: Instance, start: float, end: float) -> list[PricePoint]:
        """As AWS answers: the step in force at `start` first, then each change until `end`."""
        steps = self._price_steps()
        in_force = [p for t, p in steps if t <= start][-1:] or [0.0]
        later = [PricePoint(t, p, "local") for t, p in steps if start < t <= end]
        return [PricePoint(timestamp=start, price=in_force[0], zone="local"), *later]

    def zone_prices(self) -> dict[str, float]:
        steps = self._price_steps()
        return {"local": steps[-1][1] if steps else 0.0}

    def find_managed(self) -> list[Instance]:
        if not self.root.exists():
            return []
        return [
            instance
            for folder in sorted(self.root.iterdir())
            if (folder / "launched.json").exists()
            and (instance := self._describe_one(folder)).state.is_alive
        ]

    def leftovers(self, kept: Mapping[str, str]) -> Inventory:
        """The Sweepable capability (base.py): every live local instance, at no cost; those no
        run knows are what `sweep` ends (their spot request, simulated, cancelled first)."""
        return Inventory(
            tuple(
                Leftover(
                    self.name,
                    "local",
                    "instance",
                    instance.instance_id,
                    instance.state.value,
                    0.0,
                    f"an SSH server on 127.0.0.1:{instance.port}, this machine's CPU",
                    run_id=instance.run_id,
                    in_use_by=kept.get(instance.instance_id),
                )
                for instance in self.find_managed()
            )
        )

    def sweep(self, found: Sequence[Leftover], report: Report = quiet) -> Swept:
        swept = Swept()
        for item in found:
            try:
                self.terminate(item.resource_id, report)
            except (PaceridError, OSError) as err:
                swept += Swept(failures=(f"Cannot end {item.resource_id}: {err}",))
            else:
                swept += Swept(removed=(item,))
        return swept

    def _describe_one(self, folder: Path) -> Instance:
        launched = _read_json(folder / "launched.json") or {}
        server = _read_json(folder / "server.json")
        ended = _read_json(folder / "terminated.json")
        stopped = _read_json(folder / "stopped.json")
        request = _read_json(folder / "request.json")
        state, reason, ended_at, code = InstanceState.PENDING, None, None, None
        if ended:
            state, reason, ended_at = InstanceState.TERMINATED, ended["reason"], ended["ended_at"]
            code = "Client.UserInitiatedShutdown"  # EC2's code for a terminate call
        elif stopped:
            state, reason = InstanceState.STOPPED, stopped["reason"]
            code = "Server.SpotInstanceShutdown"  # EC2's code for a spot stop (stop mode)
        elif server and _alive(int(server["pid"])):
            state = InstanceState.RUNNING
        elif server and launched.get("shutdown") == "stop":
            state, reason = InstanceState.STOPPED, INSIDE_STOP
            code = "Client.InstanceInitiatedShutdown"
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
            spot_request_id=request["request_id"] if request else None,
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _expired(request: dict[str, Any] | None) -> bool:
    until = float((request or {}).get("valid_until") or 0)
    return bool(until) and until <= time.time()


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
