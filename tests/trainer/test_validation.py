"""An honest best model: the best epoch is chosen on a validation split held out of Train, and
Test is looked at once, at the end, on that epoch's model.

The end-to-end check trains the same synthetic set twice, the second time with the Test split's
labels permuted (each Test class folder renamed to the next class's name): if Test took any
part in choosing, the curve, the chosen epoch or the exported weights would differ."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.trainer.support import events, run_trainer, write_config
from trainer.data import Split, hold_out
from trainer.errors import TrainerError


def permute_test_labels(data: Path) -> None:
    """Every Test image moves to the next class's folder (a cyclic shift: none keeps its own)."""
    folders = sorted(p for p in (data / "Test").iterdir() if p.is_dir())
    names = [p.name for p in folders]
    for folder in folders:
        folder.rename(folder.with_name(f"{folder.name}.moving"))
    for index, name in enumerate(names):
        moving = data / "Test" / f"{name}.moving"
        moving.rename(data / "Test" / names[(index + 1) % len(names)])


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state["model_state"]  # type: ignore[no-any-return]


def test_test_labels_change_neither_the_chosen_epoch_nor_the_exported_weights(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, epochs=4)
    real, permuted = tmp_path / "real", tmp_path / "permuted"
    first = run_trainer("train", "--config", config, "--data", real / "data")
    assert first.returncode == 0, first.stderr
    shutil.copytree(real / "data", permuted / "data", ignore=shutil.ignore_patterns(".cache"))
    permute_test_labels(permuted / "data")
    second = run_trainer("train", "--config", config, "--data", permuted / "data")
    assert second.returncode == 0, second.stderr

    a, b = real / "output", permuted / "output"
    curve = [
        [(e["epoch"], e["train_loss"], e["val_loss"], e["val_acc"]) for e in events(o, "epoch")]
        for o in (a, b)
    ]
    assert curve[0] == curve[1]
    [done_a], [done_b] = events(a, "done"), events(b, "done")
    assert done_a["best_epoch"] == done_b["best_epoch"]
    for name in ("checkpoint_best.pt", "model_best_fp16.pt"):
        one, other = weights(a / name), weights(b / name)
        assert all(torch.equal(value, other[key]) for key, value in one.items()), name
    assert done_a["test_acc"] != done_b["test_acc"]  # Test itself did change

    for output, done in ((a, done_a), (b, done_b)):
        report = json.loads((output / "report.json").read_text())
        assert report["split"] == "Test" and report["images"] == 18
        assert report["accuracy"] == pytest.approx(done["test_acc"])
        assert report["validation"]["images"] == 6  # 2 of each class's 16
        assert report["validation"]["accuracy"] == pytest.approx(done["best_val_acc"])
        assert (output / "train.log").read_text().count("Test, once, on epoch") == 1


def labelled(counts: list[int]) -> Split:
    labels = torch.cat([torch.full((n,), label) for label, n in enumerate(counts)])
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 2, 2, 3)
    return Split(images.numpy().copy(), labels, [])


def test_the_validation_split_is_stratified_fixed_by_its_seed_and_never_takes_a_whole_class() -> (
    None
):
    split = labelled([20, 7, 2])
    train, validation = hold_out(split, ["a", "b", "c"], 0.15, seed=5)
    assert torch.bincount(validation.labels).tolist() == [3, 1, 1]  # rounded, at least one
    assert torch.bincount(train.labels).tolist() == [17, 6, 1]  # and at least one left
    seen = [int(row[0, 0, 0]) for row in (*train.images, *validation.images)]
    assert sorted(seen) == list(range(29))  # every image once, in one of the two
    again, _ = hold_out(split, ["a", "b", "c"], 0.15, seed=5)
    other, _ = hold_out(split, ["a", "b", "c"], 0.15, seed=6)
    assert (again.images == train.images).all() and not (other.images == train.images).all()
    with pytest.raises(TrainerError, match="class 'c' has 1 readable training image"):
        hold_out(labelled([20, 7, 1]), ["a", "b", "c"], 0.15, seed=5)
