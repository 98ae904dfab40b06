"""What the dashboard shows of a provider's market: the price now in each zone, SSH exposure.

Both are optional provider capabilities (`ZonePrices`, `SshExposure` in cloud/base.py), asked
here so the UI never probes or builds a provider itself: one without zones answers empty, one
whose SSH is never exposed answers None. The launch form asks for configs that are no run yet,
after every pause in typing, so `ZoneQuotes` keeps one provider per market it was asked about
(boto3 clients are not free).
"""

from __future__ import annotations

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.base import Provider, SshExposure, ZonePrices
from pacerid_tui.core.cloud.factory import provider_for


def zone_prices(provider: Provider) -> dict[str, float]:
    """USD per hour now, by zone; empty for a provider without zones. Blocking."""
    return dict(provider.zone_prices()) if isinstance(provider, ZonePrices) else {}


def ssh_warning(provider: Provider) -> str | None:
    """A sentence to keep on screen while SSH is open wider than this machine, else None."""
    return provider.ssh_warning() if isinstance(provider, SshExposure) else None


class ZoneQuotes:
    """Zone prices for configs that are no run yet, one provider kept per market asked about."""

    def __init__(self) -> None:
        self._providers: dict[tuple[object, ...], Provider] = {}

    def now(self, config: InstanceConfig) -> dict[str, float]:
        """USD per hour now, by zone, for this instance config. Blocking."""
        key = (config.provider, config.region, config.profile, config.instance_type, *config.zones)
        if key not in self._providers:
            self._providers[key] = provider_for(config)
        return zone_prices(self._providers[key])
