"""The trainer's pieces on their own: config parity with the controller, the synthetic set, the
image cache, the batch augmentation and the report's manufacturer view."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

from pacerid_tui import config as controller
from tests.trainer.support import REPO
from trainer.augment import augment
from trainer.config import TrainerConfig, load_config
from trainer.data import load_split
from trainer.errors import TrainerError, UsageError
from trainer.layout import list_split, split_dir
from trainer.report import manufacturer_accuracy
from trainer.synthetic import ensure_synthetic


@pytest.mark.parametrize("name", ["base.yaml", "local.yaml"])
def test_the_trainer_reads_the_shipped_configs_like_the_controller(name: str) -> None:
    ours = dataclasses.asdict(load_config(REPO / "configs" / name))
    theirs = controller.load_config(REPO / "configs" / name).model_dump()
    del theirs["instance"], theirs["notify"]
    assert ours == theirs


def test_defaults_match_the_controller() -> None:
    assert dataclasses.asdict(TrainerConfig()) == {
        key: value
        for key, value in controller.Config().model_dump().items()
        if key not in ("instance", "notify")
    }


def test_epochs_override_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 9\n  grad_clip: null\n")
    config = load_config(path, epochs=2)
    assert config.training.epochs == 2 and config.training.grad_clip is None
    path.write_text("data:\n  synthetic:\n    classes: two\n")
    with pytest.raises(UsageError, match=r"data\.synthetic\.classes = 'two' is invalid"):
        load_config(path)
    with pytest.raises(UsageError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_synthetic_data_is_deterministic_and_written_once(tmp_path: Path) -> None:
    spec = load_config(REPO / "configs/local.yaml").data.synthetic
    ensure_synthetic(tmp_path / "a", spec, 32)
    ensure_synthetic(tmp_path / "b", spec, 32)
    a = sorted((tmp_path / "a").rglob("*.png"))
    b = sorted((tmp_path / "b").rglob("*.png"))
    assert len(a) == 4 * (60 + 15)
    assert [p.read_bytes() for p in a[:10]] == [p.read_bytes() for p in b[:10]]
    stamp = a[0].stat().st_mtime_ns
    ensure_synthetic(tmp_path / "a", spec, 32)
    assert a[0].stat().st_mtime_ns == stamp
    with pytest.raises(TrainerError, match="did not write"):
        (tmp_path / "c/Train").mkdir(parents=True)
        ensure_synthetic(tmp_path / "c", spec, 32)


def test_the_cache_skips_unreadable_images_and_names_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("a", "B"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for n in range(3):
            Image.new("RGB", (50, 40), (n * 60, 10, 10)).save(
                tmp_path / "train" / name / f"{n}.jpg"
            )
    (tmp_path / "train/a/broken.jpg").write_bytes(b"not a jpeg")
    listing = list_split(split_dir(tmp_path, "Train"))
    assert listing.classes == ["B", "a"] and len(listing.files) == 7
    with caplog.at_level(logging.WARNING, logger="trainer"):
        split = load_split(listing, tmp_path / ".cache", 24, workers=2)
    assert split.images.shape == (6, 24, 24, 3) and split.images.dtype.name == "uint8"
    assert split.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert split.skipped == [str(tmp_path / "train/a/broken.jpg")]
    assert "Skipped 1 unreadable image(s)" in caplog.text and "broken.jpg" in caplog.text
    again = load_split(listing, tmp_path / ".cache", 24, workers=0)  # from the cache
    assert (again.images == split.images).all()
    assert len(list((tmp_path / ".cache").glob("*.npy"))) == 1


def test_augmentation_is_reproducible_and_keeps_the_batch_shape() -> None:
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    one = augment(images, torch.Generator().manual_seed(3), channels_last=True)
    two = augment(images, torch.Generator().manual_seed(3), channels_last=True)
    other = augment(images, torch.Generator().manual_seed(4), channels_last=True)
    assert one.shape == (4, 3, 32, 32) and one.dtype == torch.float32
    assert one.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(one, two) and not torch.equal(one, other)


def test_manufacturer_accuracy_groups_classes_by_maker() -> None:
    classes = ["BIO - Actros", "BIO - Cyclos", "MDT - Adapta"]
    confusion = torch.tensor([[3, 1, 0], [0, 2, 2], [0, 0, 4]])
    result = manufacturer_accuracy(confusion, classes)
    assert result is not None
    assert result["manufacturers"] == ["BIO", "MDT"]
    assert result["confusion_matrix"] == [[6, 2], [0, 4]]
    assert result["accuracy"] == pytest.approx(10 / 12)
    assert manufacturer_accuracy(confusion, ["cat", "dog", "eel"]) is None
