"""The steps of a run, in order: launch → upload → setup → data → train → download → terminate.

Each step is idempotent and resumable: it reads the run from the registry, does its work, and
records itself in `run.steps_done`. `Lifecycle` is the one object the CLI, the dashboard and the
supervisor call: launching, ending and listing instances are here; the steps done on the host
over SSH (upload to download) are `host_steps.py`'s, offered here as methods. What happens is
told to a `Listener` (`run_listener.py`: the CLI prints, the dashboard posts messages), so this
module knows nothing about either. Every step reads the run's config as it was frozen at launch
(`config_of`), never the YAML file again. Orchestration (following training, the budget,
recovery, every step in a row) is the supervisor's (`supervisor.py`), above this layer; queries
here (`refresh`, `statuses`) only read."""

from __future__ import annotations

import asyncio
import functools
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path

import yaml

from pacerid_tui import paths
from pacerid_tui.config import Config, InstanceConfig, load_config
from pacerid_tui.core.cloud.base import Provider
from pacerid_tui.core.cloud.factory import provider_for
from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.host_records import stopped_stretches
from pacerid_tui.core.kernel.lazy import asyncssh
from pacerid_tui.core.kernel.models import Instance, InstanceState, PricePoint, Run
from pacerid_tui.core.remote import ssh, sync
from pacerid_tui.core.remote.connections import Connections
from pacerid_tui.core.remote.host_contract import TrainingState
from pacerid_tui.core.steps import host_steps, placement, placement_rank
from pacerid_tui.core.steps.credentials import kaggle_credentials
from pacerid_tui.core.steps.doctor import preflight
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.core.steps.status import PriceCache, RunStatus
from pacerid_tui.core.steps.status import row as status_row


class Lifecycle:
    def __init__(self, registry: Registry | None = None, listener: Listener | None = None) -> None:
        self.registry = registry or Registry(paths.registry_file())
        self.listener = listener or Listener()
        self._providers: dict[str, Provider] = {}
        self.prices = PriceCache()
        self._configs: dict[str, Config] = {}
        self._launching: dict[str, asyncio.Future[Run]] = {}
        """Launches under way, per run: a terminate waits for one and ends what it started."""
        self.connections = Connections(
            self.registry.get,
            self.refresh,
            self.config_of,
            self.provider_of,
            report=lambda run_id, m: self.listener.report(run_id, m),
            alert=lambda run_id, m: self.listener.alert(run_id, m),
        )

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, config_path: Path, config: Config) -> Run:
        """Register a new run; refuses (before anything is spent) when Kaggle data has no key."""
        if config.data.source == "kaggle":
            kaggle_credentials()
        run_id = f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        run = Run(
            run_id=run_id,
            provider=config.instance.provider,
            config_path=str(config_path.resolve()),
            created_at=time.time(),
            epochs=config.training.epochs,
        )
        freeze(run.run_id, config)
        self.registry.save(run)
        self.listener.run_changed(run)
        return run

    def config_of(self, run: Run) -> Config:
        """The run's config as frozen at launch: editing configs/*.yaml changes new runs only.

        A run from before snapshots existed is frozen from its file on first use.
        """
        config = self._configs.get(run.run_id)
        if config is None:
            snapshot = paths.run_config_file(run.run_id)
            if not snapshot.exists():
                freeze(run.run_id, load_config(run.config_path))
            config = self._configs[run.run_id] = load_config(snapshot)
        return config

    def results_dir(self, run: Run) -> Path:
        config = self.config_of(run)
        return Path(config.output.dir).expanduser() / run.run_id

    def provider_of(self, run: Run) -> Provider:
        """The run's provider, in the region it was placed in: its recorded region wins."""
        instance = self.config_of(run).instance
        return self.provider_for_config(instance.in_region(run.region) if run.region else instance)

    def provider_for_config(self, config: InstanceConfig) -> Provider:
        """One provider per distinct instance config, kept (boto3 clients are not free)."""
        key = config.model_dump_json()
        if key not in self._providers:
            self._providers[key] = provider_for(config)
        return self._providers[key]

    async def statuses(self, runs: list[Run], now: float | None = None) -> list[RunStatus]:
        """Table rows (state, uptime, price, cost by part, budget) for these runs; a pure read.

        Prices come from the provider's history, cached per zone and type (`PriceCache`).
        """
        now = time.time() if now is None else now
        rows = []
        for run in runs:
            try:
                limits: InstanceConfig | None = self.config_of(run).instance
            except PaceridError:  # a pre-snapshot run whose file is gone: its terms unknown
                limits = None
            history: list[PricePoint] = []
            if run.instance is not None and limits is not None:
                history = await self.prices.history(self.provider_of(run), run.instance, now)
            rows.append(
                status_row(
                    run,
                    history,
                    now,
                    volume_gb=(limits.root_volume_gb or 0) if limits else 0,
                    include_egress=limits.budget_includes_egress if limits else False,
                    budget_usd=limits.budget_usd if limits else None,
                    stops=stopped_stretches(self.results_dir(run), run.instance, now)
                    if run.instance is not None
                    else (),
                )
            )
        return rows

    def update(self, run: Run, **changes: object) -> Run:
        """Change a run in the registry and tell the listener."""
        updated = self.registry.update(run.run_id, **changes)
        self.listener.run_changed(updated)
        return updated

    def _say(self, run: Run, message: str) -> None:
        self.listener.report(run.run_id, message)

    # -- launch and terminate -------------------------------------------------------------------
    async def launch(self, run: Run) -> Run:
        """Start the run's instance (a no-op when it already has a live one); with
        `instance.regions`, where the ranking says, and why is recorded (placement.py)."""
        config = self.config_of(run)
        if config.data.source == "kaggle":
            kaggle_credentials()  # refuse before spending anything
        if run.instance and run.instance.state.is_alive:
            self._say(run, f"{run.instance.instance_id} is already {run.instance.state.value}.")
            return run
        say = functools.partial(self._say, run)
        ranker = self.provider_for_config(config.instance)
        choice = await asyncio.to_thread(placement_rank.choose, ranker, config)
        if choice is None:
            provider = self.provider_of(run)
            await asyncio.to_thread(preflight, config, provider)  # quota, network…: before writes
            spec = placement.spec_for(config, run.run_id)
            start = functools.partial(provider.launch, spec, say)
        else:
            say(f"{choice.basis} First: {choice.ranked[0].reason}.")
            start = functools.partial(
                placement.launch_placed,
                config,
                choice,
                run.run_id,
                lambda region: self.provider_of(self.update(run, region=region)),
                say,
            )

        async def launch_and_record() -> Run:
            instance = await asyncio.to_thread(start)
            why = choice.reason_at(instance.region, instance.zone) if choice else None
            return self.update(run, instance=instance, placement=why)

        # Shielded: a cancelled caller must never leave a launched instance unrecorded.
        launching = self._launching[run.run_id] = asyncio.ensure_future(launch_and_record())
        launching.add_done_callback(lambda _done: self._launching.pop(run.run_id, None))
        try:
            run = await asyncio.shield(launching)
        except Exception:
            self._forget_unlaunched(run)
            raise
        return host_steps.record_done(self, run, "launch")

    def _forget_unlaunched(self, run: Run) -> None:
        """A first launch that failed leaves no "not launched" run behind (a recovery's does:
        the run has a history)."""
        current = self.registry.get(run.run_id)
        if current.instance is None and not current.previous_instances:
            self.registry.remove(run.run_id)
            self._configs.pop(run.run_id, None)
            shutil.rmtree(paths.run_config_file(run.run_id).parent, ignore_errors=True)

    async def terminate(self, run: Run) -> Run:
        """End the run's instance; idempotent. The run stays listed, marked terminated. A launch
        under way (a recovery cancelled by this terminate) is waited for, so that what it
        starts is what ends, never left running unseen."""
        launching = self._launching.get(run.run_id)
        if launching is not None:
            self._say(run, "Waiting for the launch under way, to terminate what it starts…")
            await asyncio.wait([launching])  # its own failure is the launch's to report
        run = self.registry.get(run.run_id)
        if run.instance is None:
            self._say(run, "This run never had an instance.")
            return run
        self.connections.drop(run)
        provider = self.provider_of(run)
        instance = await asyncio.to_thread(
            provider.terminate, run.instance.instance_id, lambda m: self._say(run, m)
        )
        ssh.forget(instance.instance_id, paths.known_hosts_file())
        return self.update(run, instance=instance)

    async def refresh(self, runs: list[Run]) -> list[Run]:
        """Ask each provider, once for all its live runs, how their instances are."""
        by_provider: dict[int, list[Run]] = {}  # one provider per config and region
        for run in runs:
            if run.instance and run.instance.state.is_alive:
                by_provider.setdefault(id(self.provider_of(run)), []).append(run)
        updated = {run.run_id: run for run in runs}
        for group in by_provider.values():
            provider = self.provider_of(group[0])
            ids = [run.instance.instance_id for run in group if run.instance]
            found = await asyncio.to_thread(provider.describe, ids)
            for run in group:
                assert run.instance is not None
                now = found.get(run.instance.instance_id)
                if now is None:
                    now = replace(
                        run.instance,
                        state=InstanceState.UNKNOWN,
                        state_reason="no longer known to the provider",
                    )
                elif run.instance.launched_at is not None:
                    # A restart (stop mode) moves EC2's LaunchTime; the cost counts from the
                    # first launch (stopped stretches: reconcile.stopped_stretches).
                    now = replace(now, launched_at=run.instance.launched_at)
                current = self.registry.get(run.run_id)
                if current.instance != run.instance:  # recorded while we asked (a budget
                    updated[run.run_id] = current  # stop's reason): the newer record wins
                elif now != run.instance:
                    updated[run.run_id] = self.update(run, instance=now)
        return [updated[run.run_id] for run in runs]

    # -- connections (connections.py) ------------------------------------------------------------
    async def connection(self, run: Run) -> asyncssh.SSHClientConnection:
        return await self.connections.connection(run)

    def live_instance(self, run: Run) -> Instance:
        return self.connections.live_instance(run)

    async def ssh_target(self, run: Run, instance: Instance) -> ssh.Target:
        return await self.connections.ssh_target(run, instance)

    def close(self) -> None:
        self.connections.close()

    # -- the steps on the host (host_steps.py does them; here for every caller) ------------------
    async def upload(self, run: Run) -> sync.SyncStats:
        return await host_steps.upload(self, run)

    async def setup(self, run: Run) -> None:
        await host_steps.setup(self, run)

    async def data(self, run: Run) -> None:
        await host_steps.data(self, run)

    async def training_state(self, run: Run) -> TrainingState:
        return await host_steps.training_state(self, run)

    async def train(self, run: Run, resume: str = "auto") -> None:
        await host_steps.train(self, run, resume)

    async def download(self, run: Run, *, checkpoints: bool = True) -> sync.SyncStats:
        return await host_steps.download(self, run, checkpoints=checkpoints)


def freeze(run_id: str, config: Config) -> None:
    """Store the run's resolved config with the run, once (atomic: never half a file)."""
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    atomic.write_text(paths.run_config_file(run_id), text)
