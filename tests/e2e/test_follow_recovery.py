"""Recovery after a plain follow (`train --follow`, `logs --follow`), not only in `all`: the
same rule (`Supervisor.follow`), through the real `pacerid-tui` program on the local provider.

The spot notice comes from a loopback stand-in for the instance metadata service (IMDSv2,
`/latest/meta-data/spot/instance-action`, as in AWS's user guide "Spot Instance interruption
notices"); the trainer polls it and exits 75 with an "interrupted" event. The controller here is
a child process, so the notice is timed from the host's own disk: `SpotNotice` reads the first
host's metrics.jsonl and marks the instance once training has started there (the earliest
moment: however fast three tiny epochs run, the trainer's 0.2 s poll sees it before the last
one ends), clearing the mark once the trainer has said "interrupted" (long before the
replacement's trainer starts polling).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local_processes import processes_of
from pacerid_tui.core.kernel.models import MetricEvent, Run, current_epochs
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from tests.conftest import TakeRun
from tests.e2e.test_cli_local import cli, tiny_config
from tests.e2e.test_run_endings import host_folder
from tests.host.images import BASE
from tests.metadata_standin import MetadataService


def relaunching(tmp_path: Path) -> Path:
    """Three tiny epochs, relaunched on interruption, said explicitly: it is what these tests
    recover with, whatever the default of `instance.interruption` becomes."""
    path = tiny_config(tmp_path, epochs=3)
    raw = yaml.safe_load(path.read_text())
    raw["instance"]["interruption"] = "relaunch"
    path.write_text(yaml.safe_dump(raw))
    return path


def host_output(run: Run) -> Path:
    return host_folder(run) / "workspace" / "pacerid" / run.run_id / "output"


def events_in(metrics: Path) -> list[dict[str, Any]]:
    try:
        lines = metrics.read_text().splitlines()
    except OSError:  # not written yet, or the host's folder went with it
        return []
    found = []
    for line in lines:
        try:
            found.append(json.loads(line))
        except ValueError:  # a line half written
            continue
    return found


class SpotNotice(threading.Thread):
    """Marks the interruption once the host's metrics say training started; clears it once
    they hold the trainer's "interrupted" (`heard`)."""

    def __init__(self, service: MetadataService, metrics: Path) -> None:
        super().__init__(daemon=True)
        self.metadata = service
        self.metrics = metrics
        self.heard = False
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(0.05):
            kinds = [e.get("event") for e in events_in(self.metrics)]
            if "start" in kinds:
                self.metadata.marked.set()
            if "interrupted" in kinds:
                self.metadata.marked.clear()
                self.heard = True
                return

    def stop(self) -> None:
        self.finished.set()
        self.join(5)


async def ready_to_train(take_run: TakeRun, path: Path) -> Run:
    """A run launched, uploaded, set up and with its data, its connections closed: the next step
    is `train`, by a controller of the test's."""
    lifecycle, run = await take_run(path, to="data")
    lifecycle.close()
    return run


def assert_recovered_once(before: Run) -> Run:
    """One interruption, the run on a second instance, every epoch once on the replacement."""
    assert before.instance is not None
    after = Registry(paths.registry_file()).get(before.run_id)
    assert len(after.interruptions) == 1 and "interrupted" in after.interruptions[0]
    assert after.previous_instances == [before.instance.instance_id]
    assert after.instance is not None
    assert after.instance.instance_id != before.instance.instance_id
    assert after.epoch == 3 and after.ended is None
    events = events_in(host_output(after) / "metrics.jsonl")  # carried over, then continued
    assert [e["event"] for e in events].count("interrupted") == 1
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 3]  # each once
    current = current_epochs([MetricEvent.from_dict(e) for e in events])
    assert [e.epoch for e in current] == [1, 2, 3]
    assert events[-1]["event"] == "done"
    return after


async def test_a_plain_train_follow_recovers_onto_a_replacement_and_finishes(
    metadata: MetadataService, tmp_path: Path, take_run: TakeRun
) -> None:
    run = await ready_to_train(take_run, relaunching(tmp_path))
    notice = SpotNotice(metadata, host_output(run) / "metrics.jsonl")
    notice.start()
    try:
        done = await asyncio.to_thread(cli, "train", "--follow", "--run", run.run_id)
    finally:
        notice.stop()
    assert notice.heard, "the notice never reached the trainer"
    assert "recovering on a new instance" in done.stderr and "Traceback" not in done.stderr
    assert "Carried" in done.stderr and "No checkpoint was saved" not in done.stderr
    assert_recovered_once(run)
    cli("terminate", "--run", run.run_id)
    assert Lifecycle().provider_of(run).find_managed() == []


async def vanished(path: Path) -> Run:
    """A run whose instance the provider no longer knows (its folder gone: as DescribeInstances
    forgets a terminated instance after about an hour)."""
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    assert run.instance is not None
    provider = lifecycle.provider_of(run)
    provider.terminate(run.instance.instance_id)
    shutil.rmtree(host_folder(run))
    assert provider.describe([run.instance.instance_id]) == {}
    lifecycle.close()
    return run


async def test_a_follow_of_a_vanished_instance_says_recover_and_launches_nothing(
    tmp_path: Path,
) -> None:
    run = await vanished(tiny_config(tmp_path))
    done = await asyncio.to_thread(cli, "logs", "--follow", "--run", run.run_id, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [said] = [line for line in done.stderr.splitlines() if line.startswith("pacerid-tui:")]
    assert f"`pacerid-tui logs --follow --run {run.run_id} --recover` relaunches it." in said
    after = Registry(paths.registry_file()).get(run.run_id)
    assert after.previous_instances == [] and after.ended is None  # not decided: not recorded
    assert Lifecycle().provider_of(run).find_managed() == []

    usage = cli("train", "--recover", "--run", run.run_id, check=False)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert usage.stderr.strip() == (
        "pacerid-tui: --recover applies to a follow; add --follow: `train --follow --recover`."
    )


async def test_recover_relaunches_and_a_failed_replacement_is_terminated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`logs --follow --recover` relaunches a vanished run; the replacement's setup fails (an
    image without torch), and the follow ends that host, as `all` would: nothing bills."""
    run = await vanished(tiny_config(tmp_path))
    assert run.instance is not None
    monkeypatch.setenv("PACERID_PYTHON", str(BASE))
    done = await asyncio.to_thread(
        cli, "logs", "--follow", "--recover", "--run", run.run_id, check=False
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [said] = [line for line in done.stderr.splitlines() if line.startswith("pacerid-tui:")]
    assert "the setup step failed" in said and said.endswith("the host was terminated.")
    after = Registry(paths.registry_file()).get(run.run_id)
    assert after.previous_instances == [run.instance.instance_id]
    assert after.instance is not None and after.instance.instance_id != run.instance.instance_id
    assert after.instance.state.value == "terminated"
    assert Lifecycle().provider_of(run).find_managed() == []


async def test_a_trainer_stopped_by_sigterm_alone_is_asked_about_not_relaunched(
    tmp_path: Path, take_run: TakeRun
) -> None:
    """The trainer says "interrupted" after a SIGTERM too (our watchdog powering the host off,
    someone's `kill`); with no notice and no EC2 code saying so, no follow relaunches by itself:
    the error names --recover and nothing new is launched."""
    lifecycle, run = await take_run(relaunching(tmp_path))
    assert run.instance is not None
    lifecycle.close()
    following = asyncio.ensure_future(
        asyncio.to_thread(cli, "logs", "--follow", "--run", run.run_id, check=False)
    )
    metrics = host_output(run) / "metrics.jsonl"
    for _ in range(600):
        if any(e.get("event") == "step" for e in events_in(metrics)):
            break
        await asyncio.sleep(0.1)
    trainers = [
        pid
        for pid in processes_of(run.instance.instance_id)
        if b"-m\0trainer\0train" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert trainers, "no trainer process on the host"
    for pid in trainers:
        os.kill(pid, signal.SIGTERM)
    done = await asyncio.wait_for(following, 300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [said] = [line for line in done.stderr.splitlines() if "Nobody knows why" in line]
    assert said.startswith("pacerid-tui:")
    assert f"logs --follow --run {run.run_id} --recover` relaunches it." in said
    [event] = [e for e in events_in(metrics) if e["event"] == "interrupted"]
    assert event["message"].startswith("received SIGTERM")
    after = Registry(paths.registry_file()).get(run.run_id)
    assert after.previous_instances == [] and after.interruptions == []
    assert after.instance is not None and after.instance.instance_id == run.instance.instance_id
    cli("terminate", "--run", run.run_id)
