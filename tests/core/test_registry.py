"""The run registry: any number of runs, atomic writes, safe side by side with other processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import PaceridError, RunNotFound
from pacerid_tui.core.kernel.models import Instance, InstanceState, Run
from pacerid_tui.core.steps.registry import Registry


def make_run(run_id: str, created_at: float) -> Run:
    instance = Instance("i-1", "aws", InstanceState.RUNNING, host="1.2.3.4", launched_at=1.0)
    return Run(run_id, "aws", "/c.yaml", created_at, instance=instance, steps_done=["launch"])


def test_runs_round_trip_and_the_newest_is_the_default(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "runs.json")
    registry.save(make_run("alpha-1", 10.0))
    registry.save(make_run("beta-2", 20.0))
    assert registry.get().run_id == "beta-2"
    assert registry.get("alph").run_id == "alpha-1"  # a prefix is enough
    again = Registry(tmp_path / "runs.json").get("alpha-1")
    assert again == make_run("alpha-1", 10.0)
    assert again.instance is not None and again.instance.state is InstanceState.RUNNING
    with pytest.raises(RunNotFound, match="status` lists the runs"):
        registry.get("gamma")


def test_an_empty_registry_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="pacerid-tui launch"):
        Registry(tmp_path / "runs.json").get()


def test_a_corrupt_registry_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "runs.json").write_text("{half")
    with pytest.raises(PaceridError, match=r"unreadable.*found again by tag"):
        Registry(tmp_path / "runs.json").runs()


def bump(path: str, run_id: str, times: int) -> None:
    registry = Registry(Path(path))
    for _ in range(times):
        run = registry.get(run_id)
        registry.update(run_id, steps_done=[*run.steps_done, "x"])


def test_updates_from_several_processes_are_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "runs.json"
    registry = Registry(path)
    for index in range(3):
        registry.save(make_run(f"run-{index}", float(index)))
    workers = [
        multiprocessing.get_context("spawn").Process(target=bump, args=(str(path), f"run-{i}", 25))
        for i in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [len(run.steps_done) for run in registry.runs()] == [26, 26, 26]
    assert json.loads(path.read_text())["version"] == 1


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic.write_text(target, "one")
    atomic.write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(tmp_path) == ["state.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_private_keys_are_0400_and_never_overwritten(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    atomic.create_exclusive(key, b"secret", 0o400)
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    with pytest.raises(FileExistsError):
        atomic.create_exclusive(key, b"other", 0o400)
    assert key.read_bytes() == b"secret"
    assert os.listdir(tmp_path) == ["key.pem"]


def test_how_a_run_ended_is_kept_and_an_older_registry_reads_without_it(tmp_path: Path) -> None:
    """`Run.ended` survives a write and a fresh read (a restarted dashboard, the next `all`);
    a registry written before the field existed reads as not ended."""
    path = tmp_path / "runs.json"
    registry = Registry(path)
    registry.save(make_run("alpha-1", 10.0))
    sentence = "alpha-1 ended after epoch 1 of 3: i-1 unknown (gone). Left ended, as asked."
    registry.update("alpha-1", ended=sentence)
    assert Registry(path).get("alpha-1").ended == sentence
    body = json.loads(path.read_text())
    assert body["runs"][0]["ended"] == sentence
    del body["runs"][0]["ended"]
    path.write_text(json.dumps(body))
    assert Registry(path).get("alpha-1").ended is None
