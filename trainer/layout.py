"""The ImageFolder layout the trainer reads: DATA/Train/<class>/*.png and DATA/Test/<class>/….

Kept free of torch so `download` and `synthetic` start fast; data.py decodes what this finds.
Class names are the sub-folder names, sorted, as torchvision's ImageFolder does, so a class
index means the same thing in training, in the checkpoint and in the exported model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer.errors import TrainerError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Listing:
    """One ImageFolder split: class names in index order, files and their labels."""

    classes: list[str]
    files: list[Path]
    labels: list[int]


def split_dir(data_dir: Path, name: str) -> Path:
    """data_dir/<name>, matched case-insensitively (Train, train, TRAIN)."""
    if data_dir.is_dir():
        for child in sorted(data_dir.iterdir()):
            if child.is_dir() and child.name.lower() == name.lower():
                return child
    raise TrainerError(f"{data_dir} has no {name}/ folder; fetch or generate the dataset first.")


def list_split(folder: Path) -> Listing:
    """Classes are the sub-folders (sorted, like torchvision's ImageFolder)."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    if not files:
        raise TrainerError(f"{folder} holds no images in class sub-folders.")
    return Listing(classes, files, labels)


def check_classes(train: Listing, test: Listing) -> None:
    if train.classes != test.classes:
        only_train = sorted(set(train.classes) - set(test.classes))
        only_test = sorted(set(test.classes) - set(train.classes))
        raise TrainerError(
            "Train and Test have different classes "
            f"(only in Train: {only_train or 'none'}; only in Test: {only_test or 'none'}); "
            "fix the dataset folders."
        )
