"""The one rule that orders the places a spot run could go (README: "Choosing where").

1. **Expected cost of the whole run.** Each zone's is its spot price × (the run's hours +
   expected interruptions × `instance.recovery_minutes`). The Spot Instance Advisor's bucket
   (the share of instances of that type reclaimed in the region over the trailing month) is
   read as the chance p that a run like this one is interrupted, and each replacement faces the
   same chance, so the expected number of interruptions is p / (1 − p). A bucket counts at its
   middle ("5-10%" → 7.5 %, "<5%" → 2.5 %, the open ">20%" → 25 %, as wide as the others); a
   pair the advisor does not list counts as its middle bucket, 10–15 %; without the advisor's
   data no zone pays for interruptions, and the choice says it used prices and scores only.
2. **The placement score among near-ties.** The cheapest expected cost left opens a band
   NEAR_TIE wide; of the zones in it the best score goes next (a zone missing from AWS's top 10
   has no score and goes after every scored one), then the cheaper. A score is how likely AWS
   thinks a request is to be filled there now: between costs this close, the zone with room is
   the better bet; beyond the band the money decides.

Zones without a price come last, by name: nothing can be said about their cost. The rule is a
pure function of `PlacementFacts` (kernel/placement_facts.py); `choose` asks the provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pacerid_tui.config import Config
from pacerid_tui.core.cloud.base import Placements, Provider
from pacerid_tui.core.kernel.errors import ProviderError
from pacerid_tui.core.kernel.placement_facts import PlacementFacts, ZoneFacts

NEAR_TIE = 0.10
"""Expected costs within 10 % of the cheapest left are a near-tie, ordered by score: about the
spread of one zone's spot price over a day, so a cent's difference never outweighs a score."""

UNLISTED_SHARE = 0.125
"""The interruption chance of a region and type the advisor does not list: its middle bucket."""

OPEN_BUCKET_WIDTH = 10.0
"""The top bucket (">20%") is open; it counts as wide as the others, 20–30 %, at its middle."""

DEFAULT_RUN_HOURS = 2.0
"""A run's hours when no max runtime says otherwise: the guide's 20 epochs of densenet121 on a
g4dn.xlarge take 1–1.5 h, and setup and the data come on top."""


def interruption_share(label: str) -> float | None:
    """The advisor's bucket label ("<5%", "5-10%", ">20%") as a chance at its middle; None for
    a label of another shape."""
    text = label.replace(" ", "").removesuffix("%")
    number = r"(\d+(?:\.\d+)?)"
    if found := re.fullmatch(f"<{number}", text):
        return float(found.group(1)) / 2 / 100
    if found := re.fullmatch(f"{number}-{number}", text):
        return (float(found.group(1)) + float(found.group(2))) / 2 / 100
    if found := re.fullmatch(f">{number}", text):
        return (float(found.group(1)) + OPEN_BUCKET_WIDTH / 2) / 100
    return None


def expected_interruptions(facts: ZoneFacts, advisor: bool) -> float:
    """How often a run placed here is expected to be interrupted (p / (1 − p))."""
    if not advisor:
        return 0.0
    share = interruption_share(facts.interrupted) if facts.interrupted else None
    share = UNLISTED_SHARE if share is None else min(share, 0.99)
    return share / (1 - share)


def price_text(price: float) -> str:
    return f"${price:.3f}/h" if price >= 0.1 else f"${price:.4f}/h"


@dataclass(frozen=True)
class Ranked:
    facts: ZoneFacts
    interruptions: float
    """Expected interruptions over the run (0 without the advisor's data)."""
    expected_usd: float | None
    """The run's expected cost here; None without a price."""

    @property
    def place(self) -> str:
        """Where and at what price, e.g. `us-east-2b · $0.158/h`."""
        price = self.facts.price
        return f"{self.facts.zone} · {price_text(price) if price is not None else 'no price'}"

    @property
    def risk(self) -> str:
        """The risks, e.g. `score 9 · <5 % interrupted` (no bucket without the advisor's)."""
        score = self.facts.score
        parts = [f"score {score}" if score is not None else "no score"]
        if self.facts.interrupted:
            parts.append(f"{self.facts.interrupted.replace('%', ' %')} interrupted")
        return " · ".join(parts)

    @property
    def reason(self) -> str:
        """The row's whole reason, e.g. `us-east-2b · $0.158/h · score 9 · <5 % interrupted ·
        ≈ $0.32 the run`."""
        cost = f" · ≈ ${self.expected_usd:.2f} the run" if self.expected_usd is not None else ""
        return f"{self.place} · {self.risk}{cost}"


def rank(facts: PlacementFacts, hours: float, recovery_minutes: float) -> list[Ranked]:
    """Every zone of `facts`, best first, by the rule above."""
    rows = []
    for zone in facts.zones:
        count = expected_interruptions(zone, facts.advisor)
        cost = None
        if zone.price is not None:
            cost = zone.price * (hours + count * recovery_minutes / 60)
        rows.append(Ranked(zone, count, cost))
    left = sorted(
        (row for row in rows if row.expected_usd is not None),
        key=lambda row: (row.expected_usd, row.facts.region, row.facts.zone),
    )
    ordered: list[Ranked] = []
    while left:
        cheapest = left[0].expected_usd or 0.0
        band = [row for row in left if (row.expected_usd or 0.0) <= cheapest * (1 + NEAR_TIE)]
        best = min(band, key=lambda row: -(row.facts.score or 0))  # first of the best: cheaper
        ordered.append(best)
        left.remove(best)
    unpriced = sorted((row for row in rows if row.expected_usd is None), key=lambda r: r.facts.zone)
    return ordered + unpriced


def run_hours(config: Config) -> float:
    """The hours the ranking prices a run at: its max runtime when set, else DEFAULT_RUN_HOURS."""
    minutes = config.instance.max_runtime_minutes
    return minutes / 60 if minutes else DEFAULT_RUN_HOURS


@dataclass(frozen=True)
class Choice:
    """The ranking of one config's places, with what it was based on."""

    ranked: tuple[Ranked, ...]
    hours: float
    notes: tuple[str, ...] = ()
    advisor: bool = False
    """Whether the advisor's buckets were at hand (else: prices and scores only)."""

    def regions(self) -> list[str]:
        """The regions with a priced zone, best first (by their best zone)."""
        priced = (row.facts.region for row in self.ranked if row.expected_usd is not None)
        return list(dict.fromkeys(priced))

    def zones_in(self, region: str) -> tuple[str, ...]:
        """A region's zones in ranked order: the order its launch tries them."""
        return tuple(row.facts.zone for row in self.ranked if row.facts.region == region)

    def reason_at(self, region: str, zone: str | None) -> str | None:
        """Why a place was chosen: its zone's row (the region's best when the zone is unknown)."""
        rows = [row for row in self.ranked if row.facts.region == region]
        exact = [row for row in rows if row.facts.zone == zone]
        return (exact + rows)[0].reason if rows else None

    @property
    def basis(self) -> str:
        """What the order rests on, as one sentence."""
        notes = " ".join(self.notes)
        return f"Ranked by the expected cost of a {self.hours:g} h run. {notes}".strip()

    def lines(self, limit: int) -> list[str]:
        """The first `limit` rows, numbered, for a screen."""
        return [f"{n}. {row.reason}" for n, row in enumerate(self.ranked[:limit], start=1)]


def placed(config: Config, region: str) -> Config:
    """The config as a launch (and doctor) in `region` uses it."""
    return config.model_copy(update={"instance": config.instance.in_region(region)})


def choice_of(facts: PlacementFacts, config: Config) -> Choice:
    """The ranking of these facts for this config (pure)."""
    hours = run_hours(config)
    ranked = rank(facts, hours, config.instance.recovery_minutes)
    return Choice(tuple(ranked), hours, facts.notes, facts.advisor)


def choose(provider: Provider, config: Config) -> Choice | None:
    """The ranked places of a spot config with `instance.regions`; None when there is no choice
    to make (no regions, on-demand, or a provider without places). Blocking."""
    inst = config.instance
    if inst.regions is None or inst.market != "spot" or not isinstance(provider, Placements):
        return None
    choice = choice_of(provider.placement_facts(), config)
    if not choice.regions():
        where = "every enabled region" if inst.regions == "auto" else ", ".join(inst.regions)
        raise ProviderError(
            f"No spot price for {inst.instance_type} in {where}; check that the type is offered "
            "there (`pacerid-tui doctor`), or list other instance.regions."
        )
    return choice
