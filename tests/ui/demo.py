"""A dashboard with fixed runs, prices and clock: for snapshot tests and `make screenshot`.

Nothing is launched. The registry holds a finished local run (its curve read back from its
downloaded metrics.jsonl) and an AWS spot run in its third of ten epochs. AWS is stood in for
by `FixedPrices`: a provider whose instance, zone prices and 24 h price history are fixed, so
the table's cost, the projection, the budget bar and the sparkline are the same every time.
The AWS run's follow replays three epochs through the real listener → message path.

    python -m tests.ui.demo docs/screenshot.svg     # what `make screenshot` runs
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import yaml
from textual.pilot import Pilot

from pacerid_tui import paths
from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_firewall import ssh_warning
from pacerid_tui.core.cloud.base import Provider, Report, quiet
from pacerid_tui.core.kernel.host_records import SystemSample
from pacerid_tui.core.kernel.models import (
    Instance,
    InstanceSpec,
    InstanceState,
    MetricEvent,
    PricePoint,
    Run,
)
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.core.supervise.supervisor import Supervisor
from pacerid_tui.ui import app as ui_app
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.runs import Runs
from tests.nvidia_smi import STARVED_CSV
from trainer.system import gpu_rows

NOW = 1_795_000_000.0
"""The demo's fixed "now" (an afternoon in November 2026)."""
HOUR = 3600.0
SIZE = (160, 45)
SETTLE_S = 60.0
"""How long the demo may take to settle before a snapshot; seconds quiet, many when loaded."""
ZONE_PRICES = {
    "us-east-1a": 0.2261,
    "us-east-1b": 0.2418,
    "us-east-1c": 0.2107,
    "us-east-1d": 0.2540,
}
HISTORY = [
    PricePoint(NOW - 30 * HOUR, 0.2204, "us-east-1c"),
    PricePoint(NOW - 19 * HOUR, 0.2351, "us-east-1c"),
    PricePoint(NOW - 11 * HOUR, 0.2489, "us-east-1c"),
    PricePoint(NOW - 6 * HOUR, 0.1987, "us-east-1c"),
    PricePoint(NOW - 1.5 * HOUR, 0.2107, "us-east-1c"),
]
AWS_RUN = "pacerid-ml-20261119-1120-beef"
LOCAL_RUN = "pacerid-local-20261118-0915-1a2b"
WORLD_CONFIG = InstanceConfig(provider="aws", ssh_cidr="0.0.0.0/0")


class FixedPrices:
    """The AWS side of the demo: one running spot instance, fixed prices, SSH open to all."""

    name = "aws"

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def launch(self, spec: InstanceSpec, report: Report = quiet) -> Instance:
        raise AssertionError("the demo launches nothing")

    def describe(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        return {self.instance.instance_id: self.instance}

    def terminate(self, instance_id: str, report: Report = quiet) -> Instance:
        return replace(self.instance, state=InstanceState.TERMINATED, ended_at=NOW)

    def price_history(self, instance: Instance, start: float, end: float) -> list[PricePoint]:
        before = [p for p in HISTORY if p.timestamp <= start][-1:]
        return before + [p for p in HISTORY if start < p.timestamp <= end]

    def find_managed(self) -> list[Instance]:
        return [self.instance]

    def zone_prices(self) -> dict[str, float]:
        return dict(ZONE_PRICES)

    def ssh_warning(self) -> str | None:
        return ssh_warning(WORLD_CONFIG)


def epoch_events(epochs: int, total: int, start: float, seconds: float) -> list[MetricEvent]:
    events = [MetricEvent("start", time=start, epoch=0, epochs=total)]
    for n in range(1, epochs + 1):
        events.append(
            MetricEvent(
                "epoch",
                time=start + n * seconds,
                epoch=n,
                epochs=total,
                train_loss=round(1.2 / (n + 0.5), 4),
                val_loss=round(1.3 / (n + 0.3), 4),
                val_acc=round(0.45 + 0.12 * n, 4),
                images_per_s=118.0 + n,
            )
        )
    return events


def step_events(epochs: int, start: float, seconds: float) -> list[MetricEvent]:
    """Every 10 of 40 steps: a falling, slightly noisy loss, 55 % of each step waiting."""
    events = []
    for epoch in range(1, epochs + 1):
        for step in range(10, 41, 10):
            x = epoch - 1 + step / 40
            events.append(
                MetricEvent(
                    "step",
                    time=start + x * seconds,
                    epoch=epoch,
                    step=step,
                    steps=40,
                    loss=round(1.3 / (x + 0.4) + 0.04 * ((step // 10) % 2), 4),
                    lr=3e-4,
                    images_per_s=118.0,
                    data_wait=0.55,
                )
            )
    return events


def host_samples(start: float) -> list[SystemSample]:
    """Host samples as the trainer writes them, GPU rows from the stand-in nvidia-smi's CSV."""
    return [
        SystemSample.from_dict(
            {
                "time": start + 5 * n,
                "cpu_percent": 92.0 + n % 3,
                "ram_used_gb": 11.4,
                "ram_total_gb": 15.3,
                "disk_free_gb": 61.2,
                "disk_total_gb": 125.0,
                "gpus": [
                    {**row, "util_percent": (row["util_percent"] or 0) + (n * 7) % 20 - 8}
                    for row in gpu_rows(STARVED_CSV)
                ],
            }
        )
        for n in range(12)
    ]


CLASSES = ["BIO - Actros", "BOS - Altrua", "MDT - Adapta", "MDT - Sensia", "STJ - Accent"]
CONFUSION = [  # rows: true class, columns: predicted; 5 test images a class, as in the real set
    [5, 0, 0, 0, 0],
    [0, 4, 1, 0, 0],
    [0, 0, 2, 3, 0],
    [0, 0, 1, 4, 0],
    [1, 0, 0, 0, 4],
]


def demo_report() -> dict[str, object]:
    """report.json as trainer/report.py writes it, for a fixed confusion matrix."""
    import torch  # the report's own code needs it; the rest of the demo does not

    from trainer.engine import Evaluation
    from trainer.report import build_report

    confusion = torch.tensor(CONFUSION)
    accuracy = float(confusion.trace()) / float(confusion.sum())
    return build_report(Evaluation(0.61, accuracy, 1.0, confusion), CLASSES, 3, accuracy)


class DemoLifecycle(Lifecycle):
    def __init__(self, registry: Registry, aws: FixedPrices) -> None:
        super().__init__(registry)
        self.aws = aws

    def provider_of(self, run: Run) -> Provider:
        return self.aws if run.provider == "aws" else super().provider_of(run)


class DemoSupervisor(Supervisor):
    """Replays three epochs as if streamed; the money rules are not part of the picture."""

    async def watch(self, until: Callable[[], bool] | None = None) -> None:
        return

    async def follow(self, *, stop: asyncio.Event | None = None, budget: bool = True) -> str:
        start = NOW - 2 * HOUR
        run = self.run
        self.lifecycle.listener.lines(
            run.run_id, "train", [f"Training densenet121 … epochs 1→10 on {run.run_id}"]
        )
        steps = step_events(3, start, 0.5 * HOUR)
        for event in epoch_events(3, 10, start, 0.5 * HOUR):
            while steps and steps[0].time <= event.time:
                self.lifecycle.listener.metric(run.run_id, steps.pop(0))
            self.lifecycle.listener.metric(run.run_id, event)
            if event.event == "epoch":
                self.lifecycle.listener.lines(
                    run.run_id,
                    "train",
                    [
                        f"Epoch {event.epoch}/10: train loss {event.train_loss:.4f}, "
                        f"val acc {100 * (event.val_acc or 0):.1f}%"
                    ],
                )
        for sample in host_samples(NOW - 60):
            self.lifecycle.listener.system(run.run_id, sample)
        return "stopped"  # the demo stops following after epoch 3; training "goes on"


class DemoRuns(Runs):
    def supervisor(self, run_id: str) -> Supervisor:
        view = self.view(run_id)
        if view.supervisor is None:
            view.supervisor = DemoSupervisor(self.lifecycle, run_id, clock=self.clock)
        return view.supervisor


class DemoApp(PaceridApp):
    CSS_PATH = str(Path(ui_app.__file__).with_name("app.tcss"))  # relative: to this file


def write_config(path: Path, root: Path, provider: str) -> Path:
    config = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "configs/local.yaml").read_text()
    )
    config["output"]["dir"] = str(root / "results")
    config["output"]["ios_models_dir"] = str(root / "ios" / "Models")
    if provider == "aws":
        config["name"] = "pacerid-ml"
        config["instance"] = {
            "provider": "aws",
            "instance_type": "g4dn.xlarge",
            "max_price": 0.30,
            "budget_usd": 1.0,
            "ssh_cidr": "0.0.0.0/0",
        }
        config["training"]["epochs"] = 10
    path.write_text(yaml.safe_dump(config))
    return path


def demo_app(root: Path) -> PaceridApp:
    """The app over a prepared registry in `root` (PACERID_HOME must already point there)."""
    local_config = write_config(root / "local.yaml", root, "local")
    aws_config = write_config(root / "aws.yaml", root, "aws")
    results = root / "results" / LOCAL_RUN
    results.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({k: v for k, v in vars(e).items() if v is not None})
        for e in epoch_events(3, 3, NOW - 26 * HOUR, 40.0)
    ]
    (results / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (results / "report.json").write_text(json.dumps(demo_report()))
    aws_instance = Instance(
        instance_id="i-0a1b2c3d4e5f60718",
        provider="aws",
        state=InstanceState.RUNNING,
        host="54.210.17.42",
        launched_at=NOW - 2 * HOUR - 300,
        region="us-east-1",
        zone="us-east-1c",
        instance_type="g4dn.xlarge",
        market="spot",
        image_name="Deep Learning OSS Nvidia Driver AMI GPU PyTorch 2.7 (Ubuntu 22.04)",
        run_id=AWS_RUN,
    )
    registry = Registry(paths.registry_file())
    registry.save(
        Run(
            run_id=LOCAL_RUN,
            provider="local",
            config_path=str(local_config),
            created_at=NOW - 26 * HOUR,
            instance=Instance(
                instance_id="local-5e1f0c2a",
                provider="local",
                state=InstanceState.TERMINATED,
                host="127.0.0.1",
                port=40222,
                launched_at=NOW - 26 * HOUR - 60,
                ended_at=NOW - 25 * HOUR,
                zone="local",
                instance_type="local-cpu",
                state_reason="terminated by you",
                image_name="this machine's Python",
                run_id=LOCAL_RUN,
            ),
            steps_done=["launch", "upload", "setup", "data", "train", "download"],
            epoch=3,
            epochs=3,
            val_acc=0.81,
            downloaded_at=NOW - 25 * HOUR,
        )
    )
    registry.save(
        Run(
            run_id=AWS_RUN,
            provider="aws",
            config_path=str(aws_config),
            created_at=NOW - 2 * HOUR - 400,
            instance=aws_instance,
            steps_done=["launch", "upload", "setup", "data", "train"],
            epoch=3,
            epochs=10,
            val_acc=0.81,
            training_started_at=NOW - 2 * HOUR,  # the epochs DemoSupervisor replays
            epoch_ends=[NOW - 2 * HOUR + n * 0.5 * HOUR for n in (1, 2, 3)],
            epoch_seconds=[0.5 * HOUR] * 3,
        )
    )
    runs = DemoRuns(DemoLifecycle(registry, FixedPrices(aws_instance)), clock=lambda: NOW)
    return DemoApp(Path("local.yaml"), runs=runs, refresh_s=3600)


async def settle(pilot: Pilot[int]) -> None:
    """Wait until the table, the market and the replayed epochs are in, and all work is done."""
    app = pilot.app
    assert isinstance(app, PaceridApp)

    def ready() -> bool:
        training = app.runs.view(AWS_RUN).training
        # DataTable sizes its columns on its next idle: wait for that too.
        widths = [column.content_width for column in app.table.columns.values()]
        # The table scrolls its cursor into view after a refresh: on a short terminal the
        # picture would otherwise show whichever row happened to be on top.
        table = app.table
        rows_in_view = max(table.scrollable_content_region.height - table.header_height, 1)
        cursor_shown = table.scroll_y <= table.cursor_row < table.scroll_y + rows_in_view
        return (
            len(app.runs.rows) == 2
            and app.runs.view(AWS_RUN).market is not None
            and training is not None
            and len(training.epochs) == 3
            and len(app.runs.view(AWS_RUN).samples) == 12
            and widths[0] >= len(AWS_RUN)
            and cursor_shown
        )

    # Generous deadlines, and a failure rather than a picture of a half-drawn screen: on a loaded
    # machine the replay and the table's idle sizing can take many seconds.
    await wait_or_fail(pilot, ready, "the demo runs, market, epochs and samples never all arrived")
    await app.workers.wait_for_complete()
    # What streamed in is drawn at the next tick (FRAME_S): wait for it.
    await wait_or_fail(pilot, lambda: not app.tick_due, "the last tick never ran")
    await pilot.pause()


async def wait_or_fail(pilot: Pilot[int], check: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure} within {SETTLE_S:.0f} s")
        await pilot.pause(0.05)


if __name__ == "__main__":
    from textual._doc import take_svg_screenshot

    target = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PACERID_HOME"] = str(Path(tmp) / "home")
        os.chdir(tmp)
        svg = take_svg_screenshot(app=demo_app(Path(tmp)), terminal_size=SIZE, run_before=settle)
    target.write_text(svg)
    print(f"wrote {target}")
