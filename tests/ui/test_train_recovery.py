"""The dashboard's `t` recovers as run all does: a spot notice during training moves the run to
a replacement, where training goes on and finishes (real app through its pilot, local
provider, the notice from the loopback metadata service: tests/e2e/test_follow_recovery.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot

from pacerid_tui import paths
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens.confirm_terminate import ConfirmTerminate
from pacerid_tui.ui.screens.failure_dialog import FailureDialog
from pacerid_tui.ui.screens.vanished import VanishedDialog
from tests.conftest import TakeRun
from tests.e2e.test_follow_recovery import (
    SpotNotice,
    assert_recovered_once,
    host_output,
    ready_to_train,
    relaunching,
)
from tests.metadata_standin import MetadataService
from tests.ui.test_app import busy, wait_for


def recovering(app: PaceridApp, run_id: str) -> bool:
    supervisor = app.runs.view(run_id).supervisor
    return supervisor is not None and supervisor.recovering


@asynccontextmanager
async def t_pressed(
    service: MetadataService, tmp_path: Path, take_run: TakeRun
) -> AsyncIterator[tuple[Pilot[int], PaceridApp, Run, SpotNotice]]:
    """A relaunch-mode run ready to train, selected in the dashboard, the spot notice armed
    (it comes after epoch 1), and `t` pressed."""
    path = relaunching(tmp_path)
    run = await ready_to_train(take_run, path)
    notice = SpotNotice(service, host_output(run) / "metrics.jsonl")
    app = PaceridApp(path, refresh_s=0.5)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_for(pilot, lambda: app.table.selected_run_id == run.run_id)
            notice.start()
            await pilot.press("t")
            yield pilot, app, run, notice
    finally:
        notice.stop()


async def test_t_recovers_an_interrupted_run_onto_a_replacement(
    metadata: MetadataService, tmp_path: Path, take_run: TakeRun
) -> None:
    try:
        async with t_pressed(metadata, tmp_path, take_run) as (pilot, app, run, notice):
            await wait_for(pilot, lambda: app.runs.view(run.run_id).following, timeout=60)

            def finished() -> bool:
                assert not isinstance(app.screen, (VanishedDialog, FailureDialog))
                return not app.runs.view(run.run_id).following

            await wait_for(pilot, finished, timeout=300)
            said = list(app.runs.view(run.run_id).log)
            assert any("recovering on a new instance" in line for line in said)
            assert notice.heard
            after = assert_recovered_once(run)
            assert after.instance is not None
            new = after.instance.instance_id

            def row() -> tuple[str | None, int | None]:
                shown = app.runs.rows[run.run_id]
                return shown.instance_id, shown.epoch

            # The table shows it at the next refresh: one that read the registry before the
            # last epoch was recorded may land after the follow ended (it did once, serially).
            await wait_for(pilot, lambda: row() == (new, 3), timeout=30, seen=row)
    finally:
        lifecycle = Lifecycle()
        [current] = Registry(paths.registry_file()).runs()
        if current.instance is not None and current.instance.state.is_alive:
            await lifecycle.terminate(current)
        lifecycle.close()
    assert lifecycle.provider_of(current).find_managed() == []


async def test_x_during_a_recovery_ends_it_and_leaves_nothing_running(
    metadata: MetadataService, tmp_path: Path, take_run: TakeRun
) -> None:
    """Terminate while `t`'s follow is moving the run to a replacement: the recovery is
    cancelled wherever it is (saving from the old host, between instances, setting up the new
    one) and no instance is left running. Until then the run is busy with the recovery: any
    other step is refused (`d`), and `r` neither joins in nor starts a new run."""
    async with t_pressed(metadata, tmp_path, take_run) as (pilot, app, run, _notice):
        provider = Lifecycle().provider_of(run)
        await wait_for(pilot, lambda: app.runs.view(run.run_id).supervisor is not None, timeout=60)
        await wait_for(pilot, lambda: recovering(app, run.run_id), timeout=120)
        for key in ("d", "r"):
            await pilot.press(key)
        refused = [n.message for n in app._notifications if "busy with recovery" in n.message]
        assert refused == [f"{run.run_id} is busy with recovery; wait for it."] * 2
        assert app.runs.view(run.run_id).busy is None and list(app.runs.rows) == [run.run_id]
        await pilot.press("x")

        def ended() -> bool:
            if isinstance(app.screen, ConfirmTerminate):  # results not downloaded yet
                app.screen.dismiss("terminate")
            return not busy(app) and not app.runs.view(run.run_id).following

        await wait_for(pilot, ended, timeout=120)
        await wait_for(pilot, lambda: provider.find_managed() == [], timeout=60)
        await pilot.pause(2.0)  # a recovery that went on would launch by now
        assert provider.find_managed() == []
    current = Registry(paths.registry_file()).get(run.run_id)
    assert current.instance is None or not current.instance.state.is_alive
