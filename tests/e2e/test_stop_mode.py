"""`instance.interruption: stop` on the local provider, which simulates EC2's rules for it (user
guide, "Spot Instance requests", "Interruption behaviors"): an interruption stops the host
(processes gone, disk kept), capacity returning boots it again, and terminating the instance of
an uncancelled persistent request launches a fresh one.

The story with no controller running: training starts, a spot notice comes after epoch 1, the
host stops, later starts again, and its boot service resumes training, which finishes with each
epoch once; then the host cancels its own request and terminates itself when idle.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.cloud.local_processes import processes_of
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.models import InstanceSpec, InstanceState, Run
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise.reconcile import away_from, reconcile
from tests.conftest import TakeRun
from tests.e2e.test_cli_local import cli
from tests.e2e.test_watchdog import config_with, fast_watchdog  # noqa: F401
from tests.metadata_standin import MetadataService


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def epochs_in(metrics: Path) -> list[int]:
    lines = metrics.read_text().splitlines() if metrics.exists() else []
    events = [json.loads(line) for line in lines if line.strip()]
    return [e["epoch"] for e in events if e.get("event") == "epoch"]


def longer_epochs(path: Path) -> None:
    """Epochs of a second or more: the notice sent after epoch 1 must land during epoch 2 (a
    quiet CI machine finished the tiny epoch 2 before the trainer's next 0.2 s poll)."""
    raw = yaml.safe_load(path.read_text())
    raw["data"]["image_size"] = 64
    raw["data"]["synthetic"]["train_per_class"] = 96
    path.write_text(yaml.safe_dump(raw))


async def test_an_interrupted_host_stops_resumes_by_itself_and_ends_itself(
    tmp_path: Path, metadata: MetadataService, take_run: TakeRun
) -> None:
    # The host ends itself a minute after training ends with nobody there: the command below
    # must reach it before that. With 30 s, a loaded CI machine once started it too late, and
    # the command waited for a host that had ended (tests/e2e/test_gone_host.py).
    path = config_with(tmp_path, interruption="stop", idle_terminate_minutes=1.0)
    longer_epochs(path)
    lifecycle, run = await take_run(path)
    started = lifecycle.registry.get(run.run_id).training_started_at or 0
    lifecycle.close()  # the laptop closes: nothing below talks to the host over SSH
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider) and run.instance is not None
    instance_id, request_id = run.instance.instance_id, run.instance.spot_request_id
    assert request_id is not None
    folder = provider.root / instance_id
    unit = (folder / "systemd" / "pacerid-resume.service").read_text()
    [exec_start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert shlex.split(exec_start)[1].endswith("code/trainer/boot_service.sh")
    assert "WantedBy=multi-user.target" in unit and "Type=oneshot" in unit
    assert (folder / "systemd" / "multi-user.target.wants" / "pacerid-resume.service").exists()
    output = folder / "workspace" / "pacerid" / run.run_id / "output"

    wait_for("epoch 1", lambda: 1 in epochs_in(output / "metrics.jsonl"))
    metadata.marked.set()  # AWS gives the two-minute notice
    wait_for(
        "the checkpoint", lambda: read_json(output / "status.json").get("phase") == "interrupted"
    )
    stopped = provider.interrupt(instance_id)
    metadata.marked.clear()
    assert stopped.state is InstanceState.STOPPED
    assert list(processes_of(instance_id)) == []
    assert (output / "checkpoint_latest.pt").exists()  # the disk survives a stop

    assert provider.capacity_returns(instance_id).state is InstanceState.RUNNING
    wait_for("training to finish", lambda: read_json(output / "status.json").get("phase") == "done")
    assert epochs_in(output / "metrics.jsonl") == [1, 2]  # each epoch once
    [boot] = [json.loads(line) for line in (output / "boots.jsonl").read_text().splitlines()]
    assert boot["phase"] == "interrupted" and boot["resumed"] is True

    # The laptop opens again: the next supervising command reconciles first, tells what
    # happened while away and downloads the results.
    # A few seconds here; bounded well inside pytest's timeout so that a stuck follow fails
    # with what it printed.
    following = functools.partial(cli, "logs", "--follow", "--run", run.run_id, timeout=120)
    said = (await asyncio.to_thread(following)).stderr
    [stop_line] = [line for line in said.splitlines() if line.startswith("While away: Inter")]
    assert "stopped" in stop_line and "training resumed" in stop_line
    assert "While away: 2 epoch(s) finished while away (1–2)." in said
    results = lifecycle.results_dir(run)
    assert epochs_in(results / "metrics.jsonl") == [1, 2]
    away = away_from(results, since=started)
    [interruption] = away.interruptions
    assert interruption.resumed and interruption.booted_at is not None
    assert 0 < away.stopped_s == interruption.booted_at - interruption.at
    assert away.epochs_gained == [1, 2] and away.cleaned_up is None

    def ended() -> bool:
        return provider.describe([instance_id])[instance_id].state is InstanceState.TERMINATED

    wait_for("the host to end itself when idle", ended, timeout=150)
    assert read_json(folder / "request.json")["state"] == "cancelled"  # before terminating
    assert provider.find_managed() == []  # nothing relaunched


def test_terminating_without_the_cancel_relaunches_and_terminate_does_not(
    isolated: Path,
) -> None:
    provider = LocalProvider()
    first = provider.launch(InstanceSpec(run_id="run-s", provider="local", interruption="stop"))
    assert first.spot_request_id
    provider.terminate_instance(first.instance_id)  # the broken path: no cancel first
    [fresh] = provider.find_managed()
    assert fresh.instance_id != first.instance_id and fresh.run_id == "run-s"
    assert fresh.spot_request_id == first.spot_request_id
    assert provider.terminate(fresh.instance_id).state is InstanceState.TERMINATED
    assert provider.find_managed() == []


async def test_on_demand_ignores_the_default_stop_mode(tmp_path: Path) -> None:
    """On-demand instances are never interrupted: no spot request, and a power-off ends them."""
    path = config_with(tmp_path, market="on-demand")
    config = load_config(path)
    assert config.instance.interruption == "stop"  # the default
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, config))
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider) and run.instance is not None
    assert run.instance.spot_request_id is None
    folder = provider.root / run.instance.instance_id
    assert read_json(folder / "launched.json")["shutdown"] == "terminate"
    assert not (folder / "request.json").exists()
    await lifecycle.terminate(run)
    lifecycle.close()
    assert provider.find_managed() == []


async def test_a_stopped_instance_whose_request_expired_is_terminated_on_return(
    tmp_path: Path,
) -> None:
    path = config_with(tmp_path, interruption="stop")
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider) and run.instance is not None
    provider.interrupt(run.instance.instance_id)  # stopped, its request open for capacity
    away = await reconcile(lifecycle, run, since=0)
    assert away.cleaned_up is None  # waiting for capacity is not left over
    assert provider.find_managed()[0].state is InstanceState.STOPPED

    request = provider.root / run.instance.instance_id / "request.json"
    request.write_text(json.dumps({**read_json(request), "valid_until": time.time() - 1}))
    done = await asyncio.to_thread(cli, "logs", "--follow", "--run", run.run_id, check=False)
    assert done.returncode == 1  # the next supervising command ends it
    assert "its spot request expired, so it was terminated" in done.stderr
    ended = lifecycle.registry.get(run.run_id).instance
    assert ended is not None and ended.state is InstanceState.TERMINATED
    assert read_json(request)["state"] == "cancelled" and provider.find_managed() == []


async def launched_idle_stop(tmp_path: Path) -> tuple[Lifecycle, Run, LocalProvider, Path]:
    """A launched local stop-mode run whose watchdog ends it 6 s after setup with no training;
    its provider and the instance's folder."""
    path = config_with(tmp_path, interruption="stop", idle_terminate_minutes=0.1)
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider) and run.instance is not None
    return lifecycle, run, provider, provider.root / run.instance.instance_id


async def test_a_failed_self_clean_up_stops_the_host_and_the_controller_finishes_it(
    tmp_path: Path,
) -> None:
    lifecycle, run, provider, folder = await launched_idle_stop(tmp_path)
    await lifecycle.setup(run)  # the watchdog ends the run after 6 s with no training
    lifecycle.close()
    # An administrator narrows the role meanwhile: EC2 refuses both calls from now on.
    (folder / "role.json").write_text(
        json.dumps({**read_json(folder / "role.json"), "actions": []})
    )

    def stopped() -> bool:
        instance = provider.describe([folder.name])[folder.name]
        return instance.state is InstanceState.STOPPED

    wait_for("the host to power itself off", stopped, timeout=60)
    log = (folder / "workspace" / "pacerid" / run.run_id / "output" / "watchdog.log").read_text()
    assert "UnauthorizedOperation" in log and "powering off, which stops this instance" in log
    assert [i.state for i in provider.find_managed()] == [InstanceState.STOPPED]  # no relaunch

    away = await reconcile(lifecycle, run, since=0)
    assert away.cleaned_up and "disabled" in away.cleaned_up
    assert read_json(folder / "request.json")["state"] == "cancelled"
    assert provider.find_managed() == []


def without_an_aws_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's PATH as a Deep Learning AMI gives a systemd unit: no `aws` program on it (the
    image ships awscli inside its Python env). PATH reaches the local host from here."""
    kept = [d for d in os.environ["PATH"].split(os.pathsep) if d and not Path(d, "aws").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))


async def test_a_finished_run_whose_host_has_no_aws_program_ends_terminated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's second reproduction: a finished stop-mode run, idle, on a host without the
    `aws` program must end terminated with its request cancelled, not stopped (a disabled request
    and a volume billing). The host calls EC2's Query API with boto3 in the run's Python,
    credentials from its instance metadata over IMDSv2 (local_imds.py, local_ec2.py)."""
    without_an_aws_program(monkeypatch)
    lifecycle, run, provider, folder = await launched_idle_stop(tmp_path)
    for program in folder.rglob("aws"):  # 9bd3f51's local provider gave the host one
        program.unlink()
    found = await ssh.run(await lifecycle.connection(run), "command -v aws", check=False)
    assert found.exit_status != 0, found.stdout
    await lifecycle.setup(run)
    await lifecycle.data(run)
    await lifecycle.train(run)
    output = folder / "workspace" / "pacerid" / run.run_id / "output"
    wait_for("training to finish", lambda: read_json(output / "status.json").get("phase") == "done")
    lifecycle.close()  # 6 s later the watchdog ends the run

    def ended() -> bool:
        return provider.describe([folder.name])[folder.name].state is InstanceState.TERMINATED

    wait_for("the host to end itself", ended, timeout=60)
    assert read_json(folder / "request.json")["state"] == "cancelled"
    assert provider.find_managed() == []  # nothing relaunched
    calls = [line for line in (folder / "server.log").read_text().splitlines() if "ec2:" in line]
    assert calls[-2:] == [
        f"ec2: CancelSpotInstanceRequests {run.instance.spot_request_id}",
        f"ec2: TerminateInstances {folder.name}",
    ]


@pytest.mark.parametrize(
    ("role", "why"),
    [
        (
            {"actions": ["ec2:CancelSpotInstanceRequests"]},
            "TerminateInstances failed "
            "(UnauthorizedOperation: You are not authorized to perform this operation)",
        ),
        (None, "CancelSpotInstanceRequests failed (Unable to locate credentials)"),
    ],
    ids=["a-narrower-role", "no-role"],
)
async def test_setup_fails_before_training_when_the_host_cannot_end_its_run(
    tmp_path: Path, role: dict[str, Any] | None, why: str
) -> None:
    """Setup asks EC2 with DryRun (API reference: DryRunOperation when allowed,
    UnauthorizedOperation when not) and stops with one sentence when the host could only power
    off, which in stop mode leaves a stopped instance and a disabled request behind."""
    path = config_with(tmp_path, interruption="stop")
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider) and run.instance is not None
    folder = provider.root / run.instance.instance_id
    if role is None:
        (folder / "role.json").unlink()  # no instance profile: no credentials in the metadata
    else:
        (folder / "role.json").write_text(json.dumps({**read_json(folder / "role.json"), **role}))
    with pytest.raises(HostError, match="setup step failed"):
        await lifecycle.setup(run)
    lifecycle.close()
    host_run = folder / "workspace" / "pacerid" / run.run_id
    log = (host_run / "output" / "setup.log").read_text()
    assert f"This host cannot end its own run through AWS: {why}." in log
    assert not (host_run / "watchdog.pid").exists()  # setup stopped before the watchdog
    assert read_json(folder / "request.json")["state"] == "active"  # DryRun changed nothing
