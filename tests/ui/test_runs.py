"""The dashboard's runs and their rules, driven without Textual (issue 25: one object holds the
runs' state and the rules for starting steps, follows and watches; the App only owns it).

Over a real registry in the test's state folder; the face stands where the App would start
Textual workers, and records what the runs ask of it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.models import Instance, InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.core.steps.status import row as status_row
from pacerid_tui.ui.runs import Runs
from tests.conftest import REPO

T0 = 1_700_000_000.0


class Face:
    """Records the work the runs start (running it, when asked to) and what they cancel."""

    def __init__(self, *, run: bool = False) -> None:
        self.run = run
        self.started: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.refreshes = 0
        self.tasks: list[asyncio.Future[None]] = []

    def start_work(self, work: Coroutine[Any, Any, None], *, name: str, group: str) -> None:
        self.started.append((name, group))
        if self.run:
            self.tasks.append(asyncio.ensure_future(work))
        else:
            work.close()

    def cancel_work(self, group: str) -> None:
        self.cancelled.append(group)

    def refresh_runs(self) -> None:
        self.refreshes += 1

    async def keep_after_failure(self, sentence: str) -> bool:
        return False

    async def ask_relaunch(self, run: Run) -> bool:
        return False


class Said(Listener):
    def __init__(self) -> None:
        self.reports: list[str] = []

    def report(self, run_id: str, message: str) -> None:
        self.reports.append(message)


class ReadWhere(Registry):
    """The real registry, noting which thread reads the whole file."""

    def __init__(self) -> None:
        super().__init__(paths.registry_file())
        self.readers: list[str] = []

    def runs(self) -> list[Run]:
        self.readers.append(threading.current_thread().name)
        return super().runs()


def instance(state: InstanceState) -> Instance:
    return Instance("local-1", "local", state, host="127.0.0.1", launched_at=T0)


def runs_over(*saved: Run, run: bool = False) -> tuple[Runs, Face, ReadWhere, Said]:
    registry, said, face = ReadWhere(), Said(), Face(run=run)
    for each in saved:
        registry.save(each)
    runs = Runs(Lifecycle(registry, said), clock=lambda: T0 + 60)
    runs.attach(face)
    return runs, face, registry, said


async def test_one_step_at_a_time_each_on_the_registrys_record_of_the_run() -> None:
    runs, face, registry, said = runs_over(Run("r1", "local", "c.yaml", T0), run=True)
    go, seen = asyncio.Event(), []

    async def step(run: Run) -> None:
        seen.append(run)
        await go.wait()

    registry.update("r1", epochs=7)  # after any snapshot: the step gets this record
    assert runs.start_step("r1", "upload", step) is None
    assert runs.start_step("r1", "setup", step) == "r1 is busy with upload; wait for it."
    assert runs.view("r1").busy == "upload"
    await asyncio.sleep(0.2)
    go.set()
    await asyncio.gather(*face.tasks)
    assert [run.epochs for run in seen] == [7]
    assert face.started == [("upload", "r1")] and face.refreshes == 1
    assert runs.view("r1").busy is None and said.reports == ["upload: done."]


async def test_the_registry_is_read_in_a_thread_and_kept() -> None:
    runs, _face, registry, _said = runs_over(Run("r1", "local", "c.yaml", T0))
    rows = await runs.refresh()
    assert [row.run_id for row in rows] == ["r1"]
    assert registry.readers and threading.main_thread().name not in registry.readers
    paths.registry_file().unlink()  # what draws the screen answers from the snapshot
    assert runs.run("r1") == Run("r1", "local", "c.yaml", T0)
    assert runs.run("r2") is None and runs.run(None) is None


def test_a_run_made_here_is_selected_once_and_a_live_one_watched_once() -> None:
    runs, face, _registry, _said = runs_over()
    config = REPO / "configs" / "local.yaml"
    made = runs.create(config, load_config(config))
    assert runs.changed(made) and not runs.changed(made)  # the table selects it, once
    assert runs.rows[made.run_id].state == "not launched"  # a row until a refresh prices it
    other = Run("r1", "local", "c.yaml", T0)
    assert not runs.changed(other) and runs.run("r1") == other  # kept, not selected
    live = replace(other, instance=instance(InstanceState.RUNNING))
    row = status_row(live, [], T0 + 60)
    assert runs.take([row]) == ["r1: running"]  # its state changed since the last rows
    runs.take([row])
    assert face.started == [("supervise", "watch-r1")]  # one watch, however often refreshed
    gone = replace(row, state="terminated")
    other = replace(gone, run_id="r2")
    runs.take([gone, other])
    assert face.started == [("supervise", "watch-r1")]  # nothing watched on an ended instance


def test_follow_once_with_its_watch() -> None:
    live = Run("r1", "local", "c.yaml", T0, instance=instance(InstanceState.RUNNING))
    runs, face, _registry, _said = runs_over(live)
    runs.start_follow("r1")
    runs.start_follow("r1")
    assert face.started == [("supervise", "watch-r1"), ("follow", "follow-r1")]
    assert runs.view("r1").following and runs.view("r1").watching
    assert runs.supervisor("r1") is runs.supervisor("r1")  # shared by watch, follow, steps


def test_what_terminate_does_to_a_run() -> None:
    runs, face, _registry, _said = runs_over()
    bare = Run("r1", "local", "c.yaml", T0)
    assert runs.terminate_plan(bare) == "nothing"
    runs.view("r1").busy = "launch"
    assert runs.terminate_plan(bare) == "when launched"  # end what the launch brings
    live = replace(bare, instance=instance(InstanceState.RUNNING))
    assert runs.terminate_plan(live) == "now"
    trained = replace(live, steps_done=["launch", "train"])
    assert runs.terminate_plan(trained) == "ask"  # results would be lost
    assert runs.terminate_plan(replace(trained, downloaded_at=T0)) == "now"
    ended = replace(bare, instance=instance(InstanceState.TERMINATED))
    assert runs.terminate_plan(ended) == "nothing"

    runs.terminate("r1", "download first")  # never blocked: the running step is cancelled
    assert face.cancelled == ["r1", "follow-r1", "watch-r1"]
    assert face.started == [("download, then terminate", "r1")]


def test_run_all_starts_a_new_run_on_none_or_an_ended_one() -> None:
    runs, _face, _registry, _said = runs_over()
    bare = Run("r1", "local", "c.yaml", T0)
    assert runs.needs_new_run(None)
    assert not runs.needs_new_run(bare)
    assert not runs.needs_new_run(replace(bare, instance=instance(InstanceState.RUNNING)))
    assert runs.needs_new_run(replace(bare, instance=instance(InstanceState.TERMINATED)))
    vanished = replace(bare, instance=instance(InstanceState.UNKNOWN))
    assert not runs.needs_new_run(vanished)  # asked about once
    assert runs.needs_new_run(replace(vanished, ended="Left ended, as asked."))
