"""What watching costs a training step: the host sampler and the step events, on vs off.

Runs trainer.run.train_epoch (the real loop: batch fetch with the data-wait clock, augmentation,
forward/backward, a step event every few steps) on a cached in-memory split, alternating
epochs with and without a SystemSampler writing output/system.jsonl. The sampler runs at
`--interval` (default 0.1 s, fifty times the default rate of 5 s, so any cost shows) with a
stand-in `nvidia-smi` on PATH, so each sample also starts a process, as on a GPU host. Step
time is the median over the alternated epochs.

    python benchmarks/host_sampling.py [--epochs 6] [--steps 24] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tests import nvidia_smi  # noqa: E402
from trainer import distributed  # noqa: E402
from trainer.config import TrainerConfig  # noqa: E402
from trainer.data import Split  # noqa: E402
from trainer.engine import build_engine  # noqa: E402
from trainer.interrupt import StopFlag  # noqa: E402
from trainer.metrics import Recorder  # noqa: E402
from trainer.position import Position  # noqa: E402
from trainer.run import train_epoch  # noqa: E402
from trainer.system import SystemSampler  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="alternated: half with sampling")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = TrainerConfig()
    config = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, image_size=64, batch_size=16),
        model=dataclasses.replace(base.model, name="resnet18", pretrained=False),
        training=dataclasses.replace(base.training, device="cpu", epochs=args.epochs),
    )
    images = args.steps * 16
    pixels = np.random.default_rng(0).integers(0, 255, (images, 64, 64, 3), dtype=np.uint8)
    split = Split(pixels, torch.arange(images) % 4, [])
    context = distributed.start("cpu")
    engine = build_engine(config, 4, context, images)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PATH"] = f"{nvidia_smi.install(folder / 'bin')}{os.pathsep}{os.environ['PATH']}"
        recorder = Recorder(folder, args.epochs)
        times: dict[bool, list[float]] = {True: [], False: []}
        for epoch in range(args.epochs):
            sampling = epoch % 2 == 1
            sampler = SystemSampler(folder, args.interval).start() if sampling else None
            started = time.perf_counter()
            train_epoch(engine, split, Position(epoch=epoch), StopFlag(), recorder)
            times[sampling].append((time.perf_counter() - started) / args.steps)
            if sampler is not None:
                sampler.stop()
        recorder.close()
        samples = len((folder / "system.jsonl").read_text().splitlines())
    off, on = statistics.median(times[False]), statistics.median(times[True])
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"resnet18 64 px batch 16 on 1 CPU thread, {args.steps} steps an epoch; load {load}")
    print(f"step without sampling : {off * 1000:7.1f} ms")
    print(
        f"step with sampling    : {on * 1000:7.1f} ms  ({samples} samples, every {args.interval} s)"
    )
    print(f"difference            : {100 * (on - off) / off:+6.1f} %")


if __name__ == "__main__":
    main()
