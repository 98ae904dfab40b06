"""The real dashboard driven through Textual's pilot on the local provider."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Button, Input, Log, Static

from pacerid_tui import paths
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.models import InstanceSpec
from pacerid_tui.core.steps.doctor import NAMES
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.key_actions import ACTIONS
from pacerid_tui.ui.screens.confirm_terminate import ConfirmTerminate
from pacerid_tui.ui.screens.doctor_screen import DoctorScreen
from pacerid_tui.ui.screens.help import HelpScreen
from pacerid_tui.ui.screens.launch_form import LaunchForm
from pacerid_tui.ui.screens.version_prompt import VersionPrompt
from tests.e2e.test_cli_local import tiny_config


def busy(app: PaceridApp) -> bool:
    """Whether a step of any run is running."""
    return any(view.busy for view in app.runs.views.values())


def following(app: PaceridApp) -> bool:
    """Whether any run's training streams in (a follow or a run all)."""
    return any(view.following for view in app.runs.views.values())


async def wait_for(
    pilot: Pilot[int],
    check: Callable[[], bool],
    timeout: float = 60,
    seen: Callable[[], object] = lambda: "",
) -> None:
    """Wait until `check()`; on timeout the failure shows `seen()` (what the dashboard had)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for the dashboard; {seen()}"
        await pilot.pause(0.1)


async def launch(pilot: Pilot[int]) -> None:
    """`n` opens the launch form; enter launches with the config as it is."""
    await pilot.press("l")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LaunchForm))
    await pilot.press("enter")


def states(app: PaceridApp) -> list[str]:
    return [row.state for row in app.runs.rows.values()]


async def test_launch_then_terminate_with_one_key(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await launch(pilot)
        await wait_for(pilot, lambda: states(app) == ["running"])
        await pilot.press("x")  # nothing trained yet: no confirmation needed
        await wait_for(pilot, lambda: states(app) == ["terminated"])
    run = Registry(paths.registry_file()).get()
    assert run.instance is not None and run.instance.state.value == "terminated"


async def test_terminate_asks_first_when_results_would_be_lost(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await launch(pilot)
        await wait_for(pilot, lambda: states(app) == ["running"])
        registry = Registry(paths.registry_file())
        run = registry.get()
        registry.update(run.run_id, steps_done=[*run.steps_done, "train"])
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTerminate))
        await pilot.press("escape")
        await pilot.pause(1.0)
        assert states(app) == ["running"]
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTerminate))
        await pilot.click("#terminate")
        await wait_for(pilot, lambda: states(app) == ["terminated"])


async def test_run_all_streams_the_log_and_the_curve(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: bool(app.runs.rows) and next(iter(app.runs.rows.values())).epoch == 2,
            timeout=240,
        )
        run_id = next(iter(app.runs.rows))
        await wait_for(
            pilot,
            lambda: "download" in Registry(paths.registry_file()).get(run_id).steps_done,
            timeout=60,
        )
        assert [e.epoch for e in app.runs.view(run_id).training.history()] == [1, 2]

        def log_text() -> str:
            return "\n".join(app.query_one(Log).lines)

        await wait_for(pilot, lambda: "Epoch 1/2" in log_text() and "Epoch 2/2" in log_text())

        await wait_for(pilot, lambda: not busy(app), timeout=60)  # run all ends with a download
        await pilot.press("m")  # export the downloaded checkpoint to Core ML
        await wait_for(
            pilot, lambda: "export: done." in app.runs.view(run_id).activity, timeout=120
        )
        assert any(
            line.startswith("» Exported PacerIDClassifier") for line in app.runs.view(run_id).log
        )

        await pilot.press("v")  # sync-model asks for the version first
        await wait_for(pilot, lambda: isinstance(app.screen, VersionPrompt))
        box = app.screen.query_one("#version", Input)
        assert box.value == "v1.0.0"  # nothing installed yet: the first version is suggested
        box.value = "1.0"
        await pilot.pause()
        assert app.screen.query_one("#sync", Button).disabled
        box.value = "v1.2.0"
        await pilot.pause()
        await pilot.press("enter")
        manifest = tmp_path / "ios" / "Models" / "model-manifest.json"
        await wait_for(
            pilot, lambda: "sync-model: done." in app.runs.view(run_id).activity, timeout=30
        )
        assert json.loads(manifest.read_text())["version"] == "v1.2.0"

        await pilot.press("x")  # results are downloaded: terminates at once
        await wait_for(pilot, lambda: states(app) == ["terminated"])
    assert (tmp_path / "results" / run_id / "checkpoint_best.pt").exists()


async def test_a_restarted_dashboard_finds_the_running_instance(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    first = PaceridApp(config, refresh_s=0.5)
    async with first.run_test(size=(160, 45)) as pilot:
        await launch(pilot)
        await wait_for(pilot, lambda: states(first) == ["running"])
    second = PaceridApp(config, refresh_s=0.5)
    async with second.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: states(second) == ["running"])
        await pilot.press("x")
        await wait_for(pilot, lambda: states(second) == ["terminated"])


async def test_terminate_is_never_blocked_by_a_running_step(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path, epochs=20), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("r")  # run all: busy for the whole run
        await wait_for(
            pilot,
            lambda: bool(app.runs.rows) and (next(iter(app.runs.rows.values())).epoch or 0) >= 1,
            timeout=180,
        )
        assert busy(app)  # the run-all step is still going
        await pilot.press("x")
        await pilot.pause(0.5)
        if isinstance(app.screen, ConfirmTerminate):
            await pilot.press("x")
        await wait_for(pilot, lambda: states(app) == ["terminated"])


async def test_run_all_refused_while_a_step_runs_leaves_the_run_unfollowed(tmp_path: Path) -> None:
    """r on a run busy launching is refused; it must not mark the run followed, or a later
    f would think a follow streams already and never follow it."""
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await launch(pilot)
        await wait_for(pilot, lambda: busy(app) and app.table.selected_run_id is not None)
        await pilot.press("r")
        assert any("busy with launch" in n.message for n in app._notifications)
        await wait_for(pilot, lambda: states(app) == ["running"] and not busy(app))
        assert not following(app)
        await pilot.press("x")
        await wait_for(pilot, lambda: states(app) == ["terminated"])


async def test_question_mark_lists_every_key_and_escape_goes_back(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = str(app.screen.query_one("#help-keys", Static).render())
        for action in ACTIONS:
            assert f"{action.key}  {action.label}" in text and action.tooltip in text
        for shown in ("f5 / ^r", "/  Filter log", "^t", "?  Keys", "q  Quit", "^p  Commands"):
            assert shown in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_each_step_by_its_own_key_then_filter_pause_and_refresh(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path, epochs=1), refresh_s=30)  # refreshes only on ctrl+r
    registry = Registry(paths.registry_file())
    async with app.run_test(size=(160, 45)) as pilot:
        await launch(pilot)
        await wait_for(pilot, lambda: states(app) == ["running"])
        run_id = registry.get().run_id
        for key, step in (("u", "upload"), ("e", "setup"), ("g", "data"), ("t", "train")):
            await pilot.press(key)
            await wait_for(pilot, lambda s=step: s in registry.get(run_id).steps_done)
        await wait_for(pilot, lambda: registry.get(run_id).epoch == 1, timeout=240)  # t follows
        await wait_for(pilot, lambda: not busy(app) and not following(app), timeout=60)
        finished = sum("Epoch 1/1" in line for line in app.runs.view(run_id).log)
        await pilot.press("f")  # follows again: the whole log, then it ends
        await wait_for(
            pilot,
            lambda: (
                not following(app)
                and sum("Epoch 1/1" in line for line in app.runs.view(run_id).log) == 2 * finished
            ),
        )
        await pilot.press("d")
        await wait_for(pilot, lambda: registry.get(run_id).downloaded_at is not None)
        assert (tmp_path / "results" / run_id / "checkpoint_best.pt").exists()

        log = app.query_one(Log)
        await pilot.press("slash")
        await pilot.press(*"epoch 1/1", "enter")
        await wait_for(pilot, lambda: app.log_filter == "epoch 1/1")
        assert log.lines and all("epoch 1/1" in line.lower() for line in log.lines)
        await pilot.press("slash", *["backspace"] * 9, "enter")  # empty: every line again
        await wait_for(pilot, lambda: app.log_filter == "" and len(log.lines) > 5)
        await pilot.press("p")
        assert not log.auto_scroll
        await pilot.press("p")
        assert log.auto_scroll

        before = app.runs.rows[run_id].uptime_s or 0.0
        await pilot.pause(1.1)
        await pilot.press("ctrl+r")  # the 30 s timer would not have come yet
        await wait_for(pilot, lambda: (app.runs.rows[run_id].uptime_s or 0.0) > before + 1)
        await pilot.press("x")
        await wait_for(pilot, lambda: states(app) == ["terminated"])


async def test_every_action_is_a_binding_a_button_and_a_palette_command(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path), refresh_s=30)
    bindings = {b.action: b for b in Binding.make_bindings(PaceridApp.BINDINGS)}
    assert all(b.id and b.tooltip for b in bindings.values())
    async with app.run_test(size=(160, 45)) as pilot:
        for action in ACTIONS:
            assert bindings[action.name].id == f"run.{action.name}"
            buttons = app.query(f"#do-{action.name}").results(Button)
            assert [b.tooltip for b in buttons] == ([action.tooltip] if action.button else [])
        await pilot.press("ctrl+p")
        await pilot.press(*"Light/dark", "enter")
        await wait_for(pilot, lambda: app.theme == "textual-light")
        await pilot.press("ctrl+p")
        await pilot.press(*"Launch", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchForm))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchForm))
        assert not app.runs.rows  # nothing launched


async def test_c_and_the_palette_open_the_doctor(tmp_path: Path) -> None:
    app = PaceridApp(tiny_config(tmp_path), refresh_s=30)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen))

        def shown() -> str:
            return str(app.screen.query_one("#doctor-checks", Static).render())

        await wait_for(pilot, lambda: "kaggle" in shown())
        assert shown().count("Not needed") == len(NAMES)  # every check, kaggle's included
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DoctorScreen))
        await pilot.press("ctrl+p")
        await pilot.press(*"Doctor", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen))


async def test_an_instance_no_run_knows_is_shown_adopted_with_a_and_terminated(
    tmp_path: Path,
) -> None:
    # A launch whose run was lost (a deleted registry, a crash between launch and save).
    lost = LocalProvider().launch(InstanceSpec(run_id="lost", provider="local"))
    app = PaceridApp(tiny_config(tmp_path), refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(
            pilot, lambda: [i.instance_id for i in app.runs.orphans] == [lost.instance_id]
        )
        assert any(lost.instance_id in n.message for n in app._notifications)
        assert not app.runs.rows  # no run knows it yet
        await pilot.press("a")
        await wait_for(pilot, lambda: states(app) == ["running"])
        run = Registry(paths.registry_file()).get()
        assert run.instance is not None and run.instance.instance_id == lost.instance_id
        await pilot.press("x")
        await wait_for(pilot, lambda: states(app) == ["terminated"])
    assert LocalProvider().find_managed() == []  # nothing left running, nothing forgotten
