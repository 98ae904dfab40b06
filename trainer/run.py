"""The `train` command: data → engine → (resume) → epochs → the chosen model's test → report.

Shaped around the host contract and around being stopped at any moment: every epoch ends with
checkpoints, a stop request ends the current step with a checkpoint that records where in the
epoch it was (and the epoch's running loss), and `--resume auto` picks all of it up again so a
resumed run produces the same weights as an uninterrupted one (bit for bit on a CPU; see
engine.py for a GPU). The best epoch is chosen on a validation split held out of Train; the
Test split is evaluated once, at the end, on that epoch's model, so its figures are a test
result and not a maximum picked over epochs. Only the primary process of a torchrun group
writes; every process computes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
import yaml

from trainer import checkpoint, distributed
from trainer.config import TrainerConfig, as_dict
from trainer.data import Split, hold_out, load_split
from trainer.distributed import Context, sum_across
from trainer.engine import (
    DataWait,
    Engine,
    Evaluation,
    build_engine,
    derived_seed,
    evaluate,
    refresh_batchnorm,
    train_steps,
)
from trainer.errors import EXIT_INTERRUPTED, EXIT_OK, TrainerError
from trainer.fault_hooks import steady
from trainer.interrupt import StopFlag, catch_signals, metadata_url, watch_spot_notice
from trainer.layout import check_classes, list_split, split_dir
from trainer.metrics import Recorder, add_log_file, write_json_atomic
from trainer.position import Position, checkpoint_state, restore
from trainer.precision import for_device
from trainer.report import PNG_NAME, build_report, draw_confusion
from trainer.synthetic import ensure_synthetic
from trainer.system import SystemSampler

log = logging.getLogger(__name__)

HOLD_OUT_STREAM = 3
"""The validation split's seed is derived_seed(seed, HOLD_OUT_STREAM): two parts, where every
other draw's has three or more (engine.py), so it repeats none of theirs."""


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
            device = for_device(config.training.amp_dtype, context.device).record()
            sampler = SystemSampler(output_dir, config.output.system_sample_s, device).start()
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
    train_split, val_split, test_split, classes = prepare_data(config, data_dir, context)
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
            **engine.precision.record(),
        )
        recorder.status("training", epoch=position.epoch)
    log.info(
        "Training %s on %s (%d process(es)): %d classes, %d steps per epoch, epochs %d→%d.",
        config.model.name,
        engine.precision.describe(),
        context.world_size,
        len(classes),
        engine.steps_per_epoch,
        position.epoch + 1,
        epochs,
    )
    durations: list[float] = []
    while position.epoch < epochs:
        started = time.monotonic()
        if not train_epoch(engine, train_split, position, flag, recorder):
            return interrupted(engine, classes, position, flag, output_dir, recorder)
        refresh_batchnorm(engine, train_split, position.epoch)
        evaluation = evaluate(engine, val_split, len(classes))
        steady(started)  # only tests set a pace (fault_hooks.py)
        finish_epoch(engine, classes, position, evaluation, durations, output_dir, recorder)
        if stop_requested(flag, context) and position.epoch < epochs:
            return interrupted(engine, classes, position, flag, output_dir, recorder)
    return test_best(engine, classes, position, test_split, output_dir, recorder)


def test_best(
    engine: Engine,
    classes: list[str],
    position: Position,
    test_split: Split,
    output_dir: Path,
    recorder: Recorder | None,
) -> int:
    """The one look at Test: the best epoch's model (from checkpoint_best.pt, which every
    process reads once the primary has written it), then report.json and the `done` event."""
    distributed.barrier(engine.context)
    best = checkpoint.load(output_dir / checkpoint.BEST)
    engine.model.load_state_dict(best["model_state"])
    test = evaluate(engine, test_split, len(classes))
    report = build_report(
        test,
        classes,
        best["epoch"],
        best["best_val_acc"],
        validation=best["metrics"],
        epochs_trained=position.epoch,
    )
    makers = report["manufacturer"]
    if recorder is not None:
        write_json_atomic(output_dir / "report.json", report)
        draw_confusion(test.confusion, classes, output_dir / PNG_NAME)
    log.info(
        "Test, once, on epoch %d's model (best validation accuracy %.1f%%): accuracy %.1f%% on "
        "%d images%s.",
        best["epoch"],
        100 * best["best_val_acc"],
        100 * test.accuracy,
        report["images"],
        f", manufacturer {100 * makers['accuracy']:.1f}%" if makers else "",
    )
    # The log's last lines before the `done` event: a follower ends once it has read every
    # file to the size it had when it saw that event (core/remote/file_follower.py), so lines
    # written after it could be missing from a live log.
    log.info("Done.")
    if recorder is not None:
        recorder.event(
            "done",
            epoch=position.epoch,
            epochs=engine.config.training.epochs,
            best_epoch=best["epoch"],
            best_val_acc=best["best_val_acc"],
            test_acc=test.accuracy,
            test_top5=test.top5,
            test_loss=test.loss,
            test_images=report["images"],
            manufacturer_acc=makers["accuracy"] if makers else None,
        )
        recorder.status("done", epoch=position.epoch)
    return EXIT_OK


def prepare_data(
    config: TrainerConfig, data_dir: Path, context: Context
) -> tuple[Split, Split, Split, list[str]]:
    """The decoded Train (less its validation part), validation and Test splits (the primary
    builds caches; the others wait)."""
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
    whole_train, test_split = splits
    classes = train_listing.classes
    seed = derived_seed(config.training.seed, HOLD_OUT_STREAM)
    train_split, val_split = hold_out(whole_train, classes, config.data.val_fraction, seed)
    log.info(
        "Data: %d classes, %d training, %d validation (held out of Train) and %d test images "
        "(%d unreadable skipped).",
        len(classes),
        len(train_split.labels),
        len(val_split.labels),
        len(test_split.labels),
        len(whole_train.skipped) + len(test_split.skipped),
    )
    return train_split, val_split, test_split, classes


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
        "val_images": int(evaluation.confusion.sum()),
    }
    best = (position.best_val_acc, -position.best_val_loss)
    improved = (evaluation.accuracy, -evaluation.loss) > best or position.epoch == 1
    if improved:  # ties in accuracy (a small validation set has many) go to the lower loss
        position.best_val_acc, position.best_val_loss = evaluation.accuracy, evaluation.loss
        position.best_epoch = position.epoch
    epoch_seconds = position.seconds
    position.epoch_step, position.loss_sum, position.images, position.seconds = 0, 0.0, 0, 0.0
    if recorder is None:
        return
    names = [checkpoint.LATEST]
    if engine.config.training.save_every_epoch_checkpoints:
        names.append(checkpoint.epoch_name(position.epoch))
    if improved:
        names.append(checkpoint.BEST)
    if position.epoch == epochs:  # the last epoch's state, under the name the guide used
        names.append(checkpoint.FINAL)
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
