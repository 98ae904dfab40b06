"""Every run side by side: what it trained (model, image size, learning rate, epochs), how well,
how long, what it cost, what interrupted it, where it stands; and how the configs of a few runs
differ, for the dashboard's overlay of their curves.

Rows come from the registry (so the history survives restarts), each run's config through
`Lifecycle.config_of` (the config the run was launched with), its validation curve from the
downloaded metrics.jsonl and its test accuracy (the chosen model's, once) from report.json. A
row is formatted once (`HistoryRow.cells`), for the `history` command and the dashboard's view
alike. Only queries: nothing here changes a run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacerid_tui.config import Config
from pacerid_tui.core.kernel import host_records
from pacerid_tui.core.kernel.errors import PaceridError, UsageError
from pacerid_tui.core.kernel.models import MetricEvent, Run
from pacerid_tui.core.results.mistakes import read_report
from pacerid_tui.core.steps.status import uptime_text

if TYPE_CHECKING:
    from pacerid_tui.core.steps.lifecycle import Lifecycle

HEADERS = (
    "Run", "Model", "Size", "LR", "Epochs", "Best val", "Test", "Duration", "Cost", "Interrupted",
    "State",
)  # fmt: skip


@dataclass(frozen=True)
class HistoryRow:
    run_id: str
    created_at: float
    model: str | None
    image_size: int | None
    learning_rate: float | None
    epochs: int | None
    epochs_done: int | None
    best_val_acc: float | None
    test_acc: float | None
    duration_s: float | None
    cost_usd: float
    interruptions: int
    state: str

    def cells(self) -> list[str]:
        """The row as the table shows it, in HEADERS order."""
        return [
            self.run_id,
            self.model or "?",
            f"{self.image_size} px" if self.image_size else "?",
            f"{self.learning_rate:g}" if self.learning_rate is not None else "?",
            f"{self.epochs_done or 0}/{self.epochs or '?'}",
            f"{self.best_val_acc:.1%}" if self.best_val_acc is not None else "—",
            f"{self.test_acc:.1%}" if self.test_acc is not None else "—",
            uptime_text(self.duration_s) if self.duration_s is not None else "—",
            f"${self.cost_usd:.4f}",
            str(self.interruptions),
            self.state,
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SORT_KEYS = {
    "created": lambda r: r.created_at,
    "accuracy": lambda r: r.best_val_acc if r.best_val_acc is not None else -1.0,
    "cost": lambda r: r.cost_usd,
    "duration": lambda r: r.duration_s or 0.0,
    "lr": lambda r: r.learning_rate or 0.0,
    "model": lambda r: r.model or "",
}
"""What the history sorts by (`--sort`, and the dashboard's column keys)."""


def sort_rows(rows: list[HistoryRow], key: str) -> list[HistoryRow]:
    if key not in SORT_KEYS:
        raise UsageError(f"Cannot sort the history by {key!r}; use one of {', '.join(SORT_KEYS)}.")
    return sorted(rows, key=SORT_KEYS[key], reverse=key in ("accuracy", "cost", "duration"))


def test_accuracy(path: Path) -> float | None:
    """The test accuracy in a downloaded report.json; None before there is one."""
    try:
        return read_report(path).accuracy
    except UsageError:
        return None


def config_of(lifecycle: Lifecycle, run: Run) -> Config | None:
    try:
        return lifecycle.config_of(run)
    except PaceridError:
        return None  # its config file is gone or broken: the row shows what the registry has


async def history(lifecycle: Lifecycle, now: float) -> list[HistoryRow]:
    """Every run the registry knows, oldest first."""
    runs = lifecycle.registry.runs()
    statuses = {r.run_id: r for r in await lifecycle.statuses(runs, now=now)}
    rows = []
    for run in runs:
        config = config_of(lifecycle, run)
        curve: list[MetricEvent] = []
        test_acc = None
        if config:
            results = lifecycle.results_dir(run)
            curve = host_records.epoch_curve(results / "metrics.jsonl")
            test_acc = test_accuracy(results / "report.json")
        accuracies = [e.val_acc for e in curve if e.val_acc is not None]
        if run.val_acc is not None:
            accuracies.append(run.val_acc)
        inst = run.instance
        duration = None
        if inst is not None and inst.launched_at is not None:
            duration = (inst.ended_at or now) - inst.launched_at
        status = statuses.get(run.run_id)
        rows.append(
            HistoryRow(
                run_id=run.run_id,
                created_at=run.created_at,
                model=config.model.name if config else None,
                image_size=config.data.image_size if config else None,
                learning_rate=config.training.learning_rate if config else None,
                epochs=config.training.epochs if config else run.epochs,
                epochs_done=run.epoch,
                best_val_acc=max(accuracies) if accuracies else None,
                test_acc=test_acc,
                duration_s=duration,
                cost_usd=status.cost_usd if status else run.cost_usd,
                interruptions=len(run.interruptions),
                state=status.state if status else "not launched",
            )
        )
    return rows


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(configs: dict[str, Config]) -> list[tuple[str, dict[str, Any]]]:
    """The config keys whose values differ between these runs: (key, {run id: value})."""
    flat = {run_id: flatten(config.model_dump()) for run_id, config in configs.items()}
    keys = sorted({key for values in flat.values() for key in values})
    differences = []
    for key in keys:
        values = {run_id: values.get(key) for run_id, values in flat.items()}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1:
            differences.append((key, values))
    return differences
