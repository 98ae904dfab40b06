"""report.json and the confusion-matrix picture, written once at the end of a run.

They describe the chosen model (the epoch with the best validation accuracy) on the Test split,
from the run's one pass over Test, next to that epoch's validation figures (the same numbers
as its `epoch` event in metrics.jsonl). Class names of the Kaggle set start with the
manufacturer (`BIO - …`, `MDT_…`), and a wrong model from the right maker matters less to a
clinician, so manufacturer-level accuracy is reported too whenever names carry one: with the
model-group accuracy, the paper's two numbers, both from the same test pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from trainer.engine import Evaluation

PNG_NAME = "confusion_matrix.png"
MAKER_PATTERN = re.compile(r"\s*([A-Za-z0-9]+)\s*[-_ ]")
CELL = 28
LABEL_WIDTH = 220


def build_report(
    evaluation: Evaluation,
    classes: list[str],
    epoch: int,
    best_val_acc: float,
    validation: dict[str, float] | None = None,
    epochs_trained: int | None = None,
) -> dict[str, Any]:
    """`evaluation` is the test pass of epoch `epoch`'s model; `validation` that epoch's
    metrics as the checkpoint holds them (val_loss, val_acc, val_top5, train_loss)."""
    confusion = evaluation.confusion
    figures = validation or {}
    per_class = []
    for index, name in enumerate(classes):
        count = int(confusion[index].sum())
        correct = int(confusion[index, index])
        per_class.append(
            {
                "class": name,
                "count": count,
                "correct": correct,
                "accuracy": correct / count if count else None,
            }
        )
    return {
        "epoch": epoch,
        "epochs_trained": epoch if epochs_trained is None else epochs_trained,
        "split": "Test",
        "images": int(confusion.sum()),
        "accuracy": evaluation.accuracy,
        "top5_accuracy": evaluation.top5,
        "loss": evaluation.loss,
        "best_val_acc": best_val_acc,
        "validation": {
            "accuracy": figures.get("val_acc", best_val_acc),
            "top5_accuracy": figures.get("val_top5"),
            "loss": figures.get("val_loss"),
            "images": figures.get("val_images"),
        },
        "classes": classes,
        "per_class": per_class,
        "manufacturer": manufacturer_accuracy(confusion, classes),
        "confusion_matrix": confusion.tolist(),
        "confusion_matrix_png": PNG_NAME,
    }


def manufacturer_accuracy(confusion: torch.Tensor, classes: list[str]) -> dict[str, Any] | None:
    """Accuracy when only the maker has to be right; None when names carry no maker."""
    matches = [MAKER_PATTERN.match(name) for name in classes]
    if not all(matches):
        return None
    makers = [match.group(1).upper() for match in matches if match]
    names = sorted(set(makers))
    if len(names) < 2 or len(names) == len(classes):
        return None
    index = torch.tensor([names.index(maker) for maker in makers])
    grouped = torch.zeros(len(names), len(names), dtype=torch.int64)
    grouped.index_put_((index[:, None], index[None, :]), confusion, accumulate=True)
    per_maker = {
        name: int(grouped[i, i]) / int(grouped[i].sum()) if grouped[i].sum() else None
        for i, name in enumerate(names)
    }
    return {
        "accuracy": int(grouped.trace()) / max(1, int(grouped.sum())),
        "per_manufacturer": per_maker,
        "confusion_matrix": grouped.tolist(),
        "manufacturers": names,
    }


def draw_confusion(confusion: torch.Tensor, classes: list[str], path: Path) -> None:
    """Rows are true classes, columns predictions; darker means more images."""
    n = len(classes)
    image = Image.new("RGB", (LABEL_WIDTH + n * CELL + 10, 40 + n * CELL + 10), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((LABEL_WIDTH, 8), "predicted → (columns in the same order)", fill="black", font=font)
    rows = confusion.double()
    shares = rows / rows.sum(dim=1, keepdim=True).clamp(min=1)
    for i in range(n):
        y = 40 + i * CELL
        draw.text((6, y + 8), f"{i:>2} {classes[i][:30]}", fill="black", font=font)
        for j in range(n):
            x = LABEL_WIDTH + j * CELL
            shade = int(255 * (1 - float(shares[i, j])))
            fill = (shade, shade, 255) if i == j else (255, shade, shade)
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=fill, outline="#cccccc")
            count = int(confusion[i, j])
            if count:
                colour = "white" if shade < 128 else "black"
                draw.text((x + 4, y + 8), str(count), fill=colour, font=font)
    image.save(path)
