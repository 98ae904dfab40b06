"""Managed recovery on the local provider: a spot notice mid-run, and the run still finishes.

Recovery on a replacement is `interruption: relaunch`'s, asked for explicitly; stop mode (the
default) waits for the same instance instead (tests/e2e/test_stop_*.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.models import MetricEvent, current_epochs
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.core.supervise import recovery
from pacerid_tui.core.supervise.supervisor import run_all
from tests.e2e.test_cli_local import tiny_config
from tests.metadata_standin import MetadataService


class SpotMarket(Listener):
    """Announces the interruption once epoch 2 is done; withdraws it once it has been heard.

    Then it makes the controller's saved checkpoint older than its metrics, as happens when the
    last background download of a checkpoint lags behind the streamed metrics: after each save
    from the interrupted host, checkpoint_latest.pt becomes epoch 1's while metrics.jsonl
    already holds epoch 2.
    """

    def __init__(self, metadata: MetadataService, results: Path) -> None:
        self.metadata = metadata
        self.results = results
        self.announced = self.heard = False

    def metric(self, run_id: str, event: MetricEvent) -> None:
        if event.event == "epoch" and event.epoch == 2 and not self.announced:
            self.announced = True
            self.metadata.marked.set()
        if event.event == "interrupted":
            self.metadata.marked.clear()
            self.heard = True

    def report(self, run_id: str, message: str) -> None:
        if message.startswith("Carried"):
            self.heard = False  # on the new host now
        older = self.results / run_id / "checkpoint_epoch_001.pt"
        # only the save from the interrupted host brings checkpoints (output.checkpoints: notice)
        if self.heard and message.startswith("Download:") and older.exists():
            shutil.copyfile(older, self.results / run_id / "checkpoint_latest.pt")


async def test_an_interrupted_run_finishes_on_a_replacement(
    metadata: MetadataService, tmp_path: Path
) -> None:
    path = tiny_config(tmp_path, epochs=4, interruption="relaunch")
    raw = yaml.safe_load(path.read_text())
    raw["training"]["save_every_epoch_checkpoints"] = True  # the host keeps epoch 1's too
    raw["output"]["download_epoch_checkpoints"] = True
    path.write_text(yaml.safe_dump(raw))
    lifecycle = Lifecycle(listener=SpotMarket(metadata, tmp_path / "results"))
    run = lifecycle.create_run(path, load_config(path))
    run = await run_all(lifecycle, run)
    lifecycle.close()

    assert len(run.interruptions) == 1 and "interrupted" in run.interruptions[0]
    assert len(run.previous_instances) == 1 and run.instance is not None
    assert run.instance.instance_id != run.previous_instances[0]
    [old] = lifecycle.provider_of(run).describe(run.previous_instances).values()
    assert old.state.value == "terminated"
    results = tmp_path / "results" / run.run_id
    events = [json.loads(line) for line in (results / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 2, 3, 4]
    assert [e["epoch"] for e in events if e["event"] == "superseded"] == [1]  # 2 ran again
    current = current_epochs([MetricEvent.from_dict(e) for e in events])
    assert [e.epoch for e in current] == [1, 2, 3, 4]  # the curve is continuous: each epoch once
    assert run.epoch == 4
    assert [e["event"] for e in events].count("interrupted") == 1
    assert events[-1]["event"] == "done"
    assert run.cost_usd == 0.0  # the local provider is free; AWS adds each instance's cost
    assert yaml.safe_load((results / "config.resolved.yaml").read_text())


async def test_a_cut_save_resumes_from_what_this_machine_has(
    metadata: MetadataService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save from the interrupted host does not finish (its time is up at once): with
    `output.checkpoints: notice` this machine then holds no checkpoint, so the replacement
    starts over, and the curve still has each epoch once."""
    monkeypatch.setattr(recovery, "SAVE_TIMEOUT_S", 0.0)
    path = tiny_config(tmp_path, epochs=3, interruption="relaunch")
    lifecycle = Lifecycle(listener=SpotMarket(metadata, tmp_path / "results"))
    run = lifecycle.create_run(path, load_config(path))
    run = await run_all(lifecycle, run)
    lifecycle.close()

    assert len(run.interruptions) == 1 and run.epoch == 3
    results = tmp_path / "results" / run.run_id
    events = [json.loads(line) for line in (results / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 1, 2, 3]
    assert [e["epoch"] for e in events if e["event"] == "superseded"] == [0]
    current = current_epochs([MetricEvent.from_dict(e) for e in events])
    assert [e.epoch for e in current] == [1, 2, 3]
    assert events[-1]["event"] == "done" and (results / "checkpoint_latest.pt").exists()
