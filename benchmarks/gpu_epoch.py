"""A training epoch on the GPU: our pipeline and step against a plain ImageFolder loop.

The figure that matters: how long the full 20-epoch densenet121 run at 224 px takes (the guide
estimated 30-45 minutes on a T4 for 5,000 images; the target is under 5). Two dataset shapes,
synthetic X-ray-like JPEGs (trainer/synthetic.py) with 45 classes, written once to a temporary
folder: the guide's 5,000 training images and the real dataset's 1,451 (test sets in the real
set's proportion: 775 and 225).

- plain: torchvision ImageFolder + PIL transforms (random resized crop, rotation, colour
  jitter, to-tensor, normalise) + DataLoader with `data.num_workers` workers, float32 NCHW,
  cross-entropy, AdamW: the guide's loop.
- ours: the trainer's own code: `trainer.data.load_split` (decode once into the uint8 cache,
  timed as setup), `trainer.engine.train_steps` (batch augmentation on the device, AMP,
  channels_last, label smoothing, clipping, the LR schedule), then precise BN and `evaluate`.

For each: images/s and seconds per epoch (the median of the epochs after the first), the first
epoch, the one-off setup, the share of the epoch spent waiting for the next batch, mean GPU
utilisation (`nvidia-smi`, when present) and the projected 20-epoch run (setup + first epoch +
19 steady epochs + 20 evaluations). Needs no network (random initial weights).

    .venv/bin/python benchmarks/gpu_epoch.py [--out results.json] [--epochs 3] [--quick]

On a machine without CUDA it runs its --quick form (tiny images and sets, CPU, under a minute):
that shows both sides work, not the GPU figure. --out FILE writes the results as JSON and the
Markdown rows next to it (FILE with .md).
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/gpu_epoch.py` from anywhere
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

import trainer.engine as engine_module  # noqa: E402
from trainer.config import TrainerConfig  # noqa: E402
from trainer.data import load_split  # noqa: E402
from trainer.distributed import Context  # noqa: E402
from trainer.engine import build_engine, evaluate, refresh_batchnorm, train_steps  # noqa: E402
from trainer.layout import list_split  # noqa: E402
from trainer.model import IMAGENET_MEAN, IMAGENET_STD, build_model  # noqa: E402
from trainer.synthetic import class_names, draw_xray  # noqa: E402

RUN_EPOCHS = 20
Options = dict[str, Any]
FULL: Options = {"classes": 45, "size": 224, "source": 512, "batch": 32, "arch": "densenet121"}
FULL_SHAPES = {"guide (5,000)": (5000, 775), "real (1,451)": (1451, 225)}
QUICK: Options = {"classes": 4, "size": 32, "source": 64, "batch": 8, "arch": "resnet18"}
"""The --quick form: both sides' code paths on a CPU, nothing like the real figure."""
QUICK_SHAPES = {"guide (5,000) scaled": (32, 8), "real (1,451) scaled": (16, 4)}


@dataclasses.dataclass
class Side:
    """One pipeline's figures on one dataset shape."""

    shape: str
    pipeline: str
    images: int
    setup_s: float
    epochs_s: list[float]
    eval_s: float
    data_wait_share: float
    gpu_util: float | None

    @property
    def steady_s(self) -> float:
        return statistics.median(self.epochs_s[1:]) if len(self.epochs_s) > 1 else self.epochs_s[0]

    @property
    def images_per_s(self) -> float:
        return self.images / self.steady_s

    @property
    def projected_s(self) -> float:
        rest = (RUN_EPOCHS - 1) * self.steady_s
        return self.setup_s + self.epochs_s[0] + rest + RUN_EPOCHS * self.eval_s


# -- the synthetic data -------------------------------------------------------------------------
def _draw(job: tuple[Path, int, int, int]) -> None:
    path, index, label, size = job
    draw_xray(np.random.default_rng([7, index]), label, size).save(path, quality=90)


def write_images(root: Path, shapes: dict[str, tuple[int, int]], classes: int, size: int) -> None:
    """The largest shape's JPEGs once; every smaller shape hard-links a prefix of them."""
    most_train = max(train for train, _ in shapes.values())
    most_test = max(test for _, test in shapes.values())
    names = class_names(classes)
    jobs = []
    for split, count in (("Train", most_train), ("Test", most_test)):
        for index in range(count):
            folder = root / "all" / split / names[index % classes]
            folder.mkdir(parents=True, exist_ok=True)
            offset = 0 if split == "Train" else 10**6
            jobs.append((folder / f"{index:05d}.jpg", index + offset, index % classes, size))
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(_draw, jobs, chunksize=16))
    for shape, (train, test) in shapes.items():
        for split, count in (("Train", train), ("Test", test)):
            for index in range(count):
                source = root / "all" / split / names[index % classes] / f"{index:05d}.jpg"
                target = root / slug(shape) / split / source.parent.name / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, target)


def slug(shape: str) -> str:
    return shape.split(" ")[0]


# -- measuring ----------------------------------------------------------------------------------
class GpuSampler:
    """Mean GPU utilisation over a block, from `nvidia-smi` twice a second (None without it)."""

    def __init__(self, device: torch.device) -> None:
        self.index = device.index or 0
        self.enabled = device.type == "cuda" and shutil.which("nvidia-smi") is not None
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        query = ["nvidia-smi", "-i", str(self.index), "--query-gpu=utilization.gpu"]
        while not self.stop.wait(0.5):
            done = subprocess.run(
                [*query, "--format=csv,noheader,nounits"], capture_output=True, text=True
            )
            if done.returncode == 0 and done.stdout.strip().isdigit():
                self.samples.append(float(done.stdout.strip()))

    def __enter__(self) -> GpuSampler:
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        if self.enabled:
            self.thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def timed_batches(source: Iterator[Any], waits: list[float]) -> Iterator[Any]:
    """The same batches, adding to waits[0] the time spent waiting for each."""
    try:
        while True:
            started = time.perf_counter()
            item = next(source, None)
            waits[0] += time.perf_counter() - started
            if item is None:
                return
            yield item
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain(shape: str, folder: Path, opts: dict[str, Any], args: argparse.Namespace) -> Side:
    device, size = args.device, opts["size"]
    train = transforms.Compose(
        [
            transforms.RandomResizedCrop(size, scale=(0.8, 1.0)),
            transforms.RandomRotation(10),
            transforms.ColorJitter(brightness=0.2, contrast=0.2),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    test = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    pin = device.type == "cuda"

    def loader(split: str, transform: Callable[..., Any], shuffle: bool) -> DataLoader[Any]:
        return DataLoader(
            datasets.ImageFolder(folder / split, transform=transform),
            batch_size=opts["batch"],
            shuffle=shuffle,
            drop_last=shuffle,
            num_workers=args.workers,
            pin_memory=pin,
            persistent_workers=args.workers > 0,
        )

    train_loader, test_loader = loader("Train", train, True), loader("Test", test, False)
    torch.manual_seed(0)
    model = build_model(opts["arch"], opts["classes"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-4)
    epochs, waits, images = [], [0.0], 0
    with GpuSampler(device) as gpu:
        for _ in range(args.epochs):
            started, images = time.perf_counter(), 0
            model.train()
            for x, y in timed_batches(iter(train_loader), waits):
                x, y = x.to(device, non_blocking=pin), y.to(device, non_blocking=pin)
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                images += len(y)
            synchronize(device)
            epochs.append(time.perf_counter() - started)
        started = time.perf_counter()
        model.eval()
        with torch.no_grad():
            for x, _ in test_loader:
                model(x.to(device, non_blocking=pin))
        synchronize(device)
        eval_s = time.perf_counter() - started
    return Side(shape, "plain ImageFolder loop", images, 0.0, epochs, eval_s,
                waits[0] / sum(epochs), gpu.mean)  # fmt: skip


def ours(shape: str, folder: Path, opts: dict[str, Any], args: argparse.Namespace) -> Side:
    device, base = args.device, TrainerConfig()
    config = dataclasses.replace(
        base,
        data=dataclasses.replace(
            base.data, image_size=opts["size"], batch_size=opts["batch"], num_workers=args.workers
        ),
        model=dataclasses.replace(base.model, name=opts["arch"], pretrained=False),
        training=dataclasses.replace(base.training, epochs=RUN_EPOCHS, device=device.type),
    )
    started = time.perf_counter()
    cache = folder / ".cache"
    train = load_split(list_split(folder / "Train"), cache, opts["size"], args.workers)
    test = load_split(list_split(folder / "Test"), cache, opts["size"], args.workers)
    setup_s = time.perf_counter() - started
    engine = build_engine(config, opts["classes"], Context(0, 1, device), len(train.labels))
    waits = [0.0]
    real_batches = engine_module.batches
    engine_module.batches = lambda *a, **k: timed_batches(real_batches(*a, **k), waits)
    epochs, images, evals = [], 0, []
    try:
        with GpuSampler(device) as gpu:
            for epoch in range(args.epochs):
                started, images = time.perf_counter(), 0
                for _, _, count in train_steps(engine, train, epoch, 0):
                    images += count
                synchronize(device)
                epochs.append(time.perf_counter() - started)
                trained_waits = waits[0]
                started = time.perf_counter()
                refresh_batchnorm(engine, train)
                evaluate(engine, test, opts["classes"])
                evals.append(time.perf_counter() - started)
                waits[0] = trained_waits  # the share is of training time only
    finally:
        engine_module.batches = real_batches
    return Side(shape, "ours (trainer/)", images, setup_s, epochs, statistics.median(evals),
                waits[0] / sum(epochs), gpu.mean)  # fmt: skip


# -- reporting ----------------------------------------------------------------------------------
def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def markdown(sides: list[Side]) -> list[str]:
    rows = [
        "| shape | pipeline | images/s | s/epoch | first epoch | setup (once) | data wait "
        "| GPU util | 20 epochs, projected |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for side in sides:
        util = "n/a" if side.gpu_util is None else f"{side.gpu_util:.0f} %"
        rows.append(
            f"| {side.shape} | {side.pipeline} | {side.images_per_s:,.0f} | {side.steady_s:.2f} s "
            f"| {side.epochs_s[0]:.2f} s | {side.setup_s:.1f} s | {side.data_wait_share:.0%} "
            f"| {util} | {minutes(side.projected_s)} |"
        )
    return rows


def describe(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {device.type} {name or platform.machine()}; "
        f"{os.cpu_count()} CPU cores; torch {torch.__version__}; Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sets on the CPU (< 1 min)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs measured per side")
    parser.add_argument("--workers", type=int, default=None, help="loader/decode workers")
    parser.add_argument("--out", type=Path, default=None, help="write JSON here (+ FILE.md)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        print("No CUDA device: running the --quick form on the CPU (not the GPU figure).")
        args.quick = True
    opts, shapes = (QUICK, QUICK_SHAPES) if args.quick else (FULL, FULL_SHAPES)
    if args.quick:
        args.epochs = min(args.epochs, 1)
        # One thread: on a busy shared CPU two OpenMP threads spin against each other (a
        # resnet18 step took 4.6 s with 2 threads, 0.45 s with 1, at load 13 here).
        torch.set_num_threads(1)
    args.workers = args.workers if args.workers is not None else (2 if args.quick else 4)
    args.device = torch.device("cuda" if cuda and not args.quick else "cpu")
    if args.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # both sides: fixed shapes
    sides: list[Side] = []
    root = Path(tempfile.mkdtemp(prefix="pacerid-gpu-epoch-"))
    try:
        started = time.perf_counter()
        # Before anything opens a CUDA context: the drawing processes are forked from this one.
        write_images(root, shapes, opts["classes"], opts["source"])
        generated_s = time.perf_counter() - started
        print(f"# gpu_epoch — {describe(args.device)}")
        print(f"synthetic JPEGs written in {generated_s:.1f} s", flush=True)
        for shape in shapes:
            for measure in (plain, ours):
                sides.append(measure(shape, root / slug(shape), opts, args))
                print(" ".join(markdown(sides[-1:])[2:]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = markdown(sides)
    print()
    print("\n".join(rows))
    if args.out is not None:
        result = {
            "machine": describe(args.device),
            "quick": args.quick,
            "options": {**opts, "epochs_measured": args.epochs, "workers": args.workers},
            "generated_s": generated_s,
            "sides": [
                {
                    **dataclasses.asdict(s),
                    "steady_s": s.steady_s,
                    "images_per_s": s.images_per_s,
                    "projected_s": s.projected_s,
                }
                for s in sides
            ],
            "markdown": rows,
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        args.out.with_suffix(".md").write_text("\n".join(rows) + "\n")
        print(f"results written to {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
