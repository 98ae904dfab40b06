"""Managed recovery on the local provider: a spot notice mid-run, and the run still finishes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pacerid_tui.config import load_config
from pacerid_tui.core.lifecycle import Lifecycle, Listener
from pacerid_tui.core.models import MetricEvent
from pacerid_tui.core.supervisor import run_all
from tests.e2e.test_cli_local import tiny_config
from tests.trainer.test_trainer_resume import MetadataService


@pytest.fixture
def metadata(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataService]:
    server = MetadataService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PACERID_IMDS_URL", server.url)  # PACERID_* reach the local host
    monkeypatch.setenv("PACERID_IMDS_POLL_SECONDS", "0.2")
    yield server
    server.shutdown()
    server.server_close()


class SpotMarket(Listener):
    """Announces the interruption once epoch 1 is done; withdraws it once it has been heard."""

    def __init__(self, metadata: MetadataService) -> None:
        self.metadata = metadata
        self.epochs: list[int] = []

    def metric(self, run_id: str, event: MetricEvent) -> None:
        if event.event == "epoch" and event.epoch:
            self.epochs.append(event.epoch)
            if event.epoch == 1:
                self.metadata.marked.set()
        if event.event == "interrupted":
            self.metadata.marked.clear()


async def test_an_interrupted_run_finishes_on_a_replacement(
    metadata: MetadataService, tmp_path: Path
) -> None:
    path = tiny_config(tmp_path, epochs=4)
    lifecycle = Lifecycle(listener=SpotMarket(metadata))
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
    epochs = [e["epoch"] for e in events if e["event"] == "epoch"]
    assert epochs == [1, 2, 3, 4]  # the curve is continuous; no finished epoch ran twice
    assert [e["event"] for e in events].count("interrupted") == 1
    assert events[-1]["event"] == "done"
    assert run.cost_usd == 0.0  # the local provider is free; AWS adds each instance's cost
    assert yaml.safe_load((results / "config.resolved.yaml").read_text())
