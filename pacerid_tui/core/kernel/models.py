"""The plain data the core passes around: frozen dataclasses, no behaviour beyond derived values.

Everything here is JSON-friendly so the registry can store it and `status --json` can print it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class InstanceState(str, Enum):
    """Provider-neutral instance states (EC2's names; the local provider maps onto them)."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"
    UNKNOWN = "unknown"

    @property
    def is_alive(self) -> bool:
        """True while the instance exists and may be billing."""
        return self not in (InstanceState.TERMINATED, InstanceState.UNKNOWN)


@dataclass(frozen=True)
class InstanceSpec:
    """What to launch. Built from the config's `instance:` section."""

    run_id: str
    provider: str
    region: str = "local"
    instance_type: str = "local"
    market: str = "spot"
    max_price: float | None = None
    boot_grace_minutes: float = 30
    """The boot-time dead-man switch's grace (core/kernel/boot_switch.py)."""
    max_runtime_minutes: float | None = None
    """The boot switch's bound on running time (core/kernel/boot_switch.py); None: no bound."""
    interruption: str = "relaunch"
    """`instance.interruption`: `stop` asks for a persistent spot request that stops (spot
    only). The config's default is `stop`; a spec built by hand asks for what it names."""
    zones: tuple[str, ...] = ()
    """The zones to try first, in this order (the ranking's, README "Choosing where"); the
    others follow cheapest first. Empty: cheapest first."""


@dataclass(frozen=True)
class Instance:
    """One instance as the provider last described it."""

    instance_id: str
    provider: str
    state: InstanceState
    host: str | None = None
    port: int = 22
    user: str = "ubuntu"
    key_path: str | None = None
    launched_at: float | None = None
    ended_at: float | None = None
    region: str = "local"
    zone: str | None = None
    instance_type: str = "local"
    market: str = "spot"
    state_reason: str | None = None
    image_name: str | None = None
    run_id: str | None = None
    volume_gb: int | None = None
    """The root volume's size (AWS), for its storage cost; None where there is none."""
    spot_request_id: str | None = None
    """The spot request that launched it (AWS); a persistent one must be cancelled before the
    instance is terminated, or EC2 launches a fresh one."""
    state_code: str | None = None
    """EC2's StateReason code (the local provider maps onto it): whether an ended instance was
    interrupted (recovered) or stopped by us (not), see `recovery.ending`."""


@dataclass(frozen=True)
class PricePoint:
    """A spot price in force from `timestamp` on (unix seconds), in USD per hour."""

    timestamp: float
    price: float
    zone: str = ""


@dataclass(frozen=True)
class MetricEvent:
    """One line of the host's metrics.jsonl (see DESIGN.md, host contract)."""

    event: str
    time: float = 0.0
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    loss: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    images_per_s: float | None = None
    message: str | None = None
    lr: float | None = None
    data_wait: float | None = None
    """Step events: the share of the interval's wall time spent waiting for batches."""
    best_epoch: int | None = None
    """The done event: the epoch whose model was kept, chosen on the validation split."""
    test_acc: float | None = None
    """The done event: that model's accuracy on Test, from the run's one pass over it."""
    manufacturer_acc: float | None = None
    """The done event: the same pass's accuracy when only the maker must be right."""

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> MetricEvent:
        """Keep the fields we know; the trainer may add more without breaking the controller."""
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
        known.setdefault("event", "unknown")
        return cls(**known)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Notice:
    """A run's ending as its supervisor tells it, once per ending (`Listener.ended`): what
    ended and why, in the state it is told as and one sentence; the CLI and the dashboard only
    show it, and hand it to `notify.tell` for the once-per-machine channels."""

    state: str
    """finished, failed, interrupted, over budget or stalled."""
    text: str
    """The sentence ("training failed: CUDA out of memory", "stopped: budget reached")."""
    key: str
    """The trainer's terminal event and its time ("budget" for a budget stop): the same on
    every follow of the same end, a new one when a resumed run ends again."""
    best_val_acc: float | None = None
    """The best validation accuracy the supervisor saw streamed before the end, if any."""


@dataclass
class Run:
    """A training run the tool knows about: the registry's unit (replaces `.aws_instance`)."""

    run_id: str
    provider: str
    config_path: str
    created_at: float
    instance: Instance | None = None
    steps_done: list[str] = field(default_factory=list)
    epoch: int | None = None
    epochs: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    downloaded_at: float | None = None
    cost_usd: float = 0.0
    """What earlier instances of this run cost (after recoveries); the current one is added live."""
    training_started_at: float | None = None
    """Host clock when training was last started: older end events belong to earlier attempts."""
    interruptions: list[str] = field(default_factory=list)
    """One line per interruption survived: when, which instance, why."""
    previous_instances: list[str] = field(default_factory=list)
    earlier_parts: dict[str, float] = field(default_factory=dict)
    """`cost_usd` by part (compute, volume, ipv4), as `cost.CostParts` fields."""
    bytes_downloaded: int = 0
    """Bytes fetched from the run's hosts (data transfer out, billed by AWS)."""
    ended: str | None = None
    """How the run ended when it was not recovered, one sentence: our own stop, or an instance
    gone for no known reason that the user left ended. Kept so that no later supervisor (the
    next `all`, a restarted dashboard) asks or relaunches again; a recovery clears it."""
    region: str | None = None
    """The region the ranking placed the run in (`instance.regions`), recorded before its
    launch: every later step (terminate, status, reconcile, recovery) asks there. None: the
    config's `instance.region`."""
    placement: str | None = None
    """Why the run is where it is: the ranking's line for its zone."""
    epoch_ends: list[float] = field(default_factory=list)
    """Host time each epoch ended (index = epoch - 1), as streamed: the forecast's pace and the
    checkpoints the run could resume from (`forecast.with_epoch`)."""
    epoch_seconds: list[float] = field(default_factory=list)
    """Each epoch's wall seconds, validation and checkpoint included (0.0: not measured)."""


def current_epochs(events: list[MetricEvent]) -> list[MetricEvent]:
    """The epoch events that count, in order: a "superseded" event (a run resumed from an older
    checkpoint than its metrics) drops the epochs after its own written before it."""
    epochs: list[MetricEvent] = []
    for event in events:
        if event.event == "superseded" and event.epoch is not None:
            epochs = [e for e in epochs if (e.epoch or 0) <= event.epoch]
        elif event.event == "epoch":
            epochs.append(event)
    return epochs


@dataclass(frozen=True)
class Leftover:
    """A resource this tool tagged that still exists, as `sweep` and doctor's leftovers check
    list it: an instance in any state, a spot request, a volume, a security group, a key pair,
    the host role or its instance profile."""

    provider: str
    region: str
    """The region it lives in; "global" for IAM's role and instance profile."""
    kind: str
    """instance, spot request, volume, security group, key pair, role, instance profile."""
    resource_id: str
    state: str
    usd_per_day: float | None
    """What it costs a day as it is now; None when the price is unknown (it may bill)."""
    detail: str = ""
    """How the cost is made up, or why it matters (an open request may launch an instance)."""
    run_id: str | None = None
    """The run it was launched for, from its tag."""
    in_use_by: str | None = None
    """The run that still uses it (its instance, or what that instance needs): kept."""

    @property
    def billing(self) -> bool:
        """It costs money now, may (unknown price), or may start to (an open spot request)."""
        if self.kind == "spot request":
            return self.state == "open"
        return self.usd_per_day is None or self.usd_per_day > 0


EVERY_REGION = "every region"
"""An Unreadable's region when the regions themselves could not be listed: nothing was read."""


@dataclass(frozen=True)
class Unreadable:
    """A place the inventory could not be read: one sentence, the others are still listed."""

    provider: str
    region: str
    reason: str


@dataclass(frozen=True)
class Inventory:
    """Everything of ours a provider found, and where it could not tell."""

    found: tuple[Leftover, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()

    def __add__(self, other: Inventory) -> Inventory:
        return Inventory(self.found + other.found, self.unreadable + other.unreadable)

    @property
    def leftovers(self) -> list[Leftover]:
        """What no run uses: what `sweep --yes` removes."""
        return [item for item in self.found if item.in_use_by is None]


@dataclass(frozen=True)
class Swept:
    """What a sweep removed, and one sentence per thing it could not remove."""

    removed: tuple[Leftover, ...] = ()
    failures: tuple[str, ...] = ()

    def __add__(self, other: Swept) -> Swept:
        return Swept(self.removed + other.removed, self.failures + other.failures)
