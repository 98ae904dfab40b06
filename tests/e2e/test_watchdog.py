"""The host's dead-man switch on the local provider: with no controller left, the host stops.

The power-off tests ask for `interruption: relaunch`, whose hosts power off (and so end); in
stop mode, the default, the watchdog cancels its request and terminates itself instead
(tests/e2e/test_stop_mode.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pacerid_tui.core.kernel.models import InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise.supervisor import Supervisor
from tests.conftest import TakeRun
from tests.e2e.test_cli_local import tiny_config


@pytest.fixture(autouse=True)
def fast_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACERID_WATCHDOG_POLL_S", "0.3")  # reaches the host: PACERID_* pass


def config_with(tmp_path: Path, **instance: Any) -> Path:
    path = tiny_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["instance"].update(instance)
    path.write_text(yaml.safe_dump(raw))
    return path


async def wait_until_stopped(lifecycle: Lifecycle, run: Run, timeout: float) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [run] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
        if run.instance and run.instance.state == InstanceState.TERMINATED:
            return run
        time.sleep(0.3)
    raise AssertionError("the watchdog never powered the host off")


def poweroff_reason(run: Run) -> str:
    assert run.instance and run.instance.key_path
    workspace = Path(run.instance.key_path).parent / "workspace"
    return (workspace / "pacerid" / run.run_id / "output" / "poweroff.json").read_text()


async def test_max_runtime_powers_off(tmp_path: Path, take_run: TakeRun) -> None:
    """The watchdog's own bound. The boot switch holds max runtime from the first boot too
    (tests/e2e/test_boot_switch.py), so a bound shorter than a slow setup would end the host
    mid-setup: the run asks for a minute, and once the watchdog has taken over, its settings
    (which it reads again every poll) say one second."""
    lifecycle, run = await take_run(
        config_with(tmp_path, max_runtime_minutes=1, interruption="relaunch"), to="setup"
    )
    assert run.instance and run.instance.key_path
    host_run = Path(run.instance.key_path).parent / "workspace" / "pacerid" / run.run_id
    settings = json.loads((host_run / "watchdog.json").read_text())
    assert settings["max_runtime_s"] == 60
    (host_run / "watchdog.json").write_text(json.dumps({**settings, "max_runtime_s": 1}))
    lifecycle.close()  # the controller is gone
    run = await wait_until_stopped(lifecycle, run, timeout=30)
    assert run.instance is not None
    assert "powered off" in (run.instance.state_reason or "")
    assert "max runtime" in poweroff_reason(run)


async def test_the_host_side_budget_bound_powers_off(tmp_path: Path, take_run: TakeRun) -> None:
    # Upper bound: $0.30/h × elapsed ≥ $0.0005 after 6 s.
    lifecycle, run = await take_run(
        config_with(tmp_path, budget_usd=0.0005, max_price=0.30, interruption="relaunch"),
        to="setup",
    )
    lifecycle.close()
    run = await wait_until_stopped(lifecycle, run, timeout=40)
    assert "budget" in poweroff_reason(run)


async def test_idle_after_training_ends_powers_off(tmp_path: Path, take_run: TakeRun) -> None:
    lifecycle, run = await take_run(
        config_with(tmp_path, idle_terminate_minutes=0.25, interruption="relaunch")
    )
    await Supervisor(lifecycle, run.run_id).follow()  # heartbeats while it watches, to the end
    lifecycle.close()
    ended = time.monotonic()
    [alive] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
    assert alive.instance and alive.instance.state == InstanceState.RUNNING
    run = await wait_until_stopped(lifecycle, run, timeout=60)
    assert time.monotonic() - ended >= 5  # not before the idle limit (15 s after training end)
    assert "no controller heartbeat" in poweroff_reason(run)
