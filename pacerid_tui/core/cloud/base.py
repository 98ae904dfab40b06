"""The provider protocol: everything above it (lifecycle, CLI, dashboard) is provider-neutral.

Calls are blocking (boto3 is); async callers wrap them in `asyncio.to_thread`. Progress goes to a
`Report` callback so the core never knows whether a terminal or the dashboard is listening.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from pacerid_tui.core.kernel.models import (
    Instance,
    InstanceSpec,
    Inventory,
    Leftover,
    PricePoint,
    Swept,
)
from pacerid_tui.core.kernel.placement_facts import PlacementFacts

Report = Callable[[str], None]
"""Receives one human sentence of progress at a time."""

MANAGED_TAG = "pacerid:managed"
RUN_ID_TAG = "pacerid:run-id"
NAME_TAG_VALUE = "pacerid-ml-training"


STOPPED_ALLOWANCE_S = 7 * 24 * 3600.0
"""Wall-clock room a stop-mode spot request leaves for stretches spent stopped, on top of the
run's max runtime: EC2's own default validity, 7 days (API reference, SpotMarketOptions).
ValidUntil is wall-clock while max runtime counts running time (trainer/watchdog.py), so a
request that expired at max runtime after launch would expire early after any stop; then an
interrupted run never resumes, and a stopped instance of a closed request may be terminated with
its volume, checkpoints not yet downloaded included. While stopped only the volume bills; the
boot switch (every boot), the watchdog and the controller bound the instance, not ValidUntil,
which only ends a request whose run nobody came back to."""


def request_valid_until(now: float, max_runtime_minutes: float | None) -> float:
    """When a stop-mode request launched `now` expires: max runtime plus the allowance."""
    return now + (max_runtime_minutes or 0) * 60 + STOPPED_ALLOWANCE_S


def quiet(_message: str) -> None:
    """A Report that drops everything."""


class Provider(Protocol):
    name: str

    def launch(self, spec: InstanceSpec, report: Report = quiet) -> Instance:
        """Start an instance for this run, tagged so it can always be found again."""
        ...

    def describe(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        """The current state of these instances, in one batched call; unknown ids are absent."""
        ...

    def terminate(self, instance_id: str, report: Report = quiet) -> Instance:
        """Stop billing: end the instance. Idempotent."""
        ...

    def price_history(self, instance: Instance, start: float, end: float) -> list[PricePoint]:
        """Price steps in force over [start, end] (first one at or before start)."""
        ...

    def find_managed(self) -> list[Instance]:
        """Every live instance this tool created, whether the registry knows it or not."""
        ...


@runtime_checkable
class HostKeyFingerprints(Protocol):
    """An optional provider capability: its hosts print their SSH host key fingerprints
    somewhere the provider can read (EC2: cloud-init's block on the boot console).

    One read, no waiting: the caller retries with backoff (core/remote/host_keys.py), because the
    fingerprints appear minutes after the instance is running. A provider without it (local:
    the server's key is made on this machine) is simply not an instance of this protocol.
    """

    def host_key_fingerprints(self, instance_id: str) -> list[str]:
        """The SHA256 fingerprints the host printed so far; empty until it has printed them."""
        ...


@runtime_checkable
class SpotRequests(Protocol):
    """An optional provider capability: the state of the spot request behind a stop-mode
    instance (`instance.interruption: stop`), which decides whether a stopped instance waits
    for capacity or is left over (core/supervise/reconcile.py). AWS and the local provider have
    it."""

    def spot_request_state(self, request_id: str) -> tuple[str, float | None, str] | None:
        """(EC2's request state: open, active, disabled, cancelled, closed or failed; its
        ValidUntil as unix seconds; its status code, which tells a stop by the Spot service,
        `instance-stopped-no-capacity`, from one from inside, `instance-stopped-by-user`: both
        are `disabled`), or None when the provider does not know the request."""
        ...


@runtime_checkable
class ZonePrices(Protocol):
    """An optional provider capability: the price in force now in each zone it would launch in,
    for the launch form and the market panel (core/zones.py). AWS and the local provider."""

    def zone_prices(self) -> dict[str, float]:
        """USD per hour now, by zone; blocking (one API call on AWS)."""
        ...


@runtime_checkable
class Placements(Protocol):
    """An optional provider capability: what is known about every zone of `instance.regions`
    (spot price, placement score, interruption bucket) for the ranking in
    core/steps/placement_rank.py. AWS only: the local provider has one place."""

    def placement_facts(self) -> PlacementFacts:
        """Each candidate zone's facts, and notes on their sources; blocking (a few API calls
        per region, the scores and the advisor's data cached under the state folder)."""
        ...


@runtime_checkable
class SshExposure(Protocol):
    """An optional provider capability: a warning to keep on screen while its SSH rule is open
    wider than this machine (AWS, `ssh_cidr: 0.0.0.0/0`); the local host listens on loopback."""

    def ssh_warning(self) -> str | None:
        """One sentence, or None when SSH is open to no more than it needs."""
        ...


@runtime_checkable
class CallerAccess(Protocol):
    """An optional provider capability: before every SSH (re)connect, let this machine's current
    address in (AWS: the security group follows a laptop that changed networks); blocking."""

    def let_caller_in(self, report: Report = quiet) -> None:
        """Open SSH to this machine's address now, revoking the range opened before."""
        ...


@runtime_checkable
class Sweepable(Protocol):
    """An optional provider capability: everything of ours that is still there, found by our
    tag (`MANAGED_TAG`) wherever the provider can look (AWS: every region the account has
    enabled), and removing what no run uses (`pacerid-tui sweep`, core/leftovers.py).
    Nothing without our tag is ever listed or touched. AWS and the local provider."""

    def leftovers(self, kept: Mapping[str, str]) -> Inventory:
        """Every resource of ours with its cost a day; `kept` maps the instance ids the runs
        know to their run, which keeps them and what they use. Blocking; one sentence per
        place that could not be read, the others still listed."""
        ...

    def sweep(self, found: Sequence[Leftover], report: Report = quiet) -> Swept:
        """Remove these (what `leftovers` found no run uses) in the safe order: spot requests
        cancelled first, instances terminated and waited for, then volumes, security groups,
        key pairs, the role and its profile. Blocking; a failure costs its resource only."""
        ...
