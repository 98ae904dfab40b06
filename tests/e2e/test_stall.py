"""A stalled run caught (issue 26, item 3), on the local provider: a trainer made to hang after
epoch 1, or to go NaN, by the test hook trainer/fault_hooks.py (PACERID_TEST_FAULT, which
reaches the local host as every PACERID_* variable does). The host's watchdog finds it
(trainer/stall.py) and writes a `stall` event; the supervisor tells it and, with
`instance.on_stall: stop`, saves and terminates the run as a budget stop does; with no
controller the host ends itself."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pacerid_tui.core.kernel.models import InstanceState, MetricEvent
from pacerid_tui.core.supervise.supervisor import Supervisor
from tests import nvidia_smi
from tests.conftest import TakeRun
from tests.e2e.test_cli_local import tiny_config
from tests.e2e.test_watchdog import poweroff_reason, wait_until_stopped
from tests.heard import Heard

STALL_MINUTES = 0.1
"""Six seconds without a step is a stall in these tests."""
POLL_S = 0.3
LATE_S = 5.0
"""How much later than the limit a loaded 2-core machine may write the event (a poll, the
watchdog's reads, the machine's load)."""


@pytest.fixture(autouse=True)
def fast_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACERID_WATCHDOG_POLL_S", str(POLL_S))


def stall_config(tmp_path: Path, on_stall: str, **instance: Any) -> Path:
    """tiny_config with a 6 s stall limit and three epochs (the fault: PACERID_TEST_FAULT)."""
    path = tiny_config(tmp_path, epochs=3, on_stall=on_stall, **instance)
    raw = yaml.safe_load(path.read_text())
    raw["training"]["stall_minutes"] = STALL_MINUTES
    path.write_text(yaml.safe_dump(raw))
    return path


def host_output(run_id: str, key_path: str | None) -> Path:
    assert key_path
    return Path(key_path).parent / "workspace" / "pacerid" / run_id / "output"


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def progress_before_stall(found: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the last progress event before the stall, the stall event)."""
    at = next(i for i, e in enumerate(found) if e["event"] == "stall")
    last = [e for e in found[:at] if e["event"] in ("start", "step", "epoch")][-1]
    return last, found[at]


async def test_a_hung_loader_is_told_once_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, take_run: TakeRun
) -> None:
    monkeypatch.setenv("PACERID_TEST_FAULT", "hang@1")
    told = Heard()
    lifecycle, run = await take_run(stall_config(tmp_path, "notify"), listener=told)
    stop = asyncio.Event()
    supervisor = Supervisor(lifecycle, run.run_id)
    following = asyncio.create_task(supervisor.follow(stop=stop))
    deadline = time.monotonic() + 180
    while not told.endings:
        assert time.monotonic() < deadline and not following.done(), "no stall was told"
        await asyncio.sleep(0.2)
    await asyncio.sleep(3 * POLL_S)  # time for a second event, which must not come
    stop.set()
    assert await following == "cancelled"

    [notice] = told.endings
    assert notice.state == "stalled" and notice.key.startswith("stall@")
    assert "no training step for" in notice.text and "still running" in notice.text
    assert any("stalled: no training step" in a for a in told.alerts)
    found = events(
        host_output(run.run_id, run.instance and run.instance.key_path) / "metrics.jsonl"
    )
    assert [e["event"] for e in found].count("stall") == 1
    last, stall = progress_before_stall(found)
    assert last["epoch"] == 1  # hung after epoch 1
    assert STALL_MINUTES * 60 <= stall["time"] - last["time"] <= STALL_MINUTES * 60 + LATE_S
    assert stall["action"] == "notify"
    [now] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
    assert now.instance is not None and now.instance.state is InstanceState.RUNNING


async def test_an_idle_gpu_while_the_trainer_lives_is_a_stall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, take_run: TakeRun
) -> None:
    """Steps keep coming, but every host sample (a stand-in nvidia-smi on the host's PATH,
    tests/nvidia_smi.py) says the GPU is idle: after the limit, a stall."""
    bin_dir = nvidia_smi.install(tmp_path / "bin", nvidia_smi.IDLE_CSV)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")  # the host's too
    path = stall_config(tmp_path, "notify")
    raw = yaml.safe_load(path.read_text())
    raw["training"]["epochs"] = 20  # trains on past the limit
    raw["output"]["system_sample_s"] = 0.2
    path.write_text(yaml.safe_dump(raw))
    told = Heard()
    lifecycle, run = await take_run(path, listener=told)
    stop = asyncio.Event()
    following = asyncio.create_task(Supervisor(lifecycle, run.run_id).follow(stop=stop))
    deadline = time.monotonic() + 180
    while not told.endings:
        assert time.monotonic() < deadline and not following.done(), "no stall was told"
        await asyncio.sleep(0.2)
    stop.set()
    await following
    [notice] = told.endings
    assert notice.text.startswith("stalled: the GPU was below 5 % busy for 0.1 min")


@pytest.mark.parametrize("fault", ["hang@1", "nan@1"])
async def test_on_stall_stop_saves_downloads_and_terminates(
    fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, take_run: TakeRun
) -> None:
    monkeypatch.setenv("PACERID_TEST_FAULT", fault)
    told = Heard()
    lifecycle, run = await take_run(stall_config(tmp_path, "stop"), listener=told)
    supervisor = Supervisor(lifecycle, run.run_id)
    outcome = await asyncio.wait_for(supervisor.follow(), 300)

    assert outcome == "stalled"
    after = lifecycle.registry.get(run.run_id)
    assert after.instance is not None and after.instance.state is InstanceState.TERMINATED
    assert after.instance.state_reason == "training stalled"
    assert after.ended is not None and "because training stalled" in after.ended
    results = tmp_path / "results" / run.run_id
    assert (results / "checkpoint_latest.pt").exists()  # epoch 1's, at least: downloaded
    found = events(results / "metrics.jsonl")
    stall = next(e for e in found if e["event"] == "stall")
    assert stall["action"] == "stop"
    # NaN from epoch 2's first step; a watchdog slowed by the machine's load may see a later one
    expected = "the loss is nan at epoch" if fault.startswith("nan") else "no training step"
    assert stall["message"].startswith(expected)
    assert [n.state for n in told.endings] == ["stalled"]  # not "interrupted" as well
    assert "saving, then terminating" in told.endings[0].text
    assert lifecycle.provider_of(after).find_managed() == []


async def test_with_no_controller_the_host_ends_a_stalled_run_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, take_run: TakeRun
) -> None:
    """The laptop is closed: no follow, no heartbeat. The watchdog writes the stall, gives the
    trainer its save window, and ends the run as its budget bound would."""
    monkeypatch.setenv("PACERID_TEST_FAULT", "hang@1")
    path = stall_config(tmp_path, "stop", interruption="relaunch")
    lifecycle, run = await take_run(path)
    lifecycle.close()
    run = await wait_until_stopped(lifecycle, run, timeout=240)
    assert "training stalled (no training step for" in poweroff_reason(run)
    output = host_output(run.run_id, run.instance and run.instance.key_path)
    settings = json.loads((output.parent / "watchdog.json").read_text())  # from the controller
    assert settings["stall_s"] == STALL_MINUTES * 60 and settings["on_stall"] == "stop"
    stall = next(e for e in events(output / "metrics.jsonl") if e["event"] == "stall")
    assert stall["action"] == "stop"
    assert (output / "checkpoint_latest.pt").exists()
    assert MetricEvent.from_dict(stall).message == stall["message"]
