"""A launch where the ranking says (README: "Choosing where"), and what it is built from.

The ranked regions are tried in order. In each, the run's region is recorded first (so that a
launch cut short is still looked for there), then that region's blocking checks run (quota,
network: doctor's preflight on the config placed there), then the provider of that region
launches with the ranked zones first: its own image (the region's SSM parameters), key pair
(imported there), security group and subnets. A region whose checks fail or that has no
capacity gives way to the next; when every region fails, the best-ranked region's error is the
user's. Without `instance.regions` a launch is the one it always was (`spec_for`).
"""

from __future__ import annotations

from collections.abc import Callable

from pacerid_tui.config import Config
from pacerid_tui.core.cloud.base import Provider, Report
from pacerid_tui.core.kernel.errors import CapacityError
from pacerid_tui.core.kernel.models import Instance, InstanceSpec
from pacerid_tui.core.steps.doctor import PreflightError, preflight
from pacerid_tui.core.steps.placement_rank import Choice, placed

ProviderIn = Callable[[str], Provider]
"""The provider of a region, once the run's region is recorded as that one."""


def spec_for(config: Config, run_id: str, zones: tuple[str, ...] = ()) -> InstanceSpec:
    inst = config.instance
    return InstanceSpec(
        run_id=run_id,
        provider=inst.provider,
        region=inst.region,
        instance_type=inst.instance_type,
        market=inst.market,
        max_price=inst.max_price,
        boot_grace_minutes=inst.boot_grace_minutes,
        max_runtime_minutes=inst.max_runtime_minutes,
        interruption=inst.interruption,
        zones=zones,
    )


def ready_region(config: Config, choice: Choice, provider_in: ProviderIn, report: Report) -> str:
    """The best-ranked region whose blocking checks pass (the launch form's check); the best
    region's PreflightError when none does. Blocking."""
    first: PreflightError | None = None
    for region in choice.regions():
        try:
            preflight(placed(config, region), provider_in(region))
        except PreflightError as err:
            report(f"Not {region}: {err}")
            first = first or err
            continue
        return region
    assert first is not None, "a choice has at least one region"
    raise first


def launch_placed(
    config: Config, choice: Choice, run_id: str, provider_in: ProviderIn, report: Report
) -> Instance:
    """Launch in the first ranked region whose checks pass and which has room. Blocking."""
    first: PreflightError | CapacityError | None = None
    for region in choice.regions():
        provider = provider_in(region)
        here = placed(config, region)
        try:
            preflight(here, provider)
            report(f"Launching in {region}: {choice.reason_at(region, None)}.")
            return provider.launch(spec_for(here, run_id, choice.zones_in(region)), report)
        except (PreflightError, CapacityError) as err:
            report(f"Not {region}: {err}")
            first = first or err
    assert first is not None, "a choice has at least one region"
    raise first
