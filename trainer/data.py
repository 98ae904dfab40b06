"""Images on disk → a uint8 cache → batches on the device.

The guide's pipeline decoded every JPEG with PIL on 4 vCPUs, every epoch, and the GPU waited.
Here each split is decoded and resized once into a memory-mapped `.npy` array (N, H, W, 3),
cached under DATA/.cache and keyed by the file list (paths, sizes, mtimes) and the image size,
so a resumed or repeated run starts at once. Batches are plain slices of that array copied to
the device; augmentation happens there, on whole batches (see augment.py). Unreadable images are
skipped, counted and named in the log rather than failing a run hours in. A 16-bit greyscale
image is scaled to 8 bits by its own range (PIL's conversion would clip it to white).

`hold_out` takes the validation split from Train, stratified, the same images on every run
with the same seed: it chooses the best epoch, so the Test split is looked at once, at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainer.errors import TrainerError
from trainer.layout import Listing

CACHE_VERSION = 2
"""2: 16-bit images scaled by their range, no longer clipped."""
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
"""PIL's single-channel modes wider than 8 bits (16-bit PNG and TIFF films)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """A decoded split: images (N, H, W, 3) uint8, memory-mapped, and their labels."""

    images: np.ndarray
    labels: torch.Tensor
    skipped: list[str]


def load_split(listing: Listing, cache_dir: Path, size: int, workers: int) -> Split:
    """The cached decode of `listing` at `size`×`size`, building it on first use."""
    key = cache_key(listing, size)
    array_path = cache_dir / f"{key}.npy"
    meta_path = cache_dir / f"{key}.json"
    if not (array_path.exists() and meta_path.exists()):
        build_cache(listing, size, workers, array_path, meta_path)
    meta = json.loads(meta_path.read_text())
    return Split(
        images=np.load(array_path, mmap_mode="r"),
        labels=torch.tensor(meta["labels"], dtype=torch.int64),
        skipped=meta["skipped"],
    )


def cache_key(listing: Listing, size: int) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION}:{size}".encode())
    for path, label in zip(listing.files, listing.labels, strict=True):
        stat = path.stat()
        digest.update(f"{path}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"{listing.files[0].parent.parent.name.lower()}-{size}px-{digest.hexdigest()[:16]}"


def build_cache(
    listing: Listing, size: int, workers: int, array_path: Path, meta_path: Path
) -> None:
    log.info("Decoding %d images of %s at %d px (once).", len(listing.files), array_path.stem, size)
    array_path.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, workers)) as pool:  # PIL releases the GIL while decoding
        decoded = list(pool.map(lambda p: decode(p, size), listing.files))
    kept = [i for i, image in enumerate(decoded) if image is not None]
    skipped = [str(listing.files[i]) for i, image in enumerate(decoded) if image is None]
    if skipped:
        log.warning("Skipped %d unreadable image(s): %s", len(skipped), ", ".join(sorted(skipped)))
    if not kept:
        raise TrainerError(f"none of the {len(listing.files)} images could be read.")
    tmp = array_path.with_suffix(f".tmp{os.getpid()}.npy")
    out = np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.uint8, shape=(len(kept), size, size, 3)
    )
    for row, index in enumerate(kept):
        out[row] = decoded[index]
    out.flush()
    del out
    os.replace(tmp, array_path)
    meta = {"labels": [listing.labels[i] for i in kept], "skipped": skipped}
    tmp_meta = meta_path.with_suffix(f".tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)


def decode(path: Path, size: int) -> np.ndarray | None:
    """RGB, squashed to size×size (the whole film is kept; aspect is not)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            source = to_8_bits(image) if image.mode in WIDE_MODES else image
            rgb = source.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def to_8_bits(image: Image.Image) -> Image.Image:
    """A wide greyscale image stretched from its darkest to its brightest value onto 0-255:
    films use 10 to 16 bits of a 16-bit range, so its own range, not 65,535, is white."""
    values = np.asarray(image, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    return Image.fromarray(np.rint(scaled).astype(np.uint8))  # 2-D uint8: mode L


def hold_out(split: Split, classes: list[str], fraction: float, seed: int) -> tuple[Split, Split]:
    """(train, validation): `fraction` of each class's images, rounded, at least one and never
    all, drawn with `seed`. A class with fewer than two images cannot give one to each."""
    generator = torch.Generator().manual_seed(seed)
    held = []
    for label, name in enumerate(classes):
        rows = (split.labels == label).nonzero().flatten()
        if len(rows) < 2:
            raise TrainerError(
                f"class '{name}' has {len(rows)} readable training image(s); the validation "
                "split needs at least 2 a class (one to train on, one to validate): add images."
            )
        count = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
        held.append(rows[torch.randperm(len(rows), generator=generator)[:count]])
    validation = torch.zeros(len(split.labels), dtype=torch.bool)
    validation[torch.cat(held)] = True
    return subset(split, ~validation), subset(split, validation)


def subset(split: Split, rows: torch.Tensor) -> Split:
    """The images of `rows` (a mask), copied into memory: slices of it are batches."""
    index = rows.nonzero().flatten().numpy()
    return Split(np.ascontiguousarray(split.images[index]), split.labels[rows], [])


def batches(
    split: Split, order: torch.Tensor, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 NHWC images, labels) on `device`, in `order`, one batch prepared ahead."""
    pin = device.type == "cuda"
    ready: queue.Queue[tuple[torch.Tensor, torch.Tensor] | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def offer(item: tuple[torch.Tensor, torch.Tensor] | None) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        for start in range(0, len(order), batch_size):
            rows = np.sort(order[start : start + batch_size].numpy())
            images = torch.from_numpy(split.images[rows])
            labels = split.labels[rows]
            if pin:
                images, labels = images.pin_memory(), labels.pin_memory()
            if not offer((images, labels)):
                return
        offer(None)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not None:
            images, labels = item
            yield images.to(device, non_blocking=pin), labels.to(device, non_blocking=pin)
    finally:
        stop.set()
        worker.join(timeout=1)
