"""Images per second delivered to the model: our cached pipeline vs torchvision's usual one.

Both read the same JPEGs (synthetic X-ray-like films at --source-size px) and deliver batches
of augmented, normalised --size px tensors to the training device, with --workers workers:
- baseline: torchvision ImageFolder + PIL transforms (random resized crop, rotation, colour
  jitter, to-tensor, normalise) + DataLoader, as the guide's trainer did;
- ours: trainer.data's uint8 cache (built once, timed separately as "cold") + batch
  augmentation in torch on the device (trainer.augment).
The steady-state figure is the mean over --epochs epochs after the first.

    python benchmarks/data_pipeline.py [--images 512] [--size 224] [--workers 2]
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from trainer.augment import augment
from trainer.data import batches, load_split
from trainer.layout import list_split
from trainer.model import IMAGENET_MEAN, IMAGENET_STD
from trainer.synthetic import class_names, draw_xray


def make_images(folder: Path, count: int, size: int, classes: int = 4) -> None:
    for index in range(count):
        label = index % classes
        target = folder / class_names(classes)[label]
        target.mkdir(parents=True, exist_ok=True)
        image = draw_xray(np.random.default_rng([0, index]), label, size)
        image.save(target / f"{index:05d}.jpg", quality=90)


def baseline_epochs(folder: Path, args: argparse.Namespace, device: torch.device) -> list[float]:
    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(args.size, scale=(0.8, 1.0)),
            transforms.RandomRotation(10),
            transforms.ColorJitter(brightness=0.2, contrast=0.2),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    loader = DataLoader(
        datasets.ImageFolder(folder, transform=transform),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    rates = []
    for _ in range(args.epochs):
        started, seen = time.perf_counter(), 0
        for images, _labels in loader:
            images = images.to(device, non_blocking=True)
            seen += len(images)
        synchronize(device)
        rates.append(seen / (time.perf_counter() - started))
    return rates


def our_epochs(
    folder: Path, args: argparse.Namespace, device: torch.device
) -> tuple[float, list[float]]:
    listing = list_split(folder)
    started = time.perf_counter()
    split = load_split(listing, folder.parent / "cache", args.size, args.workers)
    cold_seconds = time.perf_counter() - started
    rates = []
    generator = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        order = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(epoch))
        started, seen = time.perf_counter(), 0
        for images, _labels in batches(split, order, args.batch, device):
            augment(images, generator, channels_last=True)
            seen += len(images)
        synchronize(device)
        rates.append(seen / (time.perf_counter() - started))
    return cold_seconds, rates


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--source-size", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "Train"
        make_images(folder, args.images, args.source_size)
        base = baseline_epochs(folder, args, device)
        cold, ours = our_epochs(folder, args, device)
    base_rate = float(np.mean(base[1:] or base))
    our_rate = float(np.mean(ours[1:] or ours))
    cold_rate = args.images / (cold + args.images / ours[0])
    print(
        f"{args.images} JPEGs {args.source_size}px -> {args.size}px, batch {args.batch}, "
        f"{args.workers} workers, device {device}, {torch.get_num_threads()} CPU threads"
    )
    print(f"baseline ImageFolder+PIL+DataLoader : {base_rate:8.0f} images/s (steady)")
    print(f"ours, first epoch incl. cache build : {cold_rate:8.0f} images/s ({cold:.1f} s decode)")
    print(f"ours, cached + batch augmentation   : {our_rate:8.0f} images/s (steady)")
    print(f"ratio (steady)                      : {our_rate / base_rate:8.1f}x")
    print(f"ratio (first epoch)                 : {cold_rate / base_rate:8.1f}x")


if __name__ == "__main__":
    main()
