"""A run's ending is told once, by its supervisor, to whichever face listens (issue 25: the core
decides, the faces show): `Listener.ended` with the notice (what ended, the sentence, the once-
only key, the best accuracy streamed), never worked out again from the metrics by a face."""

from __future__ import annotations

import json
from pathlib import Path

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.models import MetricEvent, Notice
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.core.supervise.supervisor import run_all
from tests.e2e.test_cli_local import tiny_config


class Told(Listener):
    """What the supervisor told, in order: its endings, and the metric events around them."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, object]] = []

    def metric(self, run_id: str, event: MetricEvent) -> None:
        self.heard.append(("metric", event.event))

    def ended(self, run_id: str, notice: Notice) -> None:
        self.heard.append(("ended", notice))


async def test_run_all_tells_the_finished_run_once_with_its_best_accuracy(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, epochs=2)
    told = Told()
    lifecycle = Lifecycle(listener=told)
    run = await run_all(lifecycle, lifecycle.create_run(path, load_config(path)))
    lifecycle.close()

    lines = (tmp_path / "results" / run.run_id / "metrics.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    done = next(e for e in events if e["event"] == "done")
    best = max(e["val_acc"] for e in events if e["event"] == "epoch")
    endings = [said for kind, said in told.heard if kind == "ended"]
    assert endings == [Notice("finished", "training finished", f"done@{done['time']}", best)]
    # told as the trainer's end streams in, right after its event
    assert told.heard.index(("ended", endings[0])) == told.heard.index(("metric", "done")) + 1
