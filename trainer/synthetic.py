"""A deterministic, X-ray-like stand-in for the Kaggle pacemaker images.

Used by the local provider and the tests, so it has to be cheap to make and quick to learn
while still looking like the real task: a dark chest with ribs and a spine, a bright implanted
device with a lead, and the class told apart by the device's outline and what shows inside it
(beyond four classes, also by the number of dark holes in the can). Position, size, rotation,
brightness and noise vary, so the network must learn the device, not a pixel. Every image
depends only on (seed, split, class, index), so the same config always writes the same bytes;
a marker file makes reruns free.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from trainer.config import SyntheticConfig
from trainer.errors import TrainerError

MARKER = ".synthetic.json"
MAKERS = ("ACM", "BTX", "CRD", "DYN", "ELX")
SPLITS = {"Train": 0, "Test": 1}

log = logging.getLogger(__name__)


def class_names(classes: int) -> list[str]:
    """`MAKER-deviceNN`: two devices per maker, so the report's manufacturer view has work."""
    return [f"{MAKERS[(k // 2) % len(MAKERS)]}-device{k:02d}" for k in range(classes)]


def ensure_synthetic(data_dir: Path, spec: SyntheticConfig, image_size: int) -> None:
    """Write data_dir/Train and data_dir/Test unless the marker says they already match."""
    wanted = {**asdict(spec), "image_size": image_size}
    marker = data_dir / MARKER
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        log.info("Synthetic dataset already in %s.", data_dir)
        return
    if not marker.exists() and any((data_dir / split).exists() for split in SPLITS):
        raise TrainerError(
            f"{data_dir} already holds a Train/Test dataset that `synthetic` did not write; "
            "pass another --data folder."
        )
    staging = data_dir / ".synthetic-staging"
    shutil.rmtree(staging, ignore_errors=True)
    for split, split_id in SPLITS.items():
        per_class = spec.train_per_class if split == "Train" else spec.test_per_class
        for label, name in enumerate(class_names(spec.classes)):
            folder = staging / split / name
            folder.mkdir(parents=True)
            for index in range(per_class):
                rng = np.random.default_rng([spec.seed, split_id, label, index])
                draw_xray(rng, label, image_size).save(folder / f"{index:04d}.png")
    marker.unlink(missing_ok=True)
    for split in SPLITS:
        shutil.rmtree(data_dir / split, ignore_errors=True)
        (staging / split).rename(data_dir / split)
    staging.rmdir()
    marker.write_text(json.dumps(wanted))
    log.info(
        "Synthetic dataset written to %s: %d classes, %d train and %d test images per class.",
        data_dir,
        spec.classes,
        spec.train_per_class,
        spec.test_per_class,
    )


def draw_xray(rng: np.random.Generator, label: int, size: int) -> Image.Image:
    """One grayscale-ish RGB image of class `label`."""
    background = Image.fromarray(chest_background(rng, size))
    radius = size * rng.uniform(0.2, 0.26)
    cx = size * rng.uniform(0.32, 0.68)
    cy = size * rng.uniform(0.32, 0.68)
    angle = rng.uniform(-math.pi / 6, math.pi / 6)
    bright = rng.uniform(215, 250)
    lead = [(cx, cy), (size * rng.uniform(0.2, 0.8), size * rng.uniform(0.5, 0.9))]
    lead.append((size * rng.uniform(0.3, 0.7), size * rng.uniform(0.85, 1.0)))
    ImageDraw.Draw(background).line(lead, fill=int(bright) - 30, width=max(1, size // 48))
    mask = Image.new("L", (size, size))
    ImageDraw.Draw(mask).polygon(place(device_outline(label % 4), cx, cy, radius, angle), fill=255)
    inside = np.asarray(mask, dtype=np.float32) / 255
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    u = ((x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)) / radius
    v = (-(x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)) / radius
    device = bright * interior(label, u, v)
    film = np.asarray(background, dtype=np.float32) * (1 - inside) + device * inside
    blurred = Image.fromarray(film.astype(np.uint8)).filter(ImageFilter.GaussianBlur(size / 160))
    noisy = np.asarray(blurred, dtype=np.float32) + rng.normal(0, 6, (size, size))
    gray = np.clip(noisy, 0, 255)
    tint = rng.uniform(0.97, 1.03, 3)  # scanners are not quite neutral: "grayscale-ish" RGB
    return Image.fromarray(np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8), "RGB")


def interior(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """What shows through the can (battery, circuit board): a relative brightness per pixel."""
    pattern = label % 4
    if pattern == 1:  # a stack of cells: bands across the can
        shade = np.where(np.sin(v * math.pi * 3) > 0, 1.0, 0.45)
    elif pattern == 2:  # a board of components: a grid of dark dots
        shade = np.where(
            (np.sin(u * math.pi * 3) > 0.3) & (np.sin(v * math.pi * 3) > 0.3), 0.4, 1.0
        )
    elif pattern == 3:  # a hollow ring
        shade = np.where(u**2 + v**2 < 0.55**2, 0.3, 1.0)
    else:
        shade = np.ones_like(u)
    holes = label // 4  # beyond four classes: one more dark hole in a row per four classes
    for hole in range(holes):
        centre = -0.4 + 0.8 * (hole + 0.5) / holes
        shade = np.where((u - centre) ** 2 + (v - 0.7) ** 2 < 0.1**2, 0.3, shade)
    return shade.astype(np.float32)


def chest_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dark lungs, a brighter spine and mediastinum, faint ribs: a grayscale uint8 array."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    level = rng.uniform(25, 70)
    spine = 70 * np.exp(-(((x - 0.5 - rng.uniform(-0.05, 0.05)) / 0.09) ** 2))
    ribs = 18 * (np.sin((y * rng.uniform(9, 12) + (x - 0.5) ** 2 * 4) * math.pi) > 0.6)
    fade = 1.0 - 0.4 * y
    return np.clip(level * fade + spine + ribs, 0, 255).astype(np.uint8)


def device_outline(shape: int) -> list[tuple[float, float]]:
    """Four outlines a small CNN tells apart at 64 px: disc, bar, triangle, ring."""
    if shape == 1:
        return [(-0.55, -1.0), (0.55, -1.0), (0.55, 1.0), (-0.55, 1.0)]
    if shape == 2:
        return [(0.0, -1.1), (1.0, 0.8), (-1.0, 0.8)]
    steps = 32
    return [
        (math.cos(2 * math.pi * i / steps), math.sin(2 * math.pi * i / steps)) for i in range(steps)
    ]


def place(
    points: list[tuple[float, float]], cx: float, cy: float, scale: float, angle: float
) -> list[tuple[float, float]]:
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + scale * (x * cos - y * sin), cy + scale * (x * sin + y * cos)) for x, y in points]
