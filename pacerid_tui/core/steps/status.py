"""One row per run for `status` and the dashboard's table: state, uptime, price now, cost so far,
and the budget rule's word on it; and how each cell of a row reads, for both tables.

Prices come from the provider's history, fetched at most once a minute per zone and type
(`PriceCache`), so following many runs costs a handful of API calls; the cost itself is the
pure function in `cost.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from pacerid_tui.core.cloud.base import Provider
from pacerid_tui.core.kernel import cost, forecast
from pacerid_tui.core.kernel.models import Instance, InstanceState, PricePoint, Run
from pacerid_tui.core.kernel.price_table import prices_for
from pacerid_tui.core.steps import budget_rule

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
    cost_parts: dict[str, float] = field(default_factory=dict)
    """`cost_usd` by part: compute, volume, ipv4, egress (USD)."""
    budgeted_usd: float = 0.0
    """What the budget counts of `cost_usd` (`budget_rule.counted`)."""
    budget_includes_egress: bool = False
    """Whether `budgeted_usd` counts egress (instance.budget_includes_egress)."""
    budget_share: float | None = None
    """`budgeted_usd` as a share of `budget_usd` (1.0 = all of it); None without a budget."""
    budget_verdict: budget_rule.Verdict = "ok"
    """What the money rule says at this cost (`budget_rule.verdict`): ok, warn or stop."""
    ended: str | None = None
    """How the run ended when it was not recovered (`Run.ended`), one sentence."""
    placement: str | None = None
    """Why the run is where it is, when the ranking placed it (`Run.placement`)."""
    forecast_usd: float | None = None
    """What the budget will count when the last epoch ends, at this pace and price
    (`forecast.forecast`); None before an epoch was measured or once training is over."""
    seconds_left: float | None = None
    """Until the last epoch ends, at this pace."""
    budget_epoch: int | None = None
    """The epoch during which the budget would stop the run; None when it lasts."""
    at_risk_s: float | None = None
    """Seconds of training since the newest checkpoint the run could resume from (on the
    host's volume in stop mode, on this machine in relaunch mode): what an interruption now
    would make it do again."""
    at_risk_usd: float | None = None
    """What those seconds cost at the rate now."""

    @property
    def over_budget(self) -> bool:
        return self.budget_verdict == "stop"

    @property
    def budget_warning(self) -> bool:
        """Past the warning share of its budget (or past the budget itself)."""
        return self.budget_verdict != "ok"


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


def state_text(row: RunStatus) -> str:
    """The state as both tables show it: with its reason where it adds something ("terminated
    by you" adds nothing to "terminated"; "interrupted by AWS" does), "left ended" for a
    vanished instance the user left ended, and whether the run is past its budget."""
    reason = row.state_reason
    if row.ended and row.state == "unknown":
        reason = "left ended"  # gone for no known reason, and the user said leave it
    state = row.state + (f" ({reason})" if reason and not reason.startswith(row.state) else "")
    if row.over_budget and row.state not in ("terminated", "not launched"):
        state += " (over budget)"
    return state


def uptime_text(seconds: float | None) -> str:
    """`12m05s`, `3h07m`, or `-` when unknown."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


COLUMNS: dict[str, Callable[[RunStatus], str]] = {
    "Run": lambda row: row.run_id,
    "Provider": lambda row: row.provider,
    "Instance": lambda row: row.instance_id or "-",
    "Type": lambda row: row.instance_type or "-",
    "Zone": lambda row: row.zone or "-",
    "State": state_text,
    "Uptime": lambda row: uptime_text(row.uptime_s),
    "Price/h": lambda row: "-" if row.price_per_hour is None else f"${row.price_per_hour:.4f}",
    "Cost": lambda row: f"${row.cost_usd:.4f}",
    "Epoch": lambda row: f"{row.epoch or 0}/{row.epochs or '?'}",
    "Val acc": lambda row: "-" if row.val_acc is None else f"{row.val_acc:.1%}",
}
"""Every column a status table shows, by title, and how a row reads in it: `status` shows them
all, the dashboard's table all but Instance and Val acc."""


def cells(row: RunStatus, columns: Sequence[str] = tuple(COLUMNS)) -> tuple[str, ...]:
    """A row's cells under these column titles, formatted once for both tables."""
    return tuple(COLUMNS[name](row) for name in columns)


def row(
    run: Run,
    history: list[PricePoint],
    now: float,
    *,
    volume_gb: int = 0,
    include_egress: bool = False,
    budget_usd: float | None = None,
    stops: Sequence[tuple[float, float]] = (),
) -> RunStatus:
    """A run's row at `now`: its earlier instances, the current one (a root volume of
    `volume_gb` unless the instance says; `stops`: its stopped stretches, volume only), and
    what was downloaded from them."""
    inst = run.instance
    uptime = price = None
    parts = (
        cost.CostParts(**run.earlier_parts)
        if run.earlier_parts
        else cost.CostParts(compute=run.cost_usd)
    )
    if inst is not None and inst.launched_at is not None:
        end = inst.ended_at if inst.ended_at is not None else now
        uptime = max(end - inst.launched_at, 0.0)
        where = prices_for(inst.provider, inst.region)
        gb = inst.volume_gb or volume_gb
        parts += cost.instance_parts(history, inst.launched_at, end, gb, where, stops)
        price = cost.price_at(history, now) if history else None
    region = inst.region if inst else ""
    parts += cost.CostParts(
        egress=cost.egress_cost(run.bytes_downloaded, prices_for(run.provider, region))
    )
    counted = budget_rule.counted(parts, include_egress)
    ahead, risk = _ahead(run, history, now, counted, budget_usd, volume_gb)
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
        cost_usd=parts.total,
        epoch=run.epoch,
        epochs=run.epochs,
        train_loss=run.train_loss,
        val_acc=run.val_acc,
        steps_done=list(run.steps_done),
        budget_usd=budget_usd,
        cost_parts=asdict(parts),
        budgeted_usd=counted,
        budget_includes_egress=include_egress,
        budget_share=budget_rule.share(counted, budget_usd),
        budget_verdict=budget_rule.verdict(counted, budget_usd),
        ended=run.ended,
        placement=run.placement,
        forecast_usd=ahead.cost_at_end_usd if ahead else None,
        seconds_left=ahead.seconds_left if ahead else None,
        budget_epoch=ahead.budget_epoch if ahead else None,
        at_risk_s=risk[0] if risk else None,
        at_risk_usd=risk[1] if risk else None,
    )


def hourly_usd(run: Run, price: float, volume_gb: int) -> float:
    """What the run's instance bills an hour as it runs now: compute at `price`, its volume
    and its public IPv4 address (the budget's parts that grow with time)."""
    where = prices_for(run.provider, run.instance.region if run.instance else "")
    hour = cost.SECONDS_PER_HOUR
    return price + cost.ipv4_cost(0.0, hour, where) + cost.volume_cost(volume_gb, 0.0, hour, where)


def _ahead(
    run: Run,
    history: Sequence[PricePoint],
    now: float,
    counted: float,
    budget_usd: float | None,
    volume_gb: int,
) -> tuple[forecast.Forecast | None, tuple[float, float] | None]:
    """The forecast and the work at risk (seconds, USD), for a run whose instance runs and
    trains; the USD at risk is what was billed since the checkpoint, at the prices then."""
    inst = run.instance
    if inst is None or inst.state is not InstanceState.RUNNING or not history:
        return None, None
    if run.training_started_at is None or not run.epochs or inst.launched_at is None:
        return None, None
    price = cost.price_at(history, now)
    rate = hourly_usd(run, price, inst.volume_gb or volume_gb)
    started = max([run.training_started_at, *run.epoch_ends[-1:]])
    paid_ahead = inst.launched_at + cost.MINIMUM_BILLED_S - now
    ahead = forecast.forecast(
        counted,
        rate,
        run.epoch_seconds,
        run.epoch or 0,
        run.epochs,
        now - started,
        budget_usd,
        max(paid_ahead, 0.0),
    )
    stop_mode = inst.spot_request_id is not None  # the host's volume outlives an interruption
    since = forecast.resumable_since(
        stop_mode, run.epoch_ends, run.training_started_at, run.downloaded_at
    )
    if since is None:
        return ahead, None
    since = min(max(since, inst.launched_at), now)
    billed = cost.cost_usd(history, inst.launched_at, now)
    compute = billed - cost.cost_usd(history, inst.launched_at, since)
    return ahead, (now - since, compute + (rate - price) * (now - since) / cost.SECONDS_PER_HOUR)
