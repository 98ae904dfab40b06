"""What is known about each place a spot run could go: the plain data the ranking reads.

A provider that can tell (AWS: cloud/aws_placement.py) fills these in; the ranking itself
(steps/placement_rank.py) is a pure function of them, so the rule is tested without a cloud.
Every signal may be missing, and a missing one is None, never a made-up 0: a zone AWS left out
of its top-10 placement scores has no score, and a pair the advisor does not list has no bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ZoneFacts:
    """One availability zone of one region, for the run's instance type."""

    region: str
    zone: str
    instance_type: str
    price: float | None
    """The spot price in force now, USD per hour; None when the zone has none for the type."""
    score: int | None = None
    """GetSpotPlacementScores' 1–10 for the zone; None when it was not in the answer."""
    interrupted: str | None = None
    """The Spot Instance Advisor's bucket for the region and type, e.g. "<5%"; None: unlisted."""
    zone_id: str | None = None
    """The zone's account-independent id (use2-az2), the key placement scores come by."""


@dataclass(frozen=True)
class PlacementFacts:
    zones: tuple[ZoneFacts, ...] = ()
    advisor: bool = False
    """Whether the advisor's data was at hand: without it the ranking uses prices and scores."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Sentences on where the signals came from: their age, what was cached, what is missing."""
