"""The boot-time dead-man switch on the local provider, which runs the same first-boot script
EC2 would (core/kernel/boot_switch.py): a host whose setup failed and whose controller is gone
ends itself.
In relaunch mode that power-off terminates; in stop mode (the default) it stops, and the next
reconciliation terminates it (tests/e2e/test_stop_mode.py), so the first test asks for relaunch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.models import InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from tests.conftest import TakeRun
from tests.e2e.test_stop_supervised import until
from tests.e2e.test_watchdog import config_with, wait_until_stopped
from tests.host.images import BASE


def boot_dir(run: Run) -> Path:
    assert run.instance and run.instance.key_path
    return Path(run.instance.key_path).parent / "boot"


async def test_a_failed_setup_with_no_controller_powers_off_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACERID_PYTHON", str(BASE))  # the host's Python has no torch
    path = config_with(tmp_path, boot_grace_minutes=0.2, interruption="relaunch")
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    # Armed at first boot, before any SSH step: the local server runs the user data once it
    # listens, so under load the launch may return a moment before the switch is armed.
    await until("the switch to arm", (boot_dir(run) / "armed").exists, timeout=30)
    with pytest.raises(HostError, match="setup step failed"):
        await lifecycle.setup(run)
    lifecycle.close()  # the controller is gone
    run = await wait_until_stopped(lifecycle, run, timeout=90)  # grace 12 s: generous
    assert run.instance is not None and "powered off" in (run.instance.state_reason or "")
    assert "no watchdog and no controller" in (boot_dir(run) / "poweroff").read_text()


async def test_the_watchdog_disarms_the_switch_and_the_host_stays(
    tmp_path: Path, take_run: TakeRun
) -> None:
    path = config_with(tmp_path, boot_grace_minutes=0.5)
    lifecycle, run = await take_run(path, to="setup")  # setup starts the watchdog
    lifecycle.close()
    log = boot_dir(run) / "switch.log"
    deadline = time.monotonic() + 60
    while "disarmed" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the switch never stood down"
        await asyncio.sleep(0.2)
    assert "watchdog" in (boot_dir(run) / "disarmed").read_text()
    [run] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
    assert run.instance and run.instance.state == InstanceState.RUNNING
    assert not (boot_dir(run) / "poweroff").exists()
