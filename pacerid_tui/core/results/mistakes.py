"""What the model got wrong, from a finished run's downloaded report.json.

The trainer's report (trainer/report.py) holds per-class counts and the confusion matrix of the
chosen model (the epoch with the best validation accuracy) on the Test split, from the run's one
pass over Test, and that epoch's validation accuracy. The real test set has 5 images a class,
so a class's accuracy
moves in 20 % steps and the count matters as much as the share: both are shown. Worst classes
come first, then the pairs the model confuses most (true → predicted). The lines are formatted
here once, for the `mistakes` command and the dashboard's view alike.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from pacerid_tui.core.kernel.errors import UsageError

PAIRS_SHOWN = 10
"""The most confused pairs listed: beyond that each is a single image."""


@dataclass(frozen=True)
class ClassResult:
    name: str
    correct: int
    count: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None


@dataclass(frozen=True)
class Confusion:
    true: str
    predicted: str
    count: int
    share: float
    """Of the true class's images."""


@dataclass(frozen=True)
class Mistakes:
    accuracy: float
    images: int
    classes: list[ClassResult]
    """Worst first: lowest accuracy, then most images, then by name."""
    pairs: list[Confusion]
    """Most confused first."""
    manufacturer_accuracy: float | None = None
    """The same test pass when only the maker must be right; None where names carry none."""
    epoch: int | None = None
    """The epoch of the model tested."""
    validation_accuracy: float | None = None
    """That epoch's accuracy on the validation split, which chose it; None in older reports."""


def read_report(path: Path) -> Mistakes:
    """The mistakes in report.json at `path`; a UsageError sentence when it is missing or bad."""
    try:
        report = json.loads(path.read_text())
        names = list(report["classes"])
        matrix = [[int(v) for v in row] for row in report["confusion_matrix"]]
        accuracy = float(report["accuracy"])
        makers = report.get("manufacturer") or {}
        validation = report.get("validation") or {}
        chosen = {
            "manufacturer_accuracy": makers.get("accuracy"),
            "epoch": report.get("epoch"),
            "validation_accuracy": validation.get("accuracy"),
        }
    except FileNotFoundError:
        raise UsageError(
            f"No report at {path}: it is written when training finishes; download the "
            "finished run first (`pacerid-tui download`)."
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"{path} is not a report the trainer wrote; download it again.") from None
    return dataclasses.replace(mistakes_of(names, matrix, accuracy), **chosen)


def mistakes_of(names: list[str], matrix: list[list[int]], accuracy: float) -> Mistakes:
    """From a confusion matrix with rows = true class, columns = predicted class."""
    classes = [ClassResult(name, matrix[i][i], sum(matrix[i])) for i, name in enumerate(names)]
    classes.sort(key=lambda c: (c.accuracy if c.accuracy is not None else 2.0, -c.count, c.name))
    pairs = [
        Confusion(names[i], names[j], count, count / max(1, sum(matrix[i])))
        for i, row in enumerate(matrix)
        for j, count in enumerate(row)
        if i != j and count
    ]
    pairs.sort(key=lambda p: (-p.count, -p.share, p.true, p.predicted))
    return Mistakes(accuracy, sum(map(sum, matrix)), classes, pairs[:PAIRS_SHOWN])


def percent(share: float | None) -> str:
    return "  —" if share is None else f"{share:4.0%}".replace("%", " %")


def lines(mistakes: Mistakes) -> list[str]:
    """The mistakes as text: per-class accuracy with counts, worst first, then the pairs."""
    makers = mistakes.manufacturer_accuracy
    out = [
        f"Accuracy {percent(mistakes.accuracy).strip()} on {mistakes.images} test images"
        + (f", manufacturer {percent(makers).strip()}." if makers is not None else "."),
    ]
    if mistakes.epoch is not None and mistakes.validation_accuracy is not None:
        out.append(
            f"The model of epoch {mistakes.epoch}, chosen on validation accuracy "
            f"{percent(mistakes.validation_accuracy).strip()}; tested once."
        )
    out += ["", "Per class, worst first (correct/images):"]
    width = max((len(f"{c.correct}/{c.count}") for c in mistakes.classes), default=3)
    for result in mistakes.classes:
        counts = f"{result.correct}/{result.count}".rjust(width)
        out.append(f"  {percent(result.accuracy)}  {counts}  {result.name}")
    out += ["", "Most confused (true → predicted):"]
    if not mistakes.pairs:
        out.append("  none: every test image was classified correctly.")
    for pair in mistakes.pairs:
        out.append(
            f"  {pair.count} × {pair.true} → {pair.predicted} ({percent(pair.share).strip()} "
            f"of {pair.true})"
        )
    return out
