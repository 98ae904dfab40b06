"""What the dashboard shows of a provider's market: the price now in each zone, where a run
would go (with `instance.regions`), SSH exposure.

Both are optional provider capabilities (`ZonePrices`, `SshExposure` in cloud/base.py), asked
here so the UI never probes or builds a provider itself: one without zones answers empty, one
whose SSH is never exposed answers None. The launch form asks for configs that are no run yet,
after every pause in typing, so `ZoneQuotes` keeps one provider per market it was asked about
(boto3 clients are not free).
"""

from __future__ import annotations

from pacerid_tui.config import Config, InstanceConfig
from pacerid_tui.core.cloud.base import Provider, SshExposure, ZonePrices, quiet
from pacerid_tui.core.cloud.factory import provider_for
from pacerid_tui.core.steps.doctor import preflight
from pacerid_tui.core.steps.placement import ready_region
from pacerid_tui.core.steps.placement_rank import Choice, choose


def zone_prices(provider: Provider) -> dict[str, float]:
    """USD per hour now, by zone; empty for a provider without zones. Blocking."""
    return dict(provider.zone_prices()) if isinstance(provider, ZonePrices) else {}


def ssh_warning(provider: Provider) -> str | None:
    """A sentence to keep on screen while SSH is open wider than this machine, else None."""
    return provider.ssh_warning() if isinstance(provider, SshExposure) else None


class ZoneQuotes:
    """Zone prices and rankings for configs that are no run yet, one provider kept per market
    asked about."""

    def __init__(self) -> None:
        self._providers: dict[tuple[object, ...], Provider] = {}

    def _provider(self, config: InstanceConfig, *key: object) -> Provider:
        if key not in self._providers:
            self._providers[key] = provider_for(config)
        return self._providers[key]

    def now(self, config: InstanceConfig) -> dict[str, float]:
        """USD per hour now, by zone, for this instance config. Blocking."""
        key = (config.provider, config.region, config.profile, config.instance_type, *config.zones)
        return zone_prices(self._provider(config, *key))

    def ranking(self, config: Config) -> Choice | None:
        """Where a run of this config would go, best first (placement_rank.py); None when it
        has no `instance.regions` to choose among. Blocking."""
        return choose(self._provider(config.instance, config.instance.model_dump_json()), config)

    def ready(self, config: Config) -> None:
        """The blocking checks a launch from the form runs first: in the config's region, or
        with `instance.regions`, in the best-ranked region that passes them. Blocking."""
        choice = self.ranking(config)
        if choice is None:
            preflight(config)
            return
        ready_region(config, choice, lambda region: self._in(config.instance, region), quiet)

    def _in(self, config: InstanceConfig, region: str) -> Provider:
        placed = config.in_region(region)
        return self._provider(placed, placed.model_dump_json())
