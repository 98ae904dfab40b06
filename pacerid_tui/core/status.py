"""One row per run for `status` and the dashboard's table: state, uptime, price now, cost so far.

Prices come from the provider's history, fetched at most once a minute per zone and type
(`PriceCache`), so following many runs costs a handful of API calls; the cost itself is the
pure function in `cost.py`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pacerid_tui.core import cost
from pacerid_tui.core.cloud.base import Provider
from pacerid_tui.core.models import Instance, PricePoint, Run

PRICE_TTL_S = 60.0
"""Spot prices change a few times a day at most; once a minute per zone is plenty."""


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    provider: str
    instance_id: str | None
    instance_type: str | None
    zone: str | None
    state: str
    state_reason: str | None
    uptime_s: float | None
    price_per_hour: float | None
    cost_usd: float
    epoch: int | None
    epochs: int | None
    val_acc: float | None
    steps_done: list[str]
    train_loss: float | None = None
    budget_usd: float | None = None
    """The run's own budget, from its frozen config."""

    @property
    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.cost_usd >= self.budget_usd


class PriceCache:
    """Price histories per (provider, zone, type), refreshed when older than PRICE_TTL_S."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str | None, str], tuple[float, list[PricePoint]]] = {}

    async def history(self, provider: Provider, instance: Instance, now: float) -> list[PricePoint]:
        key = (instance.provider, instance.zone, instance.instance_type)
        cached = self._cache.get(key)
        start = instance.launched_at or now
        if (
            cached
            and now - cached[0] < PRICE_TTL_S
            and cached[1]
            and cached[1][0].timestamp <= start
        ):
            return cached[1]
        points = await asyncio.to_thread(provider.price_history, instance, start, now)
        self._cache[key] = (now, points)
        return points


def uptime_text(seconds: float | None) -> str:
    """`12m05s`, `3h07m`, or `-` when unknown."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def row(run: Run, history: list[PricePoint], now: float) -> RunStatus:
    inst = run.instance
    uptime = price = None
    spent = 0.0
    if inst is not None and inst.launched_at is not None:
        end = inst.ended_at if inst.ended_at is not None else now
        uptime = max(end - inst.launched_at, 0.0)
        spent = cost.cost_usd(history, inst.launched_at, end)
        price = cost.price_at(history, now) if history else None
    return RunStatus(
        run_id=run.run_id,
        provider=run.provider,
        instance_id=inst.instance_id if inst else None,
        instance_type=inst.instance_type if inst else None,
        zone=inst.zone if inst else None,
        state=inst.state.value if inst else "not launched",
        state_reason=inst.state_reason if inst else None,
        uptime_s=uptime,
        price_per_hour=price,
        cost_usd=run.cost_usd + spent,
        epoch=run.epoch,
        epochs=run.epochs,
        train_loss=run.train_loss,
        val_acc=run.val_acc,
        steps_done=list(run.steps_done),
    )


async def rows(
    runs: list[Run], provider_of: dict[str, Provider], prices: PriceCache, now: float | None = None
) -> list[RunStatus]:
    """Rows for these runs; `provider_of` maps run id → its provider (absent: price unknown)."""
    now = time.time() if now is None else now
    result = []
    for run in runs:
        history: list[PricePoint] = []
        provider = provider_of.get(run.run_id)
        if run.instance is not None and provider is not None:
            history = await prices.history(provider, run.instance, now)
        result.append(row(run, history, now))
    return result
