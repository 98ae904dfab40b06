"""A training epoch on a GPU as the trainer really runs it, against the guide's plain loop.

The figure that matters: how long the full 20-epoch densenet121 run at 224 px takes on the
guide's T4 (the guide estimated 30-45 minutes for 5,000 images; the target is under 5). Two
dataset shapes of synthetic X-ray-like JPEGs (trainer/synthetic.py) with 45 classes, written
once to a temporary folder: the guide's 5,000 training images and the real set's 1,451 (test
sets in the real set's proportion: 775 and 225).

- ours: `python -m trainer train` in a child process, as a host runs it: ImageNet weights
  loaded from a file in torch's cache, the precision rule (trainer/precision.py), cuDNN's
  autotuner, the validation split, precise BN, the evaluation and checkpoint writes of every
  epoch, the one test pass at the end. Its figures come from its own metrics.jsonl.
- plain: the guide's loop, in this process: torchvision ImageFolder + PIL transforms (random
  resized crop, rotation, colour jitter, to-tensor, normalise) + DataLoader with as many
  workers, the same model from the same weights file and **the same precision and memory
  format** (autocast in the same dtype, a loss scaler for fp16, channels_last), AdamW, and an
  evaluation of Test and a checkpoint (model and optimizer) after every epoch, as the guide
  saved one. So the ratio of the two measures the pipeline and the loop, not the precision.
  (Ours trains on 85 % of Train, the rest being its validation split: compare images/s; its
  s/epoch is for that share.)

The weights file: the published one when `--torch-home DIR` has it (DIR/hub/checkpoints/<name>,
copied from a machine with internet); else a stand-in in the published layout, random values
(tests/trainer/imagenet_files.py): the same loading path and the same step time. No network.

Every row names the device, its compute capability and the dtype. `--dtype fp16 --cores 4`
runs the T4's path on a bigger GPU (fp16 with a loss scaler, as the rule gives a T4's capability
7.5, and this process, the trainer and the loader workers pinned to a g4dn.xlarge's 4 vCPUs);
those rows say "T4 path on <GPU>": how that path behaves, not a T4's speed (an H100 is 8-10x).

    .venv/bin/python benchmarks/gpu_epoch.py [--out results.json] [--epochs 3] [--quick]
        [--dtype auto|fp16|bf16|off] [--cores N] [--torch-home DIR]

On a machine without CUDA it runs its --quick form (tiny images and sets, resnet18, CPU, a few
minutes here): that shows both sides work, not the GPU figure. --out FILE writes the results
as JSON and the Markdown rows next to it (FILE with .md).
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
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
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/gpu_epoch.py` from anywhere
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import yaml  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

from tests.trainer.imagenet_files import write_published  # noqa: E402
from trainer.model import IMAGENET_MEAN, IMAGENET_STD, build_model  # noqa: E402
from trainer.precision import Precision, for_device  # noqa: E402
from trainer.synthetic import class_names, draw_xray  # noqa: E402
from trainer.weights import published  # noqa: E402

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
    device: dict[str, Any]
    """The precision record (trainer/precision.py): device name, capability, dtype."""
    images: int  # trained per epoch
    setup_s: float
    epochs_s: list[float]  # wall time: training, evaluation and checkpoint writes
    train_s: list[float]  # the training steps alone
    end_s: float
    data_wait_share: float
    gpu_util: float | None

    @property
    def steady_s(self) -> float:
        return statistics.median(self.epochs_s[1:]) if len(self.epochs_s) > 1 else self.epochs_s[0]

    @property
    def images_per_s(self) -> float:
        train = statistics.median(self.train_s[1:]) if len(self.train_s) > 1 else self.train_s[0]
        return self.images / train

    @property
    def projected_s(self) -> float:
        rest = (RUN_EPOCHS - 1) * self.steady_s
        return self.setup_s + self.epochs_s[0] + rest + self.end_s


# -- the synthetic data and weights ---------------------------------------------------------------
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
    with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
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


def weights_home(arch: str, given: Path | None, scratch: Path) -> tuple[Path, str]:
    """A TORCH_HOME holding `arch`'s weights file, and which file it is."""
    name = published(arch).path.name
    if given is not None and (given / "hub" / "checkpoints" / name).is_file():
        return given, f"published {name}"
    write_published(arch, scratch)
    return scratch, f"stand-in {name} (published layout, random values)"


# -- measuring ----------------------------------------------------------------------------------
class GpuSampler:
    """GPU utilisation over a block, from `nvidia-smi` twice a second, with times (so a window
    of it can be averaged); nothing without a GPU or nvidia-smi."""

    def __init__(self, device: torch.device) -> None:
        self.index = device.index or 0
        self.enabled = device.type == "cuda" and shutil.which("nvidia-smi") is not None
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        query = ["nvidia-smi", "-i", str(self.index), "--query-gpu=utilization.gpu"]
        while not self.stop.wait(0.5):
            done = subprocess.run(
                [*query, "--format=csv,noheader,nounits"], capture_output=True, text=True
            )
            if done.returncode == 0 and done.stdout.strip().isdigit():
                self.samples.append((time.time(), float(done.stdout.strip())))

    def __enter__(self) -> GpuSampler:
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        if self.enabled:
            self.thread.join()

    def mean(self, start: float = 0.0, end: float = float("inf")) -> float | None:
        values = [util for at, util in self.samples if start <= at <= end]
        return statistics.mean(values) if values else None


def timed(source: Iterator[Any], waits: list[float]) -> Iterator[Any]:
    """The same batches, adding to waits[0] the time spent waiting for each."""
    while True:
        started = time.perf_counter()
        item = next(source, None)
        waits[0] += time.perf_counter() - started
        if item is None:
            return
        yield item


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain(shape: str, folder: Path, opts: Options, args: argparse.Namespace) -> Side:
    device, size, chosen = args.device, opts["size"], args.precision
    started = time.perf_counter()
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

    def loader(split: str, transform: Any, shuffle: bool) -> DataLoader[Any]:
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
    model = build_model(opts["arch"], opts["classes"], pretrained=True)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=pin and chosen.scaled)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if chosen.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=chosen.dtype)

    def inputs(x: torch.Tensor) -> torch.Tensor:
        return x.to(device, non_blocking=pin).contiguous(memory_format=torch.channels_last)

    setup_s = time.perf_counter() - started
    epochs, trains, waits, images = [], [], [0.0], 0
    with GpuSampler(device) as gpu:
        for _ in range(args.epochs):
            started, images = time.perf_counter(), 0
            model.train()
            for x, y in timed(iter(train_loader), waits):
                with autocast():
                    loss = F.cross_entropy(model(inputs(x)), y.to(device, non_blocking=pin))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                images += len(y)
            synchronize(device)
            trains.append(time.perf_counter() - started)
            model.eval()
            with torch.no_grad(), autocast():
                for x, _ in test_loader:
                    model(inputs(x))
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save(state, folder.parent / f"plain-{slug(shape)}.pt")
            synchronize(device)
            epochs.append(time.perf_counter() - started)
    return Side(shape, "plain ImageFolder loop", chosen.record(), images, setup_s, epochs,
                trains, 0.0, waits[0] / sum(trains), gpu.mean())  # fmt: skip


def ours(shape: str, folder: Path, opts: Options, args: argparse.Namespace) -> Side:
    config = {
        "data": {
            "source": "local",
            "image_size": opts["size"],
            "batch_size": opts["batch"],
            "num_workers": args.workers,
        },
        "model": {"name": opts["arch"], "pretrained": True},
        "training": {
            "epochs": args.epochs,
            "amp_dtype": args.dtype,
            "device": args.device.type,
            "seed": 0,
        },
    }
    config_path = folder.parent / f"{slug(shape)}.yaml"
    output = folder.parent / f"out-{slug(shape)}"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "TORCH_HOME": str(args.torch_home), "PYTHONPATH": str(REPO)}
    env.update(PACERID_IMDS_URL="off", OMP_NUM_THREADS=str(args.threads))
    command = [sys.executable, "-m", "trainer", "train", "--config", str(config_path)]
    command += ["--data", str(folder), "--output", str(output), "--resume", "none"]
    started = time.time()
    with GpuSampler(args.device) as gpu:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"The trainer failed on {shape}: {done.stderr.strip()[-2000:]}")
    events = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    [start] = [e for e in events if e["event"] == "start"]
    [end] = [e for e in events if e["event"] == "done"]
    epochs = [e for e in events if e["event"] == "epoch"]
    times = [start["time"]] + [e["time"] for e in epochs]
    later = [e for e in events if e["event"] == "step" and e["epoch"] > 1] or events
    waits = [e["data_wait"] for e in later if "data_wait" in e]
    device = {key: start[key] for key in ("device_name", "capability", "dtype")}
    return Side(
        shape,
        "ours (python -m trainer train)",
        device,
        start["steps"] * opts["batch"],
        start["time"] - started,
        [b - a for a, b in itertools.pairwise(times)],
        [e["epoch_seconds"] for e in epochs],
        end["time"] - epochs[-1]["time"],
        statistics.mean(waits) if waits else 0.0,
        gpu.mean(start["time"], epochs[-1]["time"]),
    )


# -- reporting ----------------------------------------------------------------------------------
def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def where(side: Side, args: argparse.Namespace) -> str:
    """`NVIDIA H100 80GB HBM3 (9.0)`, or `T4 path (fp16, 4 cores) on …` when emulating it."""
    device = side.device
    name = f"{device['device_name']} ({device['capability'] or 'CPU'})"
    if args.t4_path:
        return f"T4 path (fp16, {args.cores} cores) on {name}"
    return name


def markdown(sides: list[Side], args: argparse.Namespace) -> list[str]:
    rows = [
        "| device (capability) | dtype | shape | pipeline | train images/s | s/epoch, all of it "
        "| first epoch | setup (once) | data wait | GPU util | 20 epochs, projected |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for side in sides:
        util = "n/a" if side.gpu_util is None else f"{side.gpu_util:.0f} %"
        rows.append(
            f"| {where(side, args)} | {side.device['dtype']} | {side.shape} | {side.pipeline} "
            f"| {side.images_per_s:,.0f} | {side.steady_s:.2f} s | {side.epochs_s[0]:.2f} s "
            f"| {side.setup_s:.1f} s | {side.data_wait_share:.0%} | {util} "
            f"| {minutes(side.projected_s)} |"
        )
    return rows


def describe(chosen: Precision, weights: str, cores: int) -> str:
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {chosen.describe()}; {cores} CPU cores; "
        f"weights: {weights}; torch {torch.__version__}; Python {platform.python_version()}; "
        f"load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sets on the CPU")
    parser.add_argument("--epochs", type=int, default=3, help="epochs measured per side")
    parser.add_argument("--workers", type=int, default=None, help="loader/decode workers")
    parser.add_argument("--dtype", choices=("auto", "fp16", "bf16", "off"), default="auto")
    parser.add_argument("--cores", type=int, default=None, help="pin to this many CPU cores")
    parser.add_argument("--torch-home", type=Path, default=None, help="holds the weights file")
    parser.add_argument("--out", type=Path, default=None, help="write JSON here (+ FILE.md)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        print("No CUDA device: running the --quick form on the CPU (not the GPU figure).")
        args.quick = True
    opts, shapes = (QUICK, QUICK_SHAPES) if args.quick else (FULL, FULL_SHAPES)
    if args.cores is not None:  # inherited by the loader workers and the trainer
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    cores = len(os.sched_getaffinity(0))
    # --quick: one thread; on a busy shared CPU two OpenMP threads spin against each other.
    args.threads = 1 if args.quick else cores
    torch.set_num_threads(args.threads)
    args.epochs = 2 if args.quick else args.epochs  # the second one is the steady epoch
    args.workers = args.workers if args.workers is not None else (2 if args.quick else 4)
    args.device = torch.device("cuda" if cuda and not args.quick else "cpu")
    args.precision = for_device(args.dtype, args.device)
    args.t4_path = args.dtype == "fp16" and args.cores is not None and cuda
    if args.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # both sides: fixed shapes
    sides: list[Side] = []
    root = Path(tempfile.mkdtemp(prefix="pacerid-gpu-epoch-"))
    try:
        args.torch_home, weights = weights_home(opts["arch"], args.torch_home, root / "torch")
        os.environ["TORCH_HOME"] = str(args.torch_home)  # the plain side loads the same file
        started = time.perf_counter()
        # Before anything opens a CUDA context: the drawing processes are forked from this one.
        write_images(root, shapes, opts["classes"], opts["source"])
        generated_s = time.perf_counter() - started
        machine = describe(args.precision, weights, cores)
        print(f"# gpu_epoch — {machine}")
        print(f"synthetic JPEGs written in {generated_s:.1f} s", flush=True)
        for shape in shapes:
            for measure in (plain, ours):
                sides.append(measure(shape, root / slug(shape), opts, args))
                print(" ".join(markdown(sides[-1:], args)[2:]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = markdown(sides, args)
    print()
    print("\n".join(rows))
    if args.out is not None:
        result = {
            "machine": machine,
            "quick": args.quick,
            "t4_path": args.t4_path,
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
