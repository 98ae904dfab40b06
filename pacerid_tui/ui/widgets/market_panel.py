"""The selected run's market: a 24-hour spot-price sparkline for its zone and today's price in
every zone (with `instance.regions`: the best places and the run's own, with their reasons), so
a cheaper zone (or a price spike) is visible at a glance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

if TYPE_CHECKING:  # types only: ui/market.py reaches the providers (after the first frame)
    from pacerid_tui.core.kernel.models import Run
    from pacerid_tui.ui.market import Market


class MarketPanel(Vertical):
    shown: tuple[str, list[float], str] | None = None
    """Title, day and zones on screen: unchanged, nothing is redrawn (each update is a layout)."""

    def compose(self) -> ComposeResult:
        yield Static("Spot price, last 24 h", id="market-title")
        yield Sparkline([], id="market-day")
        yield Static("", id="market-zones")

    def show(self, run: Run | None, market: Market | None) -> None:
        zone = run.instance.zone if run and run.instance else None
        if run is None or market is None:
            title = "Prices: select a run" if run is None else "Prices: asking…"
            self._paint(title, [], "")
            return
        day = market.day
        if day:
            title = f"{zone or run.provider}, 24 h: ${min(day):.4f}–${max(day):.4f}/h"
        else:
            title = "Price, last 24 h: not launched"
        if market.places or market.places_basis:
            self._paint(title, list(day), places(market, zone))
            return
        lines = [
            f"{'▸' if name == zone else ' '} {name:<11} ${price:.4f}/h"
            for name, price in market.zone_prices.items()
        ]
        self._paint(title, list(day), "\n".join(lines) if lines else "zone prices unknown")

    def _paint(self, title: str, day: list[float], zones: str) -> None:
        if (title, day, zones) == self.shown:
            return
        self.shown = (title, day, zones)
        self.query_one("#market-title", Static).update(title)
        self.query_one("#market-day", Sparkline).data = day
        self.query_one("#market-zones", Static).update(zones)


def places(market: Market, zone: str | None) -> str:
    """The two best places, or the best and the run's own, each on two lines (the reason, as the
    launch form words it); ▸ marks the run's zone."""
    numbered = list(enumerate(market.places, start=1))
    shown = numbered[:2]
    own = [(n, row) for n, row in numbered if row.facts.zone == zone]
    if own and own[0] not in shown:
        shown = [numbered[0], own[0]]
    if not shown:
        return market.places_basis or "no place known"
    lines = []
    for number, row in shown:
        lines += [f"{'▸' if row.facts.zone == zone else ' '}{number} {row.place}", f"   {row.risk}"]
    return "\n".join(lines)
