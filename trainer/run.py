"""The `train` command: data → engine → (resume) → epochs → final model and report.

Shaped around the host contract and around being stopped at any moment: every epoch ends with
checkpoints, a stop request ends the current step with a checkpoint that records where in the
epoch it was (and the epoch's running loss), and `--resume auto` picks all of it up again so a
resumed run produces the same weights as an uninterrupted one. Only the primary process of a
torchrun group writes; every process computes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from trainer import checkpoint, distributed
from trainer.config import TrainerConfig, as_dict
from trainer.data import Split, load_split
from trainer.distributed import Context, sum_across
from trainer.engine import (
    DataWait,
    Engine,
    Evaluation,
    build_engine,
    evaluate,
    refresh_batchnorm,
    train_steps,
)
from trainer.errors import EXIT_INTERRUPTED, EXIT_OK, TrainerError
from trainer.interrupt import StopFlag, catch_signals, metadata_url, watch_spot_notice
from trainer.layout import check_classes, list_split, split_dir
from trainer.metrics import Recorder, add_log_file, write_json_atomic
from trainer.report import PNG_NAME, build_report, draw_confusion
from trainer.synthetic import ensure_synthetic
from trainer.system import SystemSampler

log = logging.getLogger(__name__)


@dataclass
class Position:
    """Where training stands: completed epochs, steps into the next one, its running sums."""

    epoch: int = 0
    epoch_step: int = 0
    loss_sum: float = 0.0
    images: int = 0
    seconds: float = 0.0
    best_val_acc: float = 0.0
    metrics: dict[str, float] | None = None


def train(config: TrainerConfig, data_dir: Path, output_dir: Path, resume: str) -> int:
    context = distributed.start(config.training.device)
    recorder = None
    sampler = None
    try:
        if context.is_primary:
            output_dir.mkdir(parents=True, exist_ok=True)
            add_log_file(output_dir / "train.log")
            recorder = Recorder(output_dir, config.training.epochs)
            recorder.status("starting")
            sampler = SystemSampler(output_dir, config.output.system_sample_s).start()
        try:
            return run(config, data_dir, output_dir, resume, context, recorder)
        except Exception as err:
            if recorder is not None:
                message = str(err) if isinstance(err, TrainerError) else repr(err)
                if not isinstance(err, TrainerError):
                    log.exception("Training failed.")
                recorder.event("error", message=message)
                recorder.status("error", message=message)
            raise
    finally:
        if sampler is not None:
            sampler.stop()
        if recorder is not None:
            recorder.close()
        distributed.stop(context)


def run(
    config: TrainerConfig,
    data_dir: Path,
    output_dir: Path,
    resume: str,
    context: Context,
    recorder: Recorder | None,
) -> int:
    flag = StopFlag()
    catch_signals(flag)
    url = metadata_url()
    if url is not None and context.is_primary:
        watch_spot_notice(flag, url)
    train_split, test_split, classes = prepare_data(config, data_dir, context)
    engine = build_engine(config, len(classes), context, len(train_split.labels))
    position = Position()
    state = checkpoint.find_resume(output_dir, resume)
    if state is not None:
        position = restore(engine, state, classes, config)
        log.info(
            "Resuming after epoch %d (step %d of the next).", position.epoch, position.epoch_step
        )
    epochs = config.training.epochs
    if recorder is not None and recorder.supersede(position.epoch):
        log.info("Epochs after %d run again: the earlier ones are superseded.", position.epoch)
    if recorder is not None:
        (output_dir / "config.resolved.yaml").write_text(
            yaml.safe_dump(as_dict(config), sort_keys=False)
        )
        recorder.event(
            "start",
            epochs=epochs,
            epoch=position.epoch,
            steps=engine.steps_per_epoch,
            classes=classes,
            world_size=context.world_size,
            device=str(context.device),
        )
        recorder.status("training", epoch=position.epoch)
    log.info(
        "Training %s on %s (%d process(es)): %d classes, %d steps per epoch, epochs %d→%d.",
        config.model.name,
        context.device,
        context.world_size,
        len(classes),
        engine.steps_per_epoch,
        position.epoch + 1,
        epochs,
    )
    durations: list[float] = []
    while position.epoch < epochs:
        if not train_epoch(engine, train_split, position, flag, recorder):
            return interrupted(engine, classes, position, flag, output_dir, recorder)
        refresh_batchnorm(engine, train_split)
        evaluation = evaluate(engine, test_split, len(classes))
        finish_epoch(engine, classes, position, evaluation, durations, output_dir, recorder)
        if stop_requested(flag, context) and position.epoch < epochs:
            return interrupted(engine, classes, position, flag, output_dir, recorder)
    evaluation = evaluate(engine, test_split, len(classes))
    if recorder is not None:
        final = checkpoint_state(engine, classes, position)
        checkpoint.save(final, output_dir / checkpoint.FINAL)
        report = build_report(evaluation, classes, position.epoch, position.best_val_acc)
        write_json_atomic(output_dir / "report.json", report)
        draw_confusion(evaluation.confusion, classes, output_dir / PNG_NAME)
        recorder.event(
            "done",
            epoch=position.epoch,
            epochs=epochs,
            val_acc=evaluation.accuracy,
            best_val_acc=position.best_val_acc,
        )
        recorder.status("done", epoch=position.epoch)
    log.info("Done: validation accuracy %.1f%%.", 100 * evaluation.accuracy)
    return EXIT_OK


def prepare_data(
    config: TrainerConfig, data_dir: Path, context: Context
) -> tuple[Split, Split, list[str]]:
    """The decoded Train and Test splits (the primary builds caches; the others wait)."""
    if config.data.source == "synthetic" and context.is_primary:
        ensure_synthetic(data_dir, config.data.synthetic, config.data.image_size)
    distributed.barrier(context)
    train_listing = list_split(split_dir(data_dir, "Train"))
    test_listing = list_split(split_dir(data_dir, "Test"))
    check_classes(train_listing, test_listing)
    cache = data_dir / ".cache"
    size, workers = config.data.image_size, config.data.num_workers
    splits: list[Split] = []
    for turn in ("primary", "others"):
        if context.is_primary == (turn == "primary"):
            splits = [
                load_split(listing, cache, size, workers)
                for listing in (train_listing, test_listing)
            ]
        distributed.barrier(context)
    train_split, test_split = splits
    log.info(
        "Data: %d classes, %d training and %d test images (%d unreadable skipped).",
        len(train_listing.classes),
        len(train_split.labels),
        len(test_split.labels),
        len(train_split.skipped) + len(test_split.skipped),
    )
    return train_split, test_split, train_listing.classes


def train_epoch(
    engine: Engine, split: Split, position: Position, flag: StopFlag, recorder: Recorder | None
) -> bool:
    """Train the rest of epoch position.epoch + 1; False when a stop request ended it early.

    Every `every` steps a step event reports the interval's mean loss (smoothed: one batch's
    loss is noisy), the learning rate, images/s and `data_wait`, the share of the interval's
    wall time spent waiting for batches. The loss sums stay on the device between events, so
    an event costs one synchronisation, not one per step.
    """
    context, steps = engine.context, engine.steps_per_epoch
    every = max(1, min(10, steps // 4))
    loss_sum = torch.zeros((), dtype=torch.float64, device=context.device)
    window_loss = torch.zeros((), dtype=torch.float64, device=context.device)
    started = window_start = time.monotonic()
    window_images = 0
    wait = DataWait()
    for step, loss, images in train_steps(engine, split, position.epoch, position.epoch_step, wait):
        loss_sum += loss.double() * images
        window_loss += loss.double() * images
        position.images += images * context.world_size
        window_images += images * context.world_size
        position.epoch_step = step + 1
        if (step + 1) % every == 0 or step + 1 == steps:
            if recorder is not None:
                mean_loss = window_loss.item() / max(1, window_images // context.world_size)
                now = time.monotonic()
                elapsed = max(now - window_start, 1e-9)
                recorder.event(
                    "step",
                    epoch=position.epoch + 1,
                    step=step + 1,
                    steps=steps,
                    loss=round(mean_loss, 6),
                    lr=engine.optimizer.param_groups[0]["lr"],
                    images_per_s=round(window_images / elapsed, 1),
                    data_wait=round(min(1.0, wait.seconds / elapsed), 3),
                )
            window_loss.zero_()
            window_start, window_images, wait.seconds = time.monotonic(), 0, 0.0
        if stop_requested(flag, context):
            break
    position.loss_sum += float(sum_across(context, loss_sum).item())
    position.seconds += time.monotonic() - started
    return position.epoch_step >= steps


def finish_epoch(
    engine: Engine,
    classes: list[str],
    position: Position,
    evaluation: Evaluation,
    durations: list[float],
    output_dir: Path,
    recorder: Recorder | None,
) -> None:
    """Close the epoch: its event, its checkpoints, and reset the running sums."""
    epochs = engine.config.training.epochs
    train_loss = position.loss_sum / max(1, position.images)
    images_per_s = position.images / max(position.seconds, 1e-9)
    durations.append(position.seconds)
    position.epoch += 1
    position.metrics = {
        "train_loss": train_loss,
        "val_loss": evaluation.loss,
        "val_acc": evaluation.accuracy,
        "val_top5": evaluation.top5,
    }
    improved = evaluation.accuracy > position.best_val_acc or position.epoch == 1
    if improved:
        position.best_val_acc = evaluation.accuracy
    epoch_seconds = position.seconds
    position.epoch_step, position.loss_sum, position.images, position.seconds = 0, 0.0, 0, 0.0
    if recorder is None:
        return
    names = [checkpoint.LATEST]
    if engine.config.training.save_every_epoch_checkpoints:
        names.append(checkpoint.epoch_name(position.epoch))
    if improved:
        names.append(checkpoint.BEST)
    state = checkpoint_state(engine, classes, position)
    if improved:  # first: the full best of the same epoch is never the older of the two
        checkpoint.save(checkpoint.half_weights(state), output_dir / checkpoint.BEST_FP16)
    checkpoint.save(state, *(output_dir / n for n in names))
    eta = sum(durations) / len(durations) * (epochs - position.epoch)
    recorder.event(
        "epoch",
        epoch=position.epoch,
        epochs=epochs,
        train_loss=train_loss,
        val_loss=evaluation.loss,
        val_acc=evaluation.accuracy,
        val_top5=evaluation.top5,
        epoch_seconds=round(epoch_seconds, 3),
        eta_seconds=round(eta, 1),
        images_per_s=round(images_per_s, 1),
    )
    recorder.status("training", epoch=position.epoch)
    log.info(
        "Epoch %d/%d: train loss %.4f, val loss %.4f, val acc %.1f%%, top-5 %.1f%%, "
        "%.1f s (%.0f img/s), ETA %.0f s.",
        position.epoch,
        epochs,
        train_loss,
        evaluation.loss,
        100 * evaluation.accuracy,
        100 * evaluation.top5,
        epoch_seconds,
        images_per_s,
        eta,
    )


def stop_requested(flag: StopFlag, context: Context) -> bool:
    """Whether any process was asked to stop (all agree, so all stop at the same step)."""
    if context.world_size == 1:
        return flag.is_set()
    vote = torch.tensor([1.0 if flag.is_set() else 0.0], device=context.device)
    return bool(sum_across(context, vote).item() > 0)


def interrupted(
    engine: Engine,
    classes: list[str],
    position: Position,
    flag: StopFlag,
    output_dir: Path,
    recorder: Recorder | None,
) -> int:
    reason = flag.reason or "another process was asked to stop"
    if recorder is not None:
        checkpoint.save(checkpoint_state(engine, classes, position), output_dir / checkpoint.LATEST)
        message = (
            f"{reason}; checkpoint saved after epoch {position.epoch} step {position.epoch_step}"
        )
        recorder.event("interrupted", epoch=position.epoch, message=message)
        recorder.status("interrupted", epoch=position.epoch, message=message)
    log.warning("Stopped (%s); resume with --resume auto.", reason)
    return EXIT_INTERRUPTED


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
        metrics=state["metrics"],
    )
