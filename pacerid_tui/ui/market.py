"""The selected run's market: price per zone now (with `instance.regions`: the ranked places),
the last 24 hours in its zone, SSH exposure.

Fetched in a worker at most once a minute per run (`MARKET_TTL_S`): the AWS calls are slow
and spot prices change a few times a day. The run's own price history comes from the
lifecycle's `PriceCache`, the same one the table's cost uses, so the projection costs no
extra API call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from pacerid_tui.core.kernel import cost
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import PricePoint, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.placement_rank import Ranked, choose
from pacerid_tui.core.steps.zone_market import ssh_warning, zone_prices

MARKET_TTL_S = 60.0
"""How often the zone prices and the 24 h history are asked for again."""
DAY_S = 24 * 3600.0
SPARK_SAMPLES = 48
"""Half-hour buckets over the day: enough for a sparkline, cheap to compute."""


@dataclass(frozen=True)
class Market:
    fetched_at: float
    zone_prices: dict[str, float] = field(default_factory=dict)
    day: list[float] = field(default_factory=list)
    """The run zone's price at each of SPARK_SAMPLES moments over the last 24 hours."""
    run_history: list[PricePoint] = field(default_factory=list)
    """Price steps since the run's launch, for cost projections."""
    ssh_warning: str | None = None
    places: tuple[Ranked, ...] = ()
    """With `instance.regions`: where a run of this config would go now, best first."""
    places_basis: str = ""
    """What that order rests on (or why it is unknown), one sentence."""


def samples(history: list[PricePoint], start: float, end: float, count: int) -> list[float]:
    """The price in force at `count` evenly spaced moments over [start, end]."""
    if not history:
        return []
    step = (end - start) / max(count - 1, 1)
    return [cost.price_at(history, start + i * step) for i in range(count)]


async def fetch_market(lifecycle: Lifecycle, run: Run, now: float) -> Market:
    """Ask the run's provider; blocking provider calls run in threads."""
    provider = lifecycle.provider_of(run)
    config = lifecycle.config_of(run)
    try:
        choice = await asyncio.to_thread(
            choose, lifecycle.provider_for_config(config.instance), config
        )
    except PaceridError as err:
        choice, basis = None, str(err)
    else:
        basis = choice.basis if choice else ""
    prices = {} if choice else await asyncio.to_thread(zone_prices, provider)
    market = Market(
        now,
        zone_prices=prices,
        ssh_warning=ssh_warning(provider),
        places=choice.ranked if choice else (),
        places_basis=basis,
    )
    inst = run.instance
    if inst is None:
        return market
    day = await asyncio.to_thread(provider.price_history, inst, now - DAY_S, now)
    history = await lifecycle.prices.history(provider, inst, now) if inst.launched_at else []
    return replace(market, day=samples(day, now - DAY_S, now, SPARK_SAMPLES), run_history=history)
