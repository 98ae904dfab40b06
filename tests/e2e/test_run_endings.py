"""How a run ends decides what `all` does with it, on the local provider (whose instances end
with EC2's StateReason codes: a power-off inside is Client.InstanceInitiatedShutdown). The
watchdog's power-off is relaunch mode's ending, asked for explicitly (stop mode's host ends
itself through the API: tests/e2e/test_stop_mode.py)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.models import InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.core.supervise.supervisor import Supervisor
from tests.conftest import TakeRun
from tests.e2e.test_cli_local import cli
from tests.e2e.test_watchdog import config_with


def host_folder(run: Run) -> Path:
    assert run.instance and run.instance.key_path
    return Path(run.instance.key_path).parent


async def test_laptop_slept_the_watchdog_ended_the_run_and_all_does_not_relaunch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, take_run: TakeRun
) -> None:
    monkeypatch.setenv("PACERID_WATCHDOG_POLL_S", "0.3")  # reaches the host: PACERID_* pass
    path = config_with(tmp_path, idle_terminate_minutes=0.1, interruption="relaunch")
    lifecycle, run = await take_run(path)
    assert await Supervisor(lifecycle, run.run_id).follow() == "done"
    lifecycle.close()  # the laptop sleeps: no controller, no heartbeat, the registry untouched
    assert run.instance is not None
    provider = lifecycle.provider_of(run)
    deadline = time.monotonic() + 60
    while provider.describe([run.instance.instance_id])[run.instance.instance_id].state.is_alive:
        assert time.monotonic() < deadline, "the idle watchdog never powered the host off"
        time.sleep(0.3)
    assert Registry(paths.registry_file()).get(run.run_id).instance.state.value == "running"

    results = tmp_path / "results" / run.run_id  # what the follow saved as epochs finished
    saved = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    woke = cli("all", "--run", run.run_id)  # trained to the end: exit 0
    assert f"{run.run_id} ended after epoch 2 of 2" in woke.stderr
    assert "powered off" in woke.stderr and "Traceback" not in woke.stderr
    after = Registry(paths.registry_file()).get(run.run_id)
    assert after.previous_instances == [] and after.interruptions == []
    assert after.instance is not None and after.instance.instance_id == run.instance.instance_id
    assert after.instance.state_code == "Client.InstanceInitiatedShutdown"  # recorded, kept
    assert provider.find_managed() == []  # nothing launched
    assert {p.name: p.stat().st_mtime_ns for p in results.iterdir()} == saved  # nothing new
    assert after.ended is not None and after.ended.endswith("No relaunch.")  # kept with the run

    again = cli("logs", "--follow", "--run", run.run_id)  # a plain follow: the same verdict
    assert f"pacerid-tui: {after.ended}" in again.stderr and "(recorded earlier)" in again.stderr
    [row] = json.loads(cli("status", "--json").stdout)
    assert row["ended"] == after.ended


async def test_an_instance_gone_without_a_reason_is_not_relaunched_unasked(
    tmp_path: Path,
) -> None:
    path = config_with(tmp_path)
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    provider = lifecycle.provider_of(run)
    assert run.instance is not None
    provider.terminate(run.instance.instance_id)
    shutil.rmtree(host_folder(run))  # vanished: the provider knows nothing of it any more
    assert provider.describe([run.instance.instance_id]) == {}

    done = cli("all", "--run", run.run_id, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"all --run {run.run_id} --recover" in done.stderr
    after = Registry(paths.registry_file()).get(run.run_id)
    assert after.instance is not None and after.instance.state == InstanceState.UNKNOWN
    assert after.previous_instances == [] and provider.find_managed() == []


async def test_a_replacement_host_gets_the_budget_left_and_the_spend_so_far(
    tmp_path: Path,
) -> None:
    """What `recovery.recover` records before it sets up the replacement (the earlier
    instances' cost in `run.cost_usd`) is what the new host's watchdog.json says."""
    path = config_with(tmp_path, budget_usd=1.0)
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    run = lifecycle.registry.update(run.run_id, cost_usd=0.4)
    await lifecycle.setup(run)
    lifecycle.close()
    workspace = host_folder(run) / "workspace" / "pacerid" / run.run_id
    settings = json.loads((workspace / "watchdog.json").read_text())
    assert settings["spent_usd"] == 0.4
    assert settings["budget_usd"] == pytest.approx(0.6)
