"""Checkpoint files: written atomically, read defensively.

A spot host can vanish mid-write, so every file is written to a temporary name and moved into
place with `os.replace`; a reader sees the old file or the new one, never half of one. Even so,
a disk can fill up or a copy can be cut short, so resuming tries `checkpoint_latest.pt` first
and falls back to the newest epoch checkpoint that loads (kept only with
`training.save_every_epoch_checkpoints`), then to `checkpoint_best.pt`, saying which one it
took. The host keeps those two full checkpoints (84 MB each for densenet121), not one per epoch.
The dict layout (FORMAT_VERSION) is shared with trainer/export.py and the controller.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from trainer.errors import TrainerError

FORMAT_VERSION = 1
LATEST = "checkpoint_latest.pt"
BEST = "checkpoint_best.pt"
FINAL = "model_final.pt"
BEST_FP16 = "model_best_fp16.pt"
"""The best weights alone, in half precision: what the controller fetches during training."""
WEIGHT_KEYS = (
    "format_version",
    "epoch",
    "arch",
    "num_classes",
    "class_names",
    "image_size",
    "best_val_acc",
    "metrics",
)
REQUIRED_KEYS = (
    "format_version",
    "epoch",
    "step",
    "arch",
    "num_classes",
    "class_names",
    "image_size",
    "model_state",
    "optimizer_state",
    "scheduler_state",
    "scaler_state",
    "best_val_acc",
    "config",
    "metrics",
    "rng",
)
EPOCH_PATTERN = re.compile(r"checkpoint_epoch_(\d{3,})\.pt")

log = logging.getLogger(__name__)


def epoch_name(epoch: int) -> str:
    """`checkpoint_epoch_NNN.pt` for the 1-based epoch just completed."""
    return f"checkpoint_epoch_{epoch:03d}.pt"


def save(state: dict[str, Any], *paths: Path) -> None:
    """Serialise once, then copy the file to every other path (each written atomically).

    Copies, not hard links: a file damaged in place must not take its fallback down with it.
    """
    first = paths[0].with_name(f".{paths[0].name}.tmp{os.getpid()}")
    torch.save(state, first)
    for path in paths[1:]:
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        shutil.copyfile(first, tmp)
        os.replace(tmp, path)
    os.replace(first, paths[0])


def half_weights(state: dict[str, Any]) -> dict[str, Any]:
    """`state` without optimizer, scheduler, scaler or RNG state, its floating weights in half
    precision: enough to export the model, a fraction of the resumable checkpoint's size, so
    it can cross the network after every improvement. Integer buffers stay as they are."""
    weights = {
        key: value.half() if value.is_floating_point() else value
        for key, value in state["model_state"].items()
    }
    return {**{key: state[key] for key in WEIGHT_KEYS}, "model_state": weights}


def load(path: Path) -> dict[str, Any]:
    """A checkpoint dict, or TrainerError naming the file and what is wrong with it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainerError(f"{path} does not exist.") from None
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise TrainerError(f"{path} is unreadable ({type(err).__name__}).") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise TrainerError(f"{path} is not a format-{FORMAT_VERSION} pacerid checkpoint.")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise TrainerError(f"{path} lacks {', '.join(missing)}.")
    return state


def find_resume(output_dir: Path, resume: str) -> dict[str, Any] | None:
    """The checkpoint to resume from: --resume none|auto|PATH."""
    if resume == "none":
        return None
    if resume != "auto":
        return load(Path(resume))
    # Each epoch file is at least as new as best (one is written every epoch when any is).
    candidates = [output_dir / LATEST, *newest_epoch_files(output_dir), output_dir / BEST]
    existing = [path for path in candidates if path.exists()]
    for path in existing:
        try:
            state = load(path)
        except TrainerError as err:
            log.warning("%s Trying an older checkpoint.", err)
            continue
        if path != existing[0]:
            log.warning("Resuming from %s instead of %s.", path.name, existing[0].name)
        return state
    if existing:
        log.warning("No checkpoint in %s could be read; starting from scratch.", output_dir)
    return None


def newest_epoch_files(output_dir: Path) -> list[Path]:
    if not output_dir.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in output_dir.iterdir()
        if (match := EPOCH_PATTERN.fullmatch(path.name))
    ]
    return [path for _, path in sorted(found, reverse=True)]
