"""The provider protocol: everything above it (lifecycle, CLI, dashboard) is provider-neutral.

Calls are blocking (boto3 is); async callers wrap them in `asyncio.to_thread`. Progress goes to a
`Report` callback so the core never knows whether a terminal or the dashboard is listening.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from pacerid_tui.core.kernel.models import Instance, InstanceSpec, PricePoint
from pacerid_tui.core.kernel.placement_facts import PlacementFacts

Report = Callable[[str], None]
"""Receives one human sentence of progress at a time."""

MANAGED_TAG = "pacerid:managed"
RUN_ID_TAG = "pacerid:run-id"
NAME_TAG_VALUE = "pacerid-ml-training"


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

    def spot_request_state(self, request_id: str) -> tuple[str, float | None] | None:
        """(EC2's request state: open, active, disabled, cancelled, closed or failed; its
        ValidUntil as unix seconds), or None when the provider does not know the request."""
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
