"""Instances of ours that no run knows (the registry was lost, or a launch was cut short):
found by tag on AWS and by server process locally, then adopted or terminated; and, for the
dashboard's notice, whatever else of ours bills with no run using it, in every region
(core/steps/leftovers.py: `pacerid-tui sweep` lists and removes it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pacerid_tui import paths
from pacerid_tui.config import Config, InstanceConfig, load_config
from pacerid_tui.core.cloud.base import Provider
from pacerid_tui.core.kernel.errors import UsageError
from pacerid_tui.core.kernel.models import Instance, Leftover, Run
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.steps import leftovers
from pacerid_tui.core.steps.lifecycle import Lifecycle, freeze


async def orphans(lifecycle: Lifecycle, config: Config) -> list[Instance]:
    """Live instances this tool created (by tag or server process) that no run knows: on AWS
    in the config's region, each of its listed `regions` and every region a run was placed in
    (`pacerid-tui sweep` looks in every enabled region)."""
    providers = [lifecycle.provider_for_config(InstanceConfig(provider="local"))]
    runs = lifecycle.registry.runs()
    if config.instance.provider == "aws":
        providers.append(lifecycle.provider_for_config(config.instance))
        listed = config.instance.regions if isinstance(config.instance.regions, list) else []
        placed = {run.region for run in runs if run.region} | set(listed)
        for region in sorted(placed - {config.instance.region}):
            providers.append(lifecycle.provider_for_config(config.instance.in_region(region)))
    known = {run.instance.instance_id for run in runs if run.instance}
    found: list[Instance] = []
    for provider in providers:
        found += await asyncio.to_thread(provider.find_managed)
    return [instance for instance in found if instance.instance_id not in known]


async def billing_leftovers(lifecycle: Lifecycle, config: Config) -> list[Leftover]:
    """What of ours costs money (or may start to) with no run using it, everywhere the
    providers look, beyond the instances `orphans` finds (those can be adopted): an instance in
    another region, an unattached volume, an open spot request."""
    found_in = leftovers.providers(config, lifecycle.provider_for_config)
    runs = lifecycle.registry.runs()
    found = await asyncio.to_thread(leftovers.inventory, found_in, runs)
    adoptable = {config.instance.region, "local"}
    return [
        item
        for item in leftovers.billing(found)
        if not (item.kind == "instance" and item.region in adoptable)
    ]


async def adopt(
    lifecycle: Lifecycle, instance_id: str, config_path: Path, config: Config | None = None
) -> Run:
    """Give an unknown instance a run again, so every step (and terminate) works on it; its
    config (the file's, or `config` as resolved) is frozen with it like a launched run's."""
    config = config or load_config(config_path)
    match = [i for i in await orphans(lifecycle, config) if i.instance_id == instance_id]
    if not match:
        raise UsageError(
            f"No unknown live instance {instance_id}; `pacerid-tui status` lists them."
        )
    instance = match[0]
    run = Run(
        run_id=instance.run_id or f"adopted-{instance.instance_id}",
        provider=instance.provider,
        config_path=str(config_path.resolve()),
        created_at=instance.launched_at or time.time(),
        instance=instance,
        steps_done=["launch"],
        epochs=config.training.epochs,
        region=None if instance.provider != "aws" else placed_in(instance, config),
    )
    freeze(run.run_id, config)
    lifecycle.registry.save(run)
    lifecycle.listener.run_changed(run)
    return run


def placed_in(instance: Instance, config: Config) -> str | None:
    """An adopted instance's region, when it is not the config's own (found in another)."""
    return instance.region if instance.region != config.instance.region else None


async def terminate_instance(lifecycle: Lifecycle, instance_id: str, config: Config) -> Instance:
    """Terminate an instance by id, whether or not a run knows it."""
    provider = await holder(lifecycle, instance_id, config)
    instance = await asyncio.to_thread(provider.terminate, instance_id)
    ssh.forget(instance_id, paths.known_hosts_file())
    for run in lifecycle.registry.runs():
        if run.instance and run.instance.instance_id == instance_id:
            lifecycle.update(run, instance=instance)
    return instance


async def holder(lifecycle: Lifecycle, instance_id: str, config: Config) -> Provider:
    """The provider of the region where the instance is (its run's, or where `orphans` found
    it): asked in another region, EC2 would call it long gone while it bills on."""
    if instance_id.startswith("local-"):
        return lifecycle.provider_for_config(InstanceConfig(provider="local"))
    for run in lifecycle.registry.runs():
        if run.instance and run.instance.instance_id == instance_id:
            return lifecycle.provider_of(run)
    for found in await orphans(lifecycle, config):
        if found.instance_id == instance_id and found.provider == "aws":
            return lifecycle.provider_for_config(config.instance.in_region(found.region))
    return lifecycle.provider_for_config(config.instance)
