"""The boot-time dead-man switch on the local provider, which runs the same user data EC2 would
(core/kernel/boot_switch.py) and, like cloud-init, its per-boot scripts at every boot, the start
after a stop included (local_server.py): a host whose setup failed and whose controller is gone
ends itself. In relaunch mode that power-off terminates; in stop mode (the default) it stops, and
the next reconciliation terminates it (tests/e2e/test_stop_mode.py), so the first test asks for
relaunch."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.models import InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from tests.conftest import REPO, TakeRun
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


def local_instance(lifecycle: Lifecycle, run: Run) -> tuple[LocalProvider, str]:
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider) and run.instance is not None
    return provider, run.instance.instance_id


def wait_for_state(provider: LocalProvider, instance_id: str, state: InstanceState) -> None:
    deadline = time.monotonic() + 60
    while provider.describe([instance_id])[instance_id].state is not state:
        assert time.monotonic() < deadline, f"{instance_id} never became {state.value}"
        time.sleep(0.2)


async def test_a_host_stopped_before_setup_is_guarded_again_when_it_starts(
    tmp_path: Path,
) -> None:
    """The issue's first reproduction. User data runs at an instance's first launch only; a
    stop-mode instance interrupted before setup (no watchdog, no boot unit yet) that EC2 starts
    again must still end itself: the switch runs at every boot from cloud-init's per-boot
    scripts, with a new grace. On 9bd3f51 its state was in /run and nothing re-armed it."""
    path = config_with(tmp_path, interruption="stop", boot_grace_minutes=0.1)
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    lifecycle.close()  # the controller is gone before upload
    provider, instance_id = local_instance(lifecycle, run)
    # The first boot's user data has run (the switch armed). A stop in the milliseconds between
    # cloud-init's once-per-instance marker and the user data's first lines would leave no
    # switch (cloud-init writes the marker first: helpers.py, Semaphores.lock). On EC2 a stop
    # comes two minutes after its notice, so that window is far-fetched; here an interrupt at
    # once after launch hit it, under load, 1 time in 10.
    deadline = time.monotonic() + 30
    while not (boot_dir(run) / "armed").exists():
        assert time.monotonic() < deadline, "the first boot never armed the switch"
        time.sleep(0.1)
    provider.interrupt(instance_id)  # AWS takes the capacity back before upload
    restarted = time.monotonic()
    assert provider.capacity_returns(instance_id).state is InstanceState.RUNNING
    wait_for_state(provider, instance_id, InstanceState.STOPPED)  # the grace is 6 s
    assert time.monotonic() - restarted >= 5  # a grace from this boot (whole seconds)
    assert "no watchdog and no controller for 6 s" in (boot_dir(run) / "poweroff").read_text()
    assert run.instance and run.instance.spot_request_id
    found = provider.spot_request_state(run.instance.spot_request_id)
    assert found is not None and found[0] == "disabled"  # stopped from inside: no restart


async def test_max_runtime_counts_running_time_only_across_a_stop(tmp_path: Path) -> None:
    """The switch owns max runtime (no `shutdown -h +N`, whose timer a stop loses): 9 s of
    running time, split by a 6 s stop that must not count."""
    path = config_with(
        tmp_path, interruption="stop", boot_grace_minutes=1, max_runtime_minutes=0.15
    )
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    lifecycle.close()
    provider, instance_id = local_instance(lifecycle, run)
    running = boot_dir(run) / "running_s"

    def ran() -> int:
        return int(running.read_text() or 0) if running.exists() else 0

    deadline = time.monotonic() + 30
    while ran() < 2:
        assert time.monotonic() < deadline, "the switch never counted running time"
        time.sleep(0.1)
    before_stop = ran()
    provider.interrupt(instance_id)
    time.sleep(6)  # stopped: no compute billed, none counted
    restarted = time.monotonic()
    provider.capacity_returns(instance_id)
    wait_for_state(provider, instance_id, InstanceState.STOPPED)
    # What was left of the 9 s when this boot started (less a poll lost at the stop and a
    # second of rounding); counting wall time since launch would have left at most 1 s.
    assert time.monotonic() - restarted >= 9 - before_stop - 2
    assert "max runtime of 9 s of running time reached" in (boot_dir(run) / "poweroff").read_text()
    assert ran() >= 9


async def test_an_upload_longer_than_the_grace_keeps_the_host(tmp_path: Path) -> None:
    """A dataset upload over a slow link (a relay at 200 kB/s) outlasts the 6 s boot grace:
    the controller's heartbeat during the step keeps the host (core/remote/heartbeat.py)."""
    dataset = tmp_path / "dataset"
    for index in range(8):
        folder = dataset / ("Train" if index % 2 else "Test") / "class_a"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"image_{index}.png").write_bytes(os.urandom(300_000))  # incompressible
    relay = f"{sys.executable} {REPO / 'tests' / 'proxy_relay.py'} --bytes-per-s 200000"
    path = config_with(
        tmp_path,
        interruption="relaunch",
        boot_grace_minutes=0.1,
        ssh_proxy_command=f"{relay} %p {tmp_path / 'relay.log'}",
    )
    raw = yaml.safe_load(path.read_text())
    raw["data"].update(source="local", local_dir=str(dataset))
    path.write_text(yaml.safe_dump(raw))
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    started = time.monotonic()
    await lifecycle.upload(run)
    assert time.monotonic() - started > 6  # the premise: longer than the grace
    lifecycle.close()
    [run] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
    assert run.instance and run.instance.state is InstanceState.RUNNING
    assert not (boot_dir(run) / "poweroff").exists()
    assert (boot_dir(run) / "heartbeat").stat().st_mtime >= time.time() - 6
