"""The training step and the evaluation pass, and everything they need set up.

timm's habits: AMP only on CUDA (the dtype from the GPU's capability, trainer/precision.py: bf16
where it is native, else fp16 with a loss scaler), `channels_last`, cuDNN's autotuner (fixed
shapes), fused AdamW on CUDA, optional `torch.compile`, linear warm-up then cosine decay stepped
per batch, label smoothing, gradient clipping. Every random draw that shapes an epoch (the
sample order, the augmentation, dropout, the precise-BN sample) is derived from (seed, epoch,
step), so stopping anywhere and resuming replays exactly the same run on a CPU. On a GPU it
replays the same draws, but not bit for bit: cuDNN's autotuned and atomic-add kernels sum in
varying orders, so a resumed run's weights differ from an uninterrupted one's in the last bits.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, TensorDataset

from trainer.augment import augment, prepare_eval
from trainer.config import TrainerConfig
from trainer.data import Split, batches
from trainer.distributed import Context, sum_across
from trainer.fault_hooks import fault, hang
from trainer.model import build_model
from trainer.precision import Precision, for_device

PRECISE_BN_IMAGES = 512
"""Images re-estimating BatchNorm's averages after each epoch: 16 batches of 32, a random sample
of Train drawn per epoch. Averages settle long before the whole set; the bound keeps the pass a
fixed, small cost whatever the set's size (over the whole set it was a forward pass per training
image, about a third of the epoch's own work)."""
BN_STREAM = 2
"""The precise-BN sample's seed is derived_seed(seed, epoch, BN_STREAM): three parts, where the
steps' draws have four or five, so it never repeats one of theirs."""


@dataclass
class Engine:
    model: nn.Module  # the bare module: its state_dict has no DDP/compile prefixes
    net: nn.Module  # what the step calls: possibly compiled and DDP-wrapped
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    autocast: Callable[[], contextlib.AbstractContextManager[None]]
    precision: Precision
    config: TrainerConfig
    context: Context
    steps_per_epoch: int


@dataclass
class DataWait:
    """Seconds the training loop spent waiting for its next batch (the caller resets it)."""

    seconds: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    top5: float
    confusion: torch.Tensor  # [true, predicted] counts


def steps_per_epoch(images: int, batch_size: int, world_size: int) -> int:
    """Full batches per process (the last partial one is dropped; BatchNorm dislikes tiny ones)."""
    per_process = math.ceil(images / world_size)
    return max(1, per_process // batch_size)


def build_engine(
    config: TrainerConfig, num_classes: int, context: Context, train_images: int
) -> Engine:
    training = config.training
    cuda = context.device.type == "cuda"
    precision = for_device(training.amp_dtype, context.device)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: the fastest kernels, found once
    torch.manual_seed(training.seed)  # the initial weights
    model = build_model(config.model.name, num_classes, config.model.pretrained)
    memory_format = torch.channels_last if training.channels_last else torch.contiguous_format
    model = model.to(context.device).to(memory_format=memory_format)
    net: nn.Module = model
    if training.compile:
        net = torch.compile(model)  # type: ignore[assignment]
    if context.world_size > 1:
        net = DistributedDataParallel(net, device_ids=[context.device.index] if cuda else None)
    steps = steps_per_epoch(train_images, config.data.batch_size, context.world_size)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=training.learning_rate,
        weight_decay=training.weight_decay,
        fused=cuda or None,  # one kernel for all parameters on a GPU
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(training.warmup_epochs * steps, training.epochs * steps)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and precision.scaled)
    dtype = precision.dtype

    def autocast() -> contextlib.AbstractContextManager[None]:
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=dtype)

    return Engine(
        model, net, optimizer, scheduler, scaler, autocast, precision, config, context, steps
    )


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor for optimizer step i: linear ramp over warm-up, then half a cosine to zero."""
    warmup_steps = min(warmup_steps, total_steps - 1)

    def factor(i: int) -> float:
        if i < warmup_steps:
            return (i + 1) / warmup_steps
        progress = (i - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from (seed, epoch, step, rank…): independent streams, no arithmetic clashes."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_order(engine: Engine, split: Split, epoch: int) -> torch.Tensor:
    """This process's sample order for 0-based `epoch`, trimmed to whole batches."""
    context = engine.context
    sampler: DistributedSampler[tuple[torch.Tensor, ...]] = DistributedSampler(
        TensorDataset(split.labels),
        num_replicas=context.world_size,
        rank=context.rank,
        shuffle=True,
        seed=engine.config.training.seed,
    )
    sampler.set_epoch(epoch)
    order = torch.tensor(list(sampler), dtype=torch.int64)
    return order[: engine.steps_per_epoch * engine.config.data.batch_size]


def train_steps(
    engine: Engine, split: Split, epoch: int, first_step: int, wait: DataWait | None = None
) -> Iterator[tuple[int, torch.Tensor, int]]:
    """Run 0-based `epoch` from `first_step`; yield (step, loss, images) after each step.

    `wait` adds up the time spent blocked on the next batch: against the wall time of the
    same steps, it says whether the input pipeline starves the device.
    """
    config, context = engine.config, engine.context
    batch_size = config.data.batch_size
    order = epoch_order(engine, split, epoch)[first_step * batch_size :]
    engine.net.train()
    loader = batches(split, order, batch_size, context.device)
    step = first_step
    injected = fault(epoch)  # only tests set one (fault_hooks.py)
    while True:
        asked = time.perf_counter()
        if injected == "hang":
            hang()
        batch = next(loader, None)
        if wait is not None:
            wait.seconds += time.perf_counter() - asked
        if batch is None:
            break
        images, labels = batch
        seed = config.training.seed
        torch.manual_seed(derived_seed(seed, epoch, step, context.rank, 1))  # dropout
        generator = torch.Generator().manual_seed(derived_seed(seed, epoch, step, context.rank))
        inputs = augment(images, generator, config.training.channels_last)
        with engine.autocast():
            loss = F.cross_entropy(
                engine.net(inputs), labels, label_smoothing=config.training.label_smoothing
            )
        if injected == "nan":
            loss = loss * float("nan")
        engine.optimizer.zero_grad(set_to_none=True)
        engine.scaler.scale(loss).backward()
        if config.training.grad_clip is not None:
            engine.scaler.unscale_(engine.optimizer)
            nn.utils.clip_grad_norm_(engine.model.parameters(), config.training.grad_clip)
        engine.scaler.step(engine.optimizer)
        engine.scaler.update()
        engine.scheduler.step()
        yield step, loss.detach(), len(labels)
        step += 1


@torch.no_grad()
def refresh_batchnorm(engine: Engine, split: Split, epoch: int) -> None:
    """Re-estimate BatchNorm statistics with the final weights of 0-based `epoch` ("precise BN").

    The running averages trail the weights by many steps; early in training, at a high learning
    rate, that lag alone can make evaluation look like chance. A forward pass over a sample of
    the training set (PRECISE_BN_IMAGES, drawn anew each epoch), un-augmented like the
    evaluation inputs, replaces them with exact averages.
    """
    norms = [m for m in engine.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    context, batch_size = engine.context, engine.config.data.batch_size
    seed = derived_seed(engine.config.training.seed, epoch, BN_STREAM)
    sample = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(seed))
    order = sample[:PRECISE_BN_IMAGES][context.rank :: context.world_size]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    engine.model.train()
    for images, _ in batches(split, order, batch_size, context.device):
        if len(images) > 1:
            with engine.autocast():
                engine.model(prepare_eval(images, engine.config.training.channels_last))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


@torch.no_grad()
def evaluate(engine: Engine, split: Split, num_classes: int) -> Evaluation:
    """Loss (plain cross-entropy), top-1, top-5 and the confusion matrix over all processes."""
    context = engine.context
    order = torch.arange(context.rank, len(split.labels), context.world_size)
    engine.model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=context.device)  # loss, top1, top5
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=context.device)
    top_k = min(5, num_classes)
    channels_last = engine.config.training.channels_last
    for images, labels in batches(split, order, engine.config.data.batch_size, context.device):
        with engine.autocast():
            logits = engine.model(prepare_eval(images, channels_last)).float()
        predicted = logits.argmax(dim=1)
        totals[0] += F.cross_entropy(logits, labels, reduction="sum").double()
        totals[1] += (predicted == labels).sum()
        totals[2] += (logits.topk(top_k, dim=1).indices == labels[:, None]).any(dim=1).sum()
        confusion += torch.bincount(labels * num_classes + predicted, minlength=confusion.numel())
    sum_across(context, totals)
    sum_across(context, confusion)
    count = len(split.labels)
    loss, top1, top5 = (totals / count).tolist()
    return Evaluation(loss, top1, top5, confusion.view(num_classes, num_classes).cpu())
