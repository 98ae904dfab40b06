"""Watching a run in the real dashboard on the local provider: host samples with GPU rows from a
stand-in nvidia-smi (tests/nvidia_smi.py, shaped from NVIDIA's documentation) on the host's PATH,
the bottleneck verdict, step events streamed while an epoch runs, and the webhook when it ends
(a loopback HTTP receiver, tests/core/test_notify.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Input, Select, Static

from pacerid_tui import paths
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens.launch_form import LaunchForm
from pacerid_tui.ui.widgets.host_panel import HostPanel
from pacerid_tui.ui.widgets.loss_chart import LossChart
from tests import nvidia_smi
from tests.core.test_notify import webhook_receiver
from tests.e2e.test_cli_local import finished_post, tiny_config
from tests.ui.test_app import busy, wait_for


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1: (its URL, the JSON bodies POSTed to it)."""
    with webhook_receiver() as receiving:
        yield receiving


def panel_text(app: PaceridApp) -> str:
    shown = app.query_one(HostPanel).shown
    return shown.plain if shown is not None else ""


async def test_run_all_shows_the_host_at_work_the_step_curve_and_posts_its_end_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, posts = receiver
    bin_dir = nvidia_smi.install(tmp_path / "bin", nvidia_smi.BUSY_CSV)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")  # the host's too
    # Two epochs: the verdict needs three step events, and with a validation split taken from
    # Train/ the tiny set makes only two steps an epoch.
    config = tiny_config(tmp_path, epochs=2)
    raw = yaml.safe_load(config.read_text())
    raw["output"]["system_sample_s"] = 0.2
    raw["notify"] = {"webhook_url": url}
    config.write_text(yaml.safe_dump(raw))
    app = PaceridApp(config, refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: "GPU-bound" in panel_text(app), timeout=240)
        text = panel_text(app)
        assert "GPU0" in text and "10.8/15.0 GiB" in text and "CPU" in text
        run_id = next(iter(app.runs.rows))
        training = app.runs.view(run_id).training
        await wait_for(pilot, lambda: bool(training.epochs), timeout=120)
        first_epoch = training.history()[0]
        streamed = [s for s in training.steps if s.epoch == 1]  # in the order they streamed
        assert len(streamed) >= 2 and all(s.time <= first_epoch.time for s in streamed)
        assert all(s.data_wait is not None and s.loss and s.images_per_s for s in streamed)
        chart = app.query_one(LossChart)
        await pilot.press("y")  # the chart to a log scale and back
        assert chart.log_scale
        await pilot.press("y")
        assert not chart.log_scale
        await wait_for(
            pilot,
            lambda: "download" in Registry(paths.registry_file()).get(run_id).steps_done,
            timeout=120,
        )
        await wait_for(pilot, lambda: not busy(app), timeout=60)
        await wait_for(pilot, lambda: len(posts) == 1)
        best = max(e.val_acc or 0.0 for e in training.history())
        assert posts[0] == finished_post(run_id, best)

    # A dashboard started again follows the run again: it sees the end once more, posts nothing.
    again = PaceridApp(config, refresh_s=0.5)
    async with again.run_test(size=(160, 45)) as pilot:

        def seen() -> str:
            view = again.runs.view(run_id)
            return f"following={view.following}; log ends {list(view.log)[-8:]}"

        await wait_for(  # the trainer's last line, "Done." (after its one test pass)
            pilot,
            lambda: any("INFO Done" in line for line in again.runs.view(run_id).log),
            120,
            seen,
        )
        await wait_for(pilot, lambda: not again.runs.view(run_id).following, timeout=60)
        # Every worker done but the live run's supervisor, which watches until it ends.
        await wait_for(
            pilot, lambda: all(w.name == "supervise" for w in again.workers if not w.is_finished)
        )
        assert len(posts) == 1
        await pilot.press("x")
        await wait_for(pilot, lambda: [r.state for r in again.runs.rows.values()] == ["terminated"])
    lines = (tmp_path / "results" / run_id / "system.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    assert len(samples) >= 3
    assert all(s["ram_total_gb"] and s["disk_free_gb"] and s["gpus"] for s in samples)
    assert any(s["cpu_percent"] is not None for s in samples)


async def test_the_launch_form_edits_the_training_fields(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    app = PaceridApp(config, refresh_s=30)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchForm))
        form = app.screen
        form.query_one("#train-training-epochs", Input).value = "zero"
        await wait_for(
            pilot,
            lambda: (
                "training.epochs = 'zero' is invalid"
                in str(form.query_one("#launch-error", Static).render())
            ),
        )
        form.query_one("#train-training-epochs", Input).value = "1"
        form.query_one("#train-training-learning-rate", Input).value = "0.0005"
        form.query_one("#train-model-name", Select).value = "mobilenet_v3_large"
        await pilot.click("#launch")
        await wait_for(pilot, lambda: bool(app.runs.rows))
        run = Registry(paths.registry_file()).get()
        assert run.config_path != str(config)  # an edited copy; the user's file is untouched
        edited = yaml.safe_load(Path(run.config_path).read_text())
        assert edited["training"]["epochs"] == 1 and edited["training"]["learning_rate"] == 0.0005
        assert edited["model"]["name"] == "mobilenet_v3_large"
        assert edited["data"] == yaml.safe_load(config.read_text())["data"]
        await wait_for(pilot, lambda: [r.state for r in app.runs.rows.values()] == ["running"])
        await pilot.press("x")
        await wait_for(pilot, lambda: [r.state for r in app.runs.rows.values()] == ["terminated"])
