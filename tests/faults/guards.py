"""What guards each billable resource of a run on the local provider, seen from outside it.

The fault matrix (tests/faults/cells.py) asks this of every instance a run created once the
bound after a fault has passed. A resource holds the money rule when it is terminated, or when
something that will end it is still there:
- running: the host watchdog's process, the boot switch's loop (this boot's), or a controller
  that is alive (the cell says whether its own is);
- stopped and waiting for capacity (its request disabled by the Spot service,
  `instance-stopped-no-capacity`): its next boot runs the switch from cloud-init's per-boot
  scripts, so it is guarded when EC2 starts it; meanwhile it bills its volume;
- stopped for good (its request disabled by a shutdown from inside, cancelled, closed or
  expired): only the controller's next reconciliation ends it (core/supervise/reconcile.py);
  the cell checks that the next controller does.

It reads the local instances' folders and processes directly: the measurement must not go
through the code it measures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.cloud.local_processes import processes_of
from pacerid_tui.core.kernel.models import InstanceState

WAITING = ("instance-stopped-no-capacity", "instance-stopped-by-price")
"""Request status codes after which EC2 starts the instance again by itself (user guide,
"State changes for a Spot request")."""


def instances_of(provider: LocalProvider, run_id: str) -> list[str]:
    """Every local instance the run created, relaunches by its request included."""
    found = []
    for launched in sorted(provider.root.glob("*/launched.json")):
        if json.loads(launched.read_text()).get("run_id") == run_id:
            found.append(launched.parent.name)
    return found


def _commands(instance_id: str) -> list[str]:
    found = []
    for pid in processes_of(instance_id):
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def guard_of(provider: LocalProvider, instance_id: str, controller_alive: bool) -> str | None:
    """What will end this instance ("terminated" when nothing needs to), or None: unguarded."""
    instance = provider.describe([instance_id])[instance_id]
    if instance.state is InstanceState.TERMINATED:
        return "terminated"
    commands = _commands(instance_id)
    if instance.state is InstanceState.RUNNING:
        if any("watchdog" in command for command in commands):
            return "watchdog"
        if any("switch.sh" in command for command in commands):
            return "boot switch"
        return "controller" if controller_alive else None
    request = _request(provider, instance_id)
    per_boot = provider.root / instance_id / "cloud" / "scripts" / "per-boot"
    if request.get("state") == "disabled" and request.get("status") in WAITING:
        return "switch at its next boot" if any(per_boot.glob("*")) else None
    return "next reconcile (volume only)"


def _request(provider: LocalProvider, instance_id: str) -> dict[str, object]:
    try:
        return dict(json.loads((provider.root / instance_id / "request.json").read_text()))
    except (OSError, ValueError):
        return {}


@dataclass
class Meter:
    """Seconds each instance of the run spent running (compute billed) and stopped (volume
    only) since the fault, sampled."""

    since: float
    running_s: dict[str, float] = field(default_factory=dict)
    stopped_s: dict[str, float] = field(default_factory=dict)
    last: float | None = None
    states: dict[str, InstanceState] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    """"<instance> <state> at +<s> s" for each change seen after the fault."""
    counting: bool = True
    """Cleared at the bound: what a returning controller's run bills after it is the run's."""

    def sample(self, provider: LocalProvider, run_id: str, now: float) -> None:
        step = 0.0 if self.last is None or not self.counting else now - self.last
        self.last = now
        for instance_id in instances_of(provider, run_id):
            state = provider.describe([instance_id])[instance_id].state
            if self.states.get(instance_id, state) is not state or instance_id not in self.states:
                if self.states:  # the first sample is the state at the fault, not a change
                    self.changes.append(f"{instance_id} {state.value} at +{now - self.since:.0f} s")
                self.states[instance_id] = state
            if state is InstanceState.RUNNING:
                self.running_s[instance_id] = self.running_s.get(instance_id, 0.0) + step
            elif state is InstanceState.STOPPED:
                self.stopped_s[instance_id] = self.stopped_s.get(instance_id, 0.0) + step

    @property
    def compute_s(self) -> float:
        return sum(self.running_s.values())

    @property
    def volume_s(self) -> float:
        return sum(self.stopped_s.values())
