"""The trainer's pieces on their own: config parity with the controller, the synthetic set, the
image cache and 16-bit films, the batch augmentation, the report's manufacturer view and the
precision chosen for a GPU's compute capability."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pacerid_tui import config as controller
from pacerid_tui.core.kernel.errors import ConfigError
from tests.trainer.support import REPO
from trainer import precision
from trainer.augment import augment
from trainer.config import TrainerConfig, load_config
from trainer.data import decode, load_split
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: {val_fraction: 0.0}", "data.val_fraction = 0.0 is invalid"),
        ("data: {val_fraction: 0.6}", "data.val_fraction = 0.6 is invalid"),
        ("training: {amp_dtype: fp8}", "training.amp_dtype = 'fp8' is invalid"),
        ("training: {amp: true}", "unknown key 'training.amp'"),  # amp_dtype replaced it
        ("training: {save_every_epoch_checkpoints: sometimes}", "save_every_epoch_checkpoints"),
    ],
)
def test_new_keys_are_checked_on_both_sides_in_one_sentence(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    with pytest.raises(UsageError, match=re.escape(message)) as ours:
        load_config(path)
    with pytest.raises(ConfigError, match=re.escape(message)) as theirs:
        controller.load_config(path)
    for error in (ours.value, theirs.value):
        assert len(str(error).splitlines()) == 1 and str(error).endswith(".")


def test_a_bare_off_is_off_on_both_sides(tmp_path: Path) -> None:
    """YAML 1.1 reads `off` as false; both sides take it for the dtype `off`."""
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  amp_dtype: off\n")
    assert load_config(path).training.amp_dtype == "off"
    assert controller.load_config(path).training.amp_dtype == "off"


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


@pytest.mark.parametrize(
    ("setting", "capability", "dtype", "scaled"),
    [
        ("auto", (7, 5), torch.float16, True),  # a T4: no native bf16, so fp16 with a scaler
        ("auto", (8, 0), torch.bfloat16, False),  # an A100
        ("auto", (8, 6), torch.bfloat16, False),  # an A10G (g5)
        ("auto", (9, 0), torch.bfloat16, False),  # an H100
        ("off", (9, 0), None, False),
        ("off", (7, 5), None, False),
        ("fp16", (9, 0), torch.float16, True),
        ("bf16", (7, 5), torch.bfloat16, False),  # forced: it runs, emulated, and says so
        ("auto", None, None, False),  # a CPU trains in float32
    ],
)
def test_the_dtype_follows_the_gpu_capability(
    setting: str, capability: tuple[int, int] | None, dtype: torch.dtype | None, scaled: bool
) -> None:
    chosen = precision.choose(setting, "a GPU", capability)
    assert (chosen.dtype, chosen.scaled) == (dtype, scaled)
    assert chosen.emulated == (setting == "bf16" and capability == (7, 5))
    assert ("emulated" in chosen.describe()) == chosen.emulated
    assert chosen.record()["capability"] == (capability and f"{capability[0]}.{capability[1]}")


def test_a_16_bit_film_is_scaled_by_its_range_not_clipped(tmp_path: Path) -> None:
    """A 12-bit film in a 16-bit PNG (values 1,000-4,000): PIL's own conversion to RGB clips
    every value above 255 to white; scaled by its range, the gradient survives."""
    ramp = np.linspace(1000, 4000, 64, dtype=np.uint16)[None, :].repeat(16, axis=0)
    path = tmp_path / "film.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I")  # PIL reads it as a 16-bit (or 32-bit) integer image
        assert np.asarray(image.convert("RGB")).min() == 255  # clipped: all white
    decoded = decode(path, 16)
    assert decoded is not None and decoded.shape == (16, 16, 3)
    row = decoded[8, :, 0].astype(int)
    assert row[0] < 10 and row[-1] > 245 and (np.diff(row) >= 0).all()
    assert (decoded[..., 0] == decoded[..., 1]).all()  # grey stays grey
