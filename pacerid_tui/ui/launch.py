"""The launch form's logic, kept out of the screen: an edited config and an estimate.

`Lifecycle.create_run` takes a config *path* (the run re-reads it at every step and uploads it
as the host's run.yaml), so edits made in the form are written as a new YAML file under the
state folder and that path is passed on. Only the keys the form edits change (the `instance:`
ones and the training fields a user changes between runs); the rest of the user's file is
copied as written.

The estimate follows the guide's cost table: training images × epochs ÷ images per second,
priced with the core's per-second billing. Throughput is what this dashboard measured for the
instance type, else the guide's figure, else unknown — never a guess presented as a fact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pacerid_tui import paths
from pacerid_tui.config import Config, describe_validation_error, load_config
from pacerid_tui.core.kernel import cost
from pacerid_tui.core.kernel.errors import ConfigError
from pacerid_tui.core.kernel.models import PricePoint

GUIDE_IMAGES_PER_S = {"g4dn.xlarge": 45.0}
"""The guide's cost table (10K images × 20 epochs in about 1–1.5 h on a g4dn.xlarge, densenet121
at 224 px) as throughput; used only until a run of that type has been measured."""


TRAINING_FIELDS: dict[str, type] = {
    "model.name": str,
    "training.epochs": int,
    "training.learning_rate": float,
    "data.batch_size": int,
    "data.image_size": int,
}
"""The training keys the form edits, with the type each is typed in as."""


@dataclass(frozen=True)
class Choice:
    """What the form lets the user change."""

    instance_type: str
    market: str
    max_price: float | None
    training: dict[str, str] = field(default_factory=dict)
    """TRAINING_FIELDS key → the text typed (an empty text keeps the file's value)."""


def training_value(path: Path, key: str, text: str) -> object:
    kind = TRAINING_FIELDS[key]
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number, e.g. 0.0003"
        raise ConfigError(f"{path}: {key} = {text!r} is invalid; it must be {what}.") from None


def edited(path: Path, choice: Choice) -> tuple[dict[str, Any], Config]:
    """The file's raw YAML with the choice applied, and its validated Config."""
    load_config(path)  # the file's own errors first, worded the usual way
    raw = yaml.safe_load(path.read_text()) or {}
    instance = dict(raw.get("instance") or {})
    instance.update(instance_type=choice.instance_type, market=choice.market)
    instance["max_price"] = choice.max_price
    raw["instance"] = instance
    for key, text in choice.training.items():
        if text.strip():
            section, name = key.split(".")
            raw[section] = {**(raw.get(section) or {}), name: training_value(path, key, text)}
    try:
        return raw, Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(path, err)) from None


def write_launch_config(raw: dict[str, Any], config: Config, source: Path) -> Path:
    """Save the edited config under the state folder; the run keeps pointing at this file."""
    folder = paths.home() / "launch-configs"
    folder.mkdir(exist_ok=True)
    target = folder / f"{source.stem}-{time.strftime('%Y%m%d-%H%M%S')}.yaml"
    header = f"# {source.resolve()} as edited in the dashboard's launch form\n"
    target.write_text(header + yaml.safe_dump(raw, sort_keys=False))
    return target


def dataset_images(config: Config) -> int | None:
    """Training images per epoch, where the config says (synthetic data); else unknown."""
    if config.data.source == "synthetic":
        return config.data.synthetic.classes * config.data.synthetic.train_per_class
    return None


@dataclass(frozen=True)
class Estimate:
    images: int | None
    epochs: int
    images_per_s: float | None
    source: str
    """Where the throughput comes from: "measured", "the guide" or ""."""
    seconds: float | None
    cost_usd: float | None

    def text(self, price: float | None) -> str:
        if self.images is None:
            return (
                f"{self.epochs} epochs; dataset size unknown until the data is fetched, "
                "so duration and cost are unknown."
            )
        head = f"{self.images:,} images × {self.epochs} epochs"
        if self.seconds is None or self.images_per_s is None:
            return f"{head}; no measured throughput for this type yet: duration unknown."
        minutes = self.seconds / 60
        took = f"{minutes:.0f} min" if minutes >= 1 else f"{self.seconds:.0f} s"
        spent = "unknown" if self.cost_usd is None else f"${self.cost_usd:.2f}"
        at = "" if price is None else f" at ${price:.4f}/h"
        return (
            f"{head} at {self.images_per_s:.0f} img/s ({self.source}) ≈ {took} "
            f"of training, ≈ {spent}{at} (setup and data not included)."
        )


def estimate(
    config: Config,
    measured: dict[str, float],
    price_per_hour: float | None,
    images: int | None = None,
) -> Estimate:
    """Duration and cost of training: `images` a Kaggle dataset holds, as Kaggle listed it
    (core/steps/dataset_size.py), or what the config says, at the images/s measured for the
    type by earlier runs, else the guide's."""
    images = dataset_images(config) or images
    kind = config.instance.instance_type if config.instance.provider == "aws" else "local"
    speed, source = measured.get(kind), "measured"
    if speed is None and config.instance.provider == "aws":
        speed, source = GUIDE_IMAGES_PER_S.get(kind), "the guide"
    epochs = config.training.epochs
    if images is None or not speed:
        return Estimate(images, epochs, speed, source if speed else "", None, None)
    seconds = images * epochs / speed
    spent = None
    if price_per_hour is not None:
        spent = cost.cost_usd([PricePoint(0.0, price_per_hour)], 0.0, seconds)
    return Estimate(images, epochs, speed, source, seconds, spent)
