"""What a default run (`output.checkpoints: notice`) downloads, and when, on the local provider.

During training only the metrics, logs and the half-precision best weights cross the network;
the resumable checkpoints come once, when the run is saved at the end.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pacerid_tui.config import load_config
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.run_listener import Listener
from pacerid_tui.core.supervise.supervisor import run_all
from tests.e2e.test_cli_local import tiny_config
from trainer.export import load_checkpoint, restore_model


class Downloads(Listener):
    """The results folder's file names after each download, in order."""

    def __init__(self, results: Path) -> None:
        self.results = results
        self.seen: list[set[str]] = []

    def report(self, run_id: str, message: str) -> None:
        if message.startswith("Download:"):
            self.seen.append({path.name for path in (self.results / run_id).iterdir()})


async def test_a_default_run_downloads_the_full_checkpoint_only_at_the_end(
    tmp_path: Path,
) -> None:
    # Tiny epochs, well under a second each: the two fp16 snapshots of one size often share a
    # whole-second mtime, which the racy-index rule in core/remote/sync.py must catch.
    path = tiny_config(tmp_path, epochs=2)
    listener = Downloads(tmp_path / "results")
    lifecycle = Lifecycle(listener=listener)
    run = lifecycle.create_run(path, load_config(path))
    run = await run_all(lifecycle, run)
    lifecycle.close()

    *during, end = listener.seen
    assert during, "nothing was downloaded while training ran"
    for names in during:
        assert {"metrics.jsonl", "train.log", "model_best_fp16.pt"} <= names
        assert not {name for name in names if name.startswith("checkpoint_")}
    assert {"checkpoint_latest.pt", "checkpoint_best.pt", "report.json"} <= end
    assert "model_final.pt" not in end  # the same state as checkpoint_latest.pt: left on the host
    assert run.downloaded_at is not None and run.epoch == 2

    results = tmp_path / "results" / run.run_id
    full_size = (results / "checkpoint_best.pt").stat().st_size
    half_size = (results / "model_best_fp16.pt").stat().st_size
    # weights and Adam's two moments in float32 against the weights alone in float16: about 6x
    assert full_size > 4 * half_size

    # export reads the snapshot like a full checkpoint, and its model answers like the full one
    half, full = (
        load_checkpoint(results / name) for name in ("model_best_fp16.pt", "checkpoint_best.pt")
    )
    assert (half["epoch"], half["class_names"]) == (full["epoch"], full["class_names"])
    image = torch.rand(2, 3, full["image_size"], full["image_size"])
    with torch.no_grad():
        expected = restore_model(full, results / "checkpoint_best.pt")(image)
        got = restore_model(half, results / "model_best_fp16.pt")(image)
    assert torch.allclose(got, expected, atol=0.05, rtol=0.05)
