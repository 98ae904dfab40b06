"""What a run costs: pure functions over a price history, so they are tested on real numbers.

EC2 bills Linux spot and on-demand instances per second with a 60-second minimum, and a spot
instance pays the price in force over time (never its max price). The cost of a run is therefore
the integral of a step function: each `PricePoint` holds from its timestamp until the next one.
AWS's history for a range starts with the last change *before* the range, so the price in force
at launch is the first point; an on-demand instance is a history of one point at its flat rate.
Nothing here calls AWS or reads a clock: callers pass `now` in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pacerid_tui.core.kernel.models import PricePoint
from pacerid_tui.core.kernel.price_table import RegionPrices

MINIMUM_BILLED_S = 60
"""EC2 per-second billing for Linux charges at least one minute per instance start."""

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_BILLED_MONTH = 30 * 86400.0
"""EBS prorates a GB-month per second over a 30-day month (AWS's EBS pricing example)."""
BYTES_PER_GB = 1024**3
"""AWS bills data transfer in GB of 2^30 bytes."""

RECENT_EPOCHS = 3
"""Epochs averaged for a projection: the first epoch carries warm-up (data caching, cuDNN
autotuning), so the most recent ones predict the rest better than the whole mean."""


def billed_seconds(start: float, end: float) -> int:
    """Seconds billed for an instance up from `start` to `end`: whole seconds, at least 60."""
    return max(math.ceil(max(end - start, 0.0)), MINIMUM_BILLED_S)


def price_at(history: Sequence[PricePoint], moment: float) -> float:
    """The hourly price in force at `moment` (the first known price before the history starts)."""
    if not history:
        return 0.0
    steps = sorted(history, key=lambda point: point.timestamp)
    current = steps[0].price
    for point in steps:
        if point.timestamp > moment:
            break
        current = point.price
    return current


def cost_usd(history: Sequence[PricePoint], start: float, end: float) -> float:
    """USD billed from `start` to `end` under these price steps (per second, 60 s minimum).

    An empty history (price unknown) costs 0.0. Before the first point its price is assumed,
    which only matters for a truncated history: AWS always includes the step in force at start.
    """
    if not history:
        return 0.0
    billed_end = start + billed_seconds(start, end)
    steps = sorted(history, key=lambda point: point.timestamp)
    total = 0.0
    for index, point in enumerate(steps):
        step_start = start if index == 0 else max(point.timestamp, start)
        step_end = steps[index + 1].timestamp if index + 1 < len(steps) else billed_end
        step_end = min(step_end, billed_end)
        if step_end > step_start:
            total += point.price * (step_end - step_start) / SECONDS_PER_HOUR
    return total


def remaining_seconds(epoch_durations: Sequence[float], epochs_total: int) -> float | None:
    """Seconds left for the epochs not yet run, from the recent epoch times; None before one."""
    if not epoch_durations:
        return None
    recent = epoch_durations[-RECENT_EPOCHS:]
    epochs_left = max(epochs_total - len(epoch_durations), 0)
    return epochs_left * sum(recent) / len(recent)


def budget_runway_s(cost: float, budget_usd: float | None, hourly_price: float) -> float | None:
    """Seconds until the budget is spent at this hourly price; None without budget or price."""
    if budget_usd is None or hourly_price <= 0:
        return None
    return max(budget_usd - cost, 0.0) / hourly_price * SECONDS_PER_HOUR


@dataclass(frozen=True)
class CostParts:
    """What a run costs, part by part (USD)."""

    compute: float = 0.0
    volume: float = 0.0
    ipv4: float = 0.0
    egress: float = 0.0

    @property
    def total(self) -> float:
        return self.compute + self.volume + self.ipv4 + self.egress

    def __add__(self, other: CostParts) -> CostParts:
        return CostParts(
            self.compute + other.compute,
            self.volume + other.volume,
            self.ipv4 + other.ipv4,
            self.egress + other.egress,
        )


def volume_cost(gb: float, start: float, end: float, prices: RegionPrices) -> float:
    """A root volume of `gb` from `start` to `end` (it exists until the instance terminates)."""
    return gb * prices.gp3_gb_month * max(end - start, 0.0) / SECONDS_PER_BILLED_MONTH


def ipv4_cost(start: float, end: float, prices: RegionPrices) -> float:
    """One public IPv4 address while the instance runs."""
    return prices.ipv4_hour * max(end - start, 0.0) / SECONDS_PER_HOUR


def egress_cost(bytes_out: int, prices: RegionPrices) -> float:
    """Bytes downloaded from the host to this machine, at the first paid tier."""
    return bytes_out / BYTES_PER_GB * prices.egress_gb


def running_stretches(
    start: float, end: float, stops: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """`start`..`end` without the stopped stretches (stop mode: stopped, then started again)."""
    running, since = [], start
    for stopped, started in sorted(stops):
        stopped, started = max(stopped, since), min(started, end)
        if started <= stopped:
            continue
        running.append((since, stopped))
        since = started
    if since < end or not running:  # still stopped at `end`: no start after the last stop
        running.append((since, end))
    return running


def instance_parts(
    history: Sequence[PricePoint],
    start: float,
    end: float,
    volume_gb: float,
    prices: RegionPrices,
    stops: Sequence[tuple[float, float]] = (),
) -> CostParts:
    """Compute, volume and IPv4 of one instance from `start` to `end`.

    A stopped instance (stop mode) bills its root volume only: compute and the public IPv4 are
    counted over the running stretches, each a start with its own 60-second minimum, and the
    volume over the whole time.
    """
    running = running_stretches(start, end, stops)
    return CostParts(
        compute=sum(cost_usd(history, a, b) for a, b in running),
        volume=volume_cost(volume_gb, start, end, prices),
        ipv4=sum(ipv4_cost(a, b, prices) for a, b in running),
    )


SECONDS_PER_DAY = 86400.0


def daily_parts(
    hourly: float, volume_gb: float, public_ipv4: bool, running: bool, prices: RegionPrices
) -> CostParts:
    """What an instance as it is now costs over a day (`sweep`): running, its compute at
    `hourly`, its volumes and its public IPv4 address; stopped, its volumes only."""
    return CostParts(
        compute=hourly * 24 if running else 0.0,
        volume=volume_cost(volume_gb, 0.0, SECONDS_PER_DAY, prices),
        ipv4=ipv4_cost(0.0, SECONDS_PER_DAY, prices) if running and public_ipv4 else 0.0,
    )
