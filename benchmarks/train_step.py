"""Training throughput: our engine's step vs a plain PyTorch reference loop, same model.

- reference: float32 NCHW batches already on the device, model(x), cross-entropy, AdamW —
  no input pipeline, no augmentation, no AMP, no channels_last;
- ours: trainer.engine.train_steps on a cached split — batch fetch, on-device augmentation,
  AMP (bf16/fp16 on CUDA only), channels_last, label smoothing, gradient clipping, the LR
  schedule: everything a real step does.
On CUDA, AMP and channels_last should make ours faster despite doing more; on CPU (no AMP) it
shows what the extra work costs.

    python benchmarks/train_step.py [--arch resnet18] [--size 128] [--steps 12]
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainer.config import TrainerConfig
from trainer.data import Split
from trainer.distributed import Context
from trainer.engine import build_engine, train_steps
from trainer.model import build_model

CLASSES = 4


def reference(args: argparse.Namespace, device: torch.device) -> float:
    torch.manual_seed(0)
    model = build_model(args.arch, CLASSES).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-4)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, CLASSES, (args.batch,), device=device)
    model.train()
    started = 0.0
    for step in range(args.steps + args.warmup):
        if step == args.warmup:
            synchronize(device)
            started = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return args.steps * args.batch / (time.perf_counter() - started)


def ours(args: argparse.Namespace, device: torch.device, folder: Path) -> float:
    base = TrainerConfig()
    config = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, image_size=args.size, batch_size=args.batch),
        model=dataclasses.replace(base.model, name=args.arch, pretrained=False),
        training=dataclasses.replace(base.training, epochs=1, device=device.type),
    )
    images = (args.steps + args.warmup) * args.batch
    array = np.lib.format.open_memmap(
        folder / "images.npy", mode="w+", dtype=np.uint8, shape=(images, args.size, args.size, 3)
    )
    array[:] = np.random.default_rng(0).integers(0, 256, array.shape, dtype=np.uint8)
    split = Split(array, torch.arange(images) % CLASSES, [])
    engine = build_engine(config, CLASSES, Context(0, 1, device), images)
    started = 0.0
    for step, loss, _ in train_steps(engine, split, epoch=0, first_step=0):
        if step + 1 == args.warmup:
            loss.item()
            synchronize(device)
            started = time.perf_counter()
    synchronize(device)
    return args.steps * args.batch / (time.perf_counter() - started)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    plain = reference(args, device)
    with tempfile.TemporaryDirectory() as tmp:
        engine = ours(args, device, Path(tmp))
    print(
        f"{args.arch} at {args.size}px, batch {args.batch}, {args.steps} timed steps, "
        f"device {device}, {torch.get_num_threads()} CPU threads"
    )
    print(f"plain reference loop : {plain:8.1f} images/s")
    print(f"ours (train_steps)   : {engine:8.1f} images/s")
    print(f"ratio                : {engine / plain:8.2f}x")


if __name__ == "__main__":
    main()
