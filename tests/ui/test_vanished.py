"""A run whose instance is gone for no known reason (the laptop slept past the hour EC2 keeps
ended instances): the dashboard's run all asks before relaunching, and leaving it launches
nothing (real app through its pilot; local provider, whose forgotten instance is one whose
folder is gone, as DescribeInstances forgets one: tests/e2e/test_run_endings.py). The runs ask
for `interruption: relaunch`, the mode whose recovery moves a run to a new instance."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from pacerid_tui import paths
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens.failure_dialog import FailureDialog
from pacerid_tui.ui.screens.vanished import VanishedDialog
from tests.e2e.test_cli_local import cli, tiny_config
from tests.e2e.test_follow_recovery import vanished
from tests.host.images import BASE
from tests.ui.test_app import busy, wait_for


@pytest.fixture(autouse=True)
def host_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relaunched host's setup fails at once (no torch): the test ends there, quickly."""
    monkeypatch.setenv("PACERID_PYTHON", str(BASE))


@dataclass(frozen=True)
class Asked:
    """The dashboard asking about a run whose instance vanished."""

    pilot: Pilot[int]
    app: PaceridApp
    run: Run
    gone: str
    """The vanished instance's id."""
    lifecycle: Lifecycle


@asynccontextmanager
async def asked(tmp_path: Path) -> AsyncIterator[Asked]:
    """A run whose instance vanished, selected in the dashboard, r pressed: the dialog is up."""
    path = tiny_config(tmp_path, interruption="relaunch")
    run = await vanished(path)
    lifecycle = Lifecycle()
    assert run.instance is not None
    app = PaceridApp(path, refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        # r on no selected run would start a new one: wait for the table to point at this one
        await wait_for(pilot, lambda: app.table.selected_run_id == run.run_id)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, VanishedDialog), timeout=60)
        yield Asked(pilot, app, run, run.instance.instance_id, lifecycle)


async def test_a_vanished_instance_left_ended_launches_nothing(tmp_path: Path) -> None:
    async with asked(tmp_path) as dialog:
        pilot, app, run = dialog.pilot, dialog.app, dialog.run
        text = str(app.screen.query_one("#vanished-text", Static).render())
        assert dialog.gone in text and run.run_id in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, VanishedDialog) and not busy(app))

        def said() -> list[str]:
            return [line for line in app.runs.view(run.run_id).log if "Left ended" in line]

        await wait_for(pilot, lambda: bool(said()))
        assert f"{run.run_id} ended after epoch 0" in said()[0]  # how it ended, recorded
    registry = Registry(paths.registry_file())
    assert [r.run_id for r in registry.runs()] == [run.run_id]  # no new run either
    after = registry.get(run.run_id)
    assert after.instance is not None and after.instance.instance_id == dialog.gone
    assert after.previous_instances == [] and dialog.lifecycle.provider_of(run).find_managed() == []


async def test_relaunch_from_the_dialog_moves_the_run_to_a_new_instance(tmp_path: Path) -> None:
    async with asked(tmp_path) as dialog:
        pilot, app = dialog.pilot, dialog.app
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, FailureDialog), timeout=120)
        after = Registry(paths.registry_file()).get(dialog.run.run_id)
        assert after.instance is not None and after.instance.instance_id != dialog.gone
        assert after.previous_instances == [dialog.gone]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not busy(app), timeout=60)
    assert dialog.lifecycle.provider_of(dialog.run).find_managed() == []  # the failed host ended


async def test_left_ended_is_kept_across_a_restart_and_all_does_not_relaunch(
    tmp_path: Path,
) -> None:
    """Leaving it ended is written with the run (`Run.ended`): a restarted dashboard shows it
    in the row and never asks again (its follow says how the run ended), `status --json` has
    the sentence, and `all` relaunches nothing."""
    async with asked(tmp_path) as dialog:
        pilot, app, run = dialog.pilot, dialog.app, dialog.run
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, VanishedDialog) and not busy(app))
    sentence = Registry(paths.registry_file()).get(run.run_id).ended
    assert sentence is not None and sentence.endswith("Left ended, as asked.")
    assert sentence.startswith(f"{run.run_id} ended after epoch 0")

    again = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)  # the same PACERID_HOME
    async with again.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: again.table.selected_run_id == run.run_id)

        def state_cell() -> str:
            return str(again.table.get_row(run.run_id)[4]) if again.runs.rows else ""

        await wait_for(pilot, lambda: state_cell() == "unknown (left ended)")
        await pilot.press("f")  # before: a follow of a vanished instance asked again

        def said() -> list[str]:
            return [line for line in again.runs.view(run.run_id).log if "recorded earlier" in line]

        await wait_for(pilot, lambda: bool(said()) and not again.runs.view(run.run_id).following)
        assert sentence in said()[0]
        await pilot.pause(1.0)
        assert not isinstance(again.screen, VanishedDialog)
        await pilot.press("r")  # on a run left ended: a new run, not the question again
        await wait_for(pilot, lambda: isinstance(again.screen, FailureDialog), timeout=120)
        assert len(Registry(paths.registry_file()).runs()) == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: not busy(again), timeout=60)

    row, _ = json.loads(cli("status", "--json").stdout)
    assert (row["run_id"], row["ended"]) == (run.run_id, sentence)
    assert "unknown (left ended)" in cli("status").stdout
    woke = cli("all", "--run", run.run_id, check=False)  # not trained to the end: exit 1
    assert woke.returncode == 1 and "Traceback" not in woke.stderr
    assert f"pacerid-tui: {sentence}" in woke.stderr
    after = Registry(paths.registry_file()).get(run.run_id)
    assert after.previous_instances == [] and dialog.lifecycle.provider_of(run).find_managed() == []
