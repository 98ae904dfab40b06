"""Where training stands (`Position`), and its round trip through a checkpoint.

A checkpoint holds everything a resumed run needs to go on exactly where it stopped: the model,
optimizer, scheduler and loss-scaler states, the RNG, the epoch and the step inside it with the
epoch's running sums, and the best validation epoch so far (which the end's test pass reads
back from checkpoint_best.pt). The dict layout is checkpoint.py's FORMAT_VERSION.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from trainer import checkpoint
from trainer.config import TrainerConfig, as_dict
from trainer.engine import Engine
from trainer.errors import TrainerError


@dataclass
class Position:
    """Where training stands: completed epochs, steps into the next one, its running sums."""

    epoch: int = 0
    epoch_step: int = 0
    loss_sum: float = 0.0
    images: int = 0
    seconds: float = 0.0
    best_val_acc: float = 0.0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    metrics: dict[str, float] | None = None


def checkpoint_state(engine: Engine, classes: list[str], position: Position) -> dict[str, Any]:
    config = engine.config
    cuda = engine.context.device.type == "cuda"
    return {
        "format_version": checkpoint.FORMAT_VERSION,
        "epoch": position.epoch,
        "step": engine.scheduler.last_epoch,
        "epoch_step": position.epoch_step,
        "partial": {
            "loss_sum": position.loss_sum,
            "images": position.images,
            "seconds": position.seconds,
        },
        "arch": config.model.name,
        "num_classes": len(classes),
        "class_names": list(classes),
        "image_size": config.data.image_size,
        "model_state": engine.model.state_dict(),
        "optimizer_state": engine.optimizer.state_dict(),
        "scheduler_state": engine.scheduler.state_dict(),
        "scaler_state": engine.scaler.state_dict(),
        "best_val_acc": position.best_val_acc,
        "best_val_loss": position.best_val_loss,
        "best_epoch": position.best_epoch,
        "config": as_dict(config),
        "metrics": position.metrics,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if cuda else [],
        },
    }


def restore(
    engine: Engine, state: dict[str, Any], classes: list[str], config: TrainerConfig
) -> Position:
    """Load a checkpoint into the engine; it must match this run's classes, model and size."""
    expected = (classes, config.model.name, config.data.image_size)
    found = (state["class_names"], state["arch"], state["image_size"])
    if found != expected:
        raise TrainerError(
            f"the checkpoint to resume ({found[1]}, {found[2]} px, {len(found[0])} classes) does "
            f"not match this run ({expected[1]}, {expected[2]} px, {len(classes)} classes); "
            "pass --resume none or another --output."
        )
    engine.model.load_state_dict(state["model_state"])
    engine.optimizer.load_state_dict(state["optimizer_state"])
    engine.scheduler.load_state_dict(state["scheduler_state"])
    if state["scaler_state"]:
        engine.scaler.load_state_dict(state["scaler_state"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and engine.context.device.type == "cuda":
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    partial = state.get("partial") or {}
    return Position(
        epoch=state["epoch"],
        epoch_step=state.get("epoch_step", 0),
        loss_sum=partial.get("loss_sum", 0.0),
        images=partial.get("images", 0),
        seconds=partial.get("seconds", 0.0),
        best_val_acc=state["best_val_acc"],
        best_val_loss=state.get("best_val_loss", math.inf),
        best_epoch=state.get("best_epoch", 0),
        metrics=state["metrics"],
    )
