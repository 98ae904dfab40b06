"""The trainer's view of configs/*.yaml: plain dataclasses, because the host has no pydantic.

Field names and defaults mirror `pacerid_tui/config.py` (the controller's validated models), so
both sides read one file the same way. The `instance` and `notify` sections are the
controller's business and are ignored here; `name` is kept for the log. Unknown keys in the
sections the trainer reads are rejected, like the controller does: a typo must never fall back
to a default silently.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer.errors import UsageError

SOURCES = ("kaggle", "synthetic", "local")
ARCHITECTURES = ("densenet121", "resnet50", "resnet18", "mobilenet_v3_large", "efficientnet_b0")
DEVICES = ("auto", "cuda", "cpu")
AMP_DTYPES = ("auto", "fp16", "bf16", "off")


@dataclass(frozen=True)
class SyntheticConfig:
    classes: int = 4
    train_per_class: int = 60
    test_per_class: int = 15
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    source: str = "kaggle"
    dataset: str = "jamesphoward/pacemakers"
    local_dir: str | None = None
    image_size: int = 224
    batch_size: int = 32
    num_workers: int = 4
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    excludes: list[str] = field(default_factory=list)
    val_fraction: float = 0.15


@dataclass(frozen=True)
class ModelConfig:
    name: str = "densenet121"
    pretrained: bool = True


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 20
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 1
    grad_clip: float | None = 1.0
    amp_dtype: str = "auto"
    compile: bool = False
    channels_last: bool = True
    save_every_epoch_checkpoints: bool = False
    seed: int = 42
    device: str = "auto"
    stall_minutes: float | None = None  # the host watchdog's (trainer/stall.py), not ours


@dataclass(frozen=True)
class OutputConfig:
    dir: str = "output"
    model_name: str = "PacerIDClassifier"
    download_epoch_checkpoints: bool = False
    download_during_training: bool = True
    checkpoints: str = "notice"
    ios_models_dir: str = "ios/PacerID/Models"
    system_sample_s: float = 5.0


@dataclass(frozen=True)
class TrainerConfig:
    name: str = "pacerid-ml"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


CONTROLLER_SECTIONS = ("instance", "notify")
"""Sections only the controller reads; the trainer skips them."""

# (section.key, predicate, what is expected): the same bounds the controller enforces.
CHECKS: list[tuple[str, typing.Callable[[Any], bool], str]] = [
    ("data.source", lambda v: v in SOURCES, f"one of {', '.join(SOURCES)}"),
    ("data.image_size", lambda v: v >= 16, "at least 16"),
    ("data.batch_size", lambda v: v >= 1, "at least 1"),
    ("data.num_workers", lambda v: v >= 0, "0 or more"),
    ("data.val_fraction", lambda v: 0 < v <= 0.5, "greater than 0 and at most 0.5"),
    ("data.synthetic.classes", lambda v: v >= 2, "at least 2"),
    ("data.synthetic.train_per_class", lambda v: v >= 1, "at least 1"),
    ("data.synthetic.test_per_class", lambda v: v >= 1, "at least 1"),
    ("model.name", lambda v: v in ARCHITECTURES, f"one of {', '.join(ARCHITECTURES)}"),
    ("training.epochs", lambda v: v >= 1, "at least 1"),
    ("training.learning_rate", lambda v: v > 0, "greater than 0"),
    ("training.weight_decay", lambda v: v >= 0, "0 or more"),
    ("training.label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("training.warmup_epochs", lambda v: v >= 0, "0 or more"),
    ("training.grad_clip", lambda v: v is None or v > 0, "greater than 0, or null"),
    ("training.device", lambda v: v in DEVICES, f"one of {', '.join(DEVICES)}"),
    ("training.amp_dtype", lambda v: v in AMP_DTYPES, f"one of {', '.join(AMP_DTYPES)}"),
    ("training.stall_minutes", lambda v: v is None or v > 0, "greater than 0, or null"),
    ("output.system_sample_s", lambda v: v > 0, "greater than 0"),
]


def load_config(path: str | Path, epochs: int | None = None) -> TrainerConfig:
    """Read `path`; `epochs` (the CLI's --epochs) overrides training.epochs."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file; pass one with --config FILE.") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read it ({err.strerror}).") from None
    except yaml.YAMLError:
        raise UsageError(f"{path}: is not valid YAML; fix the syntax.") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of sections at the top level.")
    raw = {key: value for key, value in raw.items() if key not in CONTROLLER_SECTIONS}
    training = raw.get("training")
    if isinstance(training, dict) and training.get("amp_dtype") is False:
        raw["training"] = {**training, "amp_dtype": "off"}  # YAML 1.1 reads a bare off as false
    if epochs is not None:
        raw.setdefault("training", {})
        if isinstance(raw["training"], dict):
            raw["training"] = {**raw["training"], "epochs": epochs}
    config = build(TrainerConfig, raw, path, "")
    for key, ok, expected in CHECKS:
        value = lookup(config, key)
        if not ok(value):
            raise UsageError(f"{path}: {key} = {value!r} is invalid; it must be {expected}.")
    return config


def build(cls: type, raw: Any, path: Path, prefix: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, type-checking each field."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: {where} must be a mapping of keys.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise UsageError(
                f"{path}: unknown key '{prefix}{key}'; check its spelling (see configs/base.yaml)."
            )
    values = {key: convert(hints[key], value, path, f"{prefix}{key}") for key, value in raw.items()}
    return cls(**values)


def convert(hint: Any, value: Any, path: Path, key: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, path, f"{key}.")
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        origin = typing.get_origin(option)
        if origin is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool) and isinstance(value, option):
            return value
    raise UsageError(f"{path}: {key} = {value!r} is invalid; expected {describe(hint)}.")


def describe(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    words = [names.get(o, "a list of strings") for o in options if o is not type(None)]
    return " or ".join(words) + (" or null" if type(None) in options else "")


def lookup(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def as_dict(config: TrainerConfig) -> dict[str, Any]:
    """The resolved config as plain data (saved as config.resolved.yaml and in checkpoints)."""
    return dataclasses.asdict(config)
