"""The local provider's spot request follows EC2's documented state machine (the page each rule
comes from is named in its test): what the fault matrix (tests/faults/) and the stop-mode tests
stand on. A stopped instance's billing (volume only; running: compute, volume and public IPv4)
is tests/core/test_cost_stopped.py's."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.errors import ProviderError
from pacerid_tui.core.kernel.models import InstanceSpec, InstanceState


def launched(run_id: str) -> tuple[LocalProvider, str, str]:
    provider = LocalProvider()
    instance = provider.launch(InstanceSpec(run_id=run_id, provider="local", interruption="stop"))
    assert instance.spot_request_id is not None
    return provider, instance.instance_id, instance.spot_request_id


def state(provider: LocalProvider, request_id: str) -> tuple[str, str]:
    found = provider.spot_request_state(request_id)
    assert found is not None
    return found[0], found[2]


def until(check: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_an_interruption_disables_the_request_and_capacity_starts_it_again(
    isolated: Path,
) -> None:
    """EC2 User Guide, "State changes for a Spot request" (instance-stopped-no-capacity:
    disabled, stopped) and "Interruption behaviors" (stop: the Spot service starts it again when
    capacity returns); "Work with instance user data": user data runs at the first boot only."""
    provider, instance_id, request_id = launched("run-a")
    assert state(provider, request_id) == ("active", "fulfilled")
    sem = provider.root / instance_id / "cloud" / "instance" / "sem" / "config_scripts_user"
    until(sem.exists)
    first = sem.read_text()
    stopped = provider.interrupt(instance_id)
    assert stopped.state is InstanceState.STOPPED
    assert stopped.state_code == "Server.SpotInstanceShutdown"
    assert state(provider, request_id) == ("disabled", "instance-stopped-no-capacity")
    assert provider.capacity_returns(instance_id).state is InstanceState.RUNNING
    assert state(provider, request_id) == ("active", "fulfilled")
    assert sem.read_text() == first  # the user data did not run again


def test_a_shutdown_from_inside_disables_the_request_for_good(isolated: Path) -> None:
    """User Guide, "State changes for a Spot request": instance-stopped-by-user (a shutdown from
    the instance) leaves the request disabled and the instance stopped; nothing starts it."""
    provider, instance_id, request_id = launched("run-b")
    server = json.loads((provider.root / instance_id / "server.json").read_text())
    os.kill(int(server["pid"]), signal.SIGTERM)  # what the switch's power-off does
    until(lambda: provider.describe([instance_id])[instance_id].state is InstanceState.STOPPED)
    assert state(provider, request_id) == ("disabled", "instance-stopped-by-user")
    with pytest.raises(ProviderError, match="not waiting for capacity"):
        provider.capacity_returns(instance_id)
    assert [i.instance_id for i in provider.find_managed()] == [instance_id]  # no relaunch


def test_terminating_a_stopped_instance_of_a_disabled_request_launches_another(
    isolated: Path,
) -> None:
    """User Guide, "State changes for a Spot request", persistent requests: when its instance
    is terminated, by you or by EC2, the request returns to pending evaluation and EC2 launches
    a new instance."""
    provider, instance_id, request_id = launched("run-c")
    provider.interrupt(instance_id)
    provider.terminate_instance(instance_id)
    [fresh] = provider.find_managed()
    assert fresh.instance_id != instance_id and fresh.spot_request_id == request_id
    assert state(provider, request_id) == ("active", "fulfilled")


def test_cancelling_leaves_the_stopped_instance_stopped(isolated: Path) -> None:
    """User Guide, "Cancel a Spot Instance request": cancelling does not terminate the
    instance. A stopped one stays stopped (its volume billing) and is never started again: the
    controller's reconcile terminates it (core/supervise/reconcile.py)."""
    provider, instance_id, request_id = launched("run-d")
    provider.interrupt(instance_id)
    assert provider.cancel_request(request_id)
    assert state(provider, request_id)[0] == "cancelled"
    assert provider.describe([instance_id])[instance_id].state is InstanceState.STOPPED
    with pytest.raises(ProviderError, match="not waiting for capacity"):
        provider.capacity_returns(instance_id)


def test_a_request_past_its_valid_until_is_closed_and_its_instance_keeps_running(
    isolated: Path,
) -> None:
    """API reference, SpotMarketOptions (ValidUntil): a persistent request stays active until
    then. Past it the request ends; its instance is not ended with it, and an interrupted one
    is never started again."""
    provider, instance_id, request_id = launched("run-e")
    path = provider.root / instance_id / "request.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "valid_until": time.time() - 1}))
    assert state(provider, request_id)[0] == "closed"
    assert provider.describe([instance_id])[instance_id].state is InstanceState.RUNNING
    provider.interrupt(instance_id)
    with pytest.raises(ProviderError, match="not waiting for capacity"):
        provider.capacity_returns(instance_id)


def test_a_reboot_is_a_new_boot_on_the_same_disk(isolated: Path) -> None:
    """User Guide, "Reboot your instance": like an operating system reboot; the instance keeps
    its disk, and its request is unchanged. The user data does not run again."""
    provider, instance_id, request_id = launched("run-f")
    folder = provider.root / instance_id
    until((folder / "cloud" / "instance" / "sem" / "config_scripts_user").exists)
    (folder / "workspace" / "kept").write_text("on the disk")
    before = json.loads((folder / "server.json").read_text())["pid"]
    assert provider.reboot(instance_id).state is InstanceState.RUNNING
    assert json.loads((folder / "server.json").read_text())["pid"] != before
    assert (folder / "workspace" / "kept").read_text() == "on the disk"
    assert state(provider, request_id) == ("active", "fulfilled")
