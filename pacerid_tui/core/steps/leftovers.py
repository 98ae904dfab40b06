"""What of ours is left, asked of every provider that can tell: the one entry point of
`pacerid-tui sweep`, doctor's leftovers check and the dashboard's orphan notice.

The providers are the local one always (its instances live on this machine whatever the config
says) and, for an AWS config, the AWS provider, which looks in every region the account has
enabled (cloud/aws_leftovers.py). A resource is kept while a run the registry knows uses it
(its instance, or the group, key pair, request and role that instance needs); everything else
is a leftover, and `sweep --yes` removes exactly those (cloud/aws_sweep.py gives the order).
Nothing here calls a provider for anything it did not list, and nothing without our tag is
ever listed. Calls block: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pacerid_tui import paths
from pacerid_tui.config import Config, InstanceConfig
from pacerid_tui.core.cloud.base import MANAGED_TAG, Provider, Report, Sweepable, quiet
from pacerid_tui.core.kernel.models import Inventory, Leftover, Run, Swept
from pacerid_tui.core.remote import ssh

TAG = f"{MANAGED_TAG}=true"
"""How our resources are told from look-alikes, as a person would search for them."""


def providers(config: Config, provider_for: Callable[[InstanceConfig], Provider]) -> list[Provider]:
    """The local provider, and the config's own when it is another (AWS)."""
    found = [provider_for(InstanceConfig(provider="local"))]
    if config.instance.provider != "local":
        found.append(provider_for(config.instance))
    return found


def kept_instances(runs: Sequence[Run]) -> dict[str, str]:
    """Instance id → run id for every run's current instance: what a sweep never touches."""
    return {run.instance.instance_id: run.run_id for run in runs if run.instance is not None}


def inventory(found_in: Sequence[Provider], runs: Sequence[Run]) -> Inventory:
    """Everything of ours each provider finds, kept ones marked with their run."""
    kept = kept_instances(runs)
    total = Inventory()
    for provider in found_in:
        if isinstance(provider, Sweepable):
            total += provider.leftovers(kept)
    return total


def sweep(found_in: Sequence[Provider], found: Inventory, report: Report = quiet) -> Swept:
    """Remove what no run uses, provider by provider; an ended instance's pinned host key goes
    with it (ids never come back)."""
    swept = Swept()
    for provider in found_in:
        mine = [item for item in found.leftovers if item.provider == provider.name]
        if mine and isinstance(provider, Sweepable):
            swept += provider.sweep(mine, report)
    for item in swept.removed:
        if item.kind == "instance":
            ssh.forget(item.resource_id, paths.known_hosts_file())
    return swept


def billing(found: Inventory) -> list[Leftover]:
    """The leftovers that cost money now, may (an unknown price), or may start to (an open
    spot request)."""
    return [item for item in found.leftovers if item.billing]


def per_day(items: Sequence[Leftover]) -> float:
    """What these cost a day, counting the known prices."""
    return sum(item.usd_per_day or 0.0 for item in items)


def named(item: Leftover) -> str:
    """`volume vol-0abc (eu-west-1, $0.27/day)`: a leftover in a few words."""
    cost = f"${item.usd_per_day:.2f}/day" if item.usd_per_day is not None else "price unknown"
    return f"{item.kind} {item.resource_id} ({item.region}, {cost})"


def summary(found: Inventory) -> str:
    """One sentence: what is left and what it costs a day, or that nothing of ours is."""
    left = found.leftovers
    if not left:
        return f"Nothing tagged {TAG} is left that no run uses."
    paying = billing(found)
    listed = ", ".join(named(item) for item in (paying or left)[:3])
    more = len(paying or left) - 3
    what = (
        f"{len(paying)} of {len(left)} cost money (${per_day(paying):.2f}/day)"
        if paying
        else (f"none of the {len(left)} costs money")
    )
    return f"Left of ours with no run using it: {what}: {listed}" + (
        f" and {more} more." if more > 0 else "."
    )
