"""Stop mode with a controller: the supervisor waits for the same instance to start again, both
when it runs as the interruption comes and when it starts while the instance is already stopped.

EC2's rules (user guide, "Interruption behaviors" and "State changes for a Spot request"): with
interruption behaviour `stop`, the instance is stopped with state reason
`Server.SpotInstanceShutdown`, its persistent request goes back to `open`, and EC2 starts that
same instance again when capacity returns. The local provider simulates them (`interrupt`,
`capacity_returns`); the host's boot service resumes training by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.models import InstanceState, MetricEvent
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.core.supervise.supervisor import Supervisor
from tests.conftest import TakeRun
from tests.e2e.test_stop_mode import epochs_in, longer_epochs, read_json
from tests.e2e.test_watchdog import config_with
from tests.metadata_standin import MetadataService


class SpotMarket(Listener):
    """Gives the spot notice once epoch 1 is done; records what the supervisor says."""

    def __init__(self, imds: MetadataService) -> None:
        self.metadata = imds
        self.said: list[str] = []
        self.notice_heard = False

    def metric(self, run_id: str, event: MetricEvent) -> None:
        if event.event == "epoch" and event.epoch == 1 and not self.notice_heard:
            self.metadata.marked.set()
        if event.event == "interrupted" and not self.notice_heard:
            self.notice_heard = True
            self.metadata.marked.clear()

    def report(self, run_id: str, message: str) -> None:
        self.said.append(message)

    alert = report


async def until(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return found


async def test_a_supervised_run_waits_for_its_stopped_instance_and_follows_on(
    tmp_path: Path, metadata: MetadataService
) -> None:
    path = config_with(tmp_path, interruption="stop")
    market = SpotMarket(metadata)
    lifecycle = Lifecycle(listener=market)
    run = lifecycle.create_run(path, load_config(path))
    supervisor = Supervisor(lifecycle, run.run_id)
    supervisor.stopped_poll_s = 0.5
    controller = asyncio.create_task(supervisor.run_all())

    await until("the spot notice to be heard", lambda: market.notice_heard)
    instance = lifecycle.registry.get(run.run_id).instance
    assert instance is not None and instance.spot_request_id
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider)
    output = provider.root / instance.instance_id / "workspace" / "pacerid" / run.run_id / "output"
    await until(
        "the checkpoint", lambda: read_json(output / "status.json").get("phase") == "interrupted"
    )
    stopped = await asyncio.to_thread(provider.interrupt, instance.instance_id)
    assert stopped.state is InstanceState.STOPPED

    waiting = "no second instance is launched"
    await until("the supervisor to wait", lambda: any(waiting in m for m in market.said))
    assert not controller.done()  # no replacement, no end: it waits
    assert [i.instance_id for i in provider.find_managed()] == [instance.instance_id]
    await asyncio.to_thread(provider.capacity_returns, instance.instance_id)
    run = await asyncio.wait_for(controller, 240)

    assert run.instance is not None and run.instance.instance_id == instance.instance_id
    assert run.previous_instances == [] and run.interruptions == []
    assert any("started again; following on" in m for m in market.said), market.said
    assert epochs_in(lifecycle.results_dir(run) / "metrics.jsonl") == [1, 2]  # each once
    assert read_json(lifecycle.results_dir(run) / "status.json").get("phase") == "done"
    assert [i.instance_id for i in provider.find_managed()] == [instance.instance_id]
    await lifecycle.terminate(run)
    lifecycle.close()
    assert provider.find_managed() == []


class Said(Listener):
    """What a controller says (report and alert); it gives no notices."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def report(self, run_id: str, message: str) -> None:
        self.said.append(message)

    alert = report


async def test_a_controller_started_while_the_instance_is_stopped_waits_and_follows_on(
    tmp_path: Path, metadata: MetadataService, take_run: TakeRun
) -> None:
    """The laptop was closed: the run was interrupted and its instance stopped while no
    controller ran. `logs --follow` (Supervisor.follow) then starts, finds it stopped, waits;
    capacity returns, the boot service resumes training, and the follow ends with it done."""
    path = config_with(tmp_path)  # the default: stop mode
    longer_epochs(path)
    away, run = await take_run(path)
    away.close()  # the laptop closes: no controller from here on
    provider = away.provider_of(run)
    assert isinstance(provider, LocalProvider) and run.instance is not None
    instance_id = run.instance.instance_id
    assert run.instance.spot_request_id  # stop mode without asking for it
    output = provider.root / instance_id / "workspace" / "pacerid" / run.run_id / "output"
    await until("epoch 1", lambda: 1 in epochs_in(output / "metrics.jsonl"))
    metadata.marked.set()  # AWS gives the two-minute notice
    await until(
        "the checkpoint", lambda: read_json(output / "status.json").get("phase") == "interrupted"
    )
    stopped = await asyncio.to_thread(provider.interrupt, instance_id)
    metadata.marked.clear()
    assert stopped.state is InstanceState.STOPPED

    heard = Said()
    lifecycle = Lifecycle(listener=heard)
    supervisor = Supervisor(lifecycle, run.run_id)
    supervisor.stopped_poll_s = 0.5
    following = asyncio.create_task(supervisor.follow())
    waiting = "no second instance is launched"
    await until("the controller to wait", lambda: any(waiting in line for line in heard.said))
    assert any(f"{instance_id} was stopped by AWS" in line for line in heard.said), heard.said
    await asyncio.sleep(1.5)  # three more polls: still waiting, nothing launched
    assert not following.done()
    assert [i.instance_id for i in provider.find_managed()] == [instance_id]
    assert epochs_in(output / "metrics.jsonl") == [1]  # nothing trains while stopped

    await asyncio.to_thread(provider.capacity_returns, instance_id)
    assert await asyncio.wait_for(following, 240) == "done"
    assert any(f"{instance_id} started again; following on" in line for line in heard.said)
    assert epochs_in(output / "metrics.jsonl") == [1, 2]  # resumed by itself, each epoch once
    assert read_json(output / "status.json").get("phase") == "done"
    after = lifecycle.registry.get(run.run_id)
    assert after.instance is not None and after.instance.instance_id == instance_id
    assert after.previous_instances == [] and after.interruptions == []
    assert [i.instance_id for i in provider.find_managed()] == [instance_id]  # one throughout
    await lifecycle.terminate(after)
    lifecycle.close()
    assert provider.find_managed() == []
