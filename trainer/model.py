"""The classifier networks: torchvision architectures with the head sized to our classes.

Shared by training and by the exporter, so both build exactly the same module tree and a
checkpoint's `model_state` loads into either. ImageNet weights come through torchvision's own
loading path from the file setup fetched (trainer/weights.py); when `model.pretrained` is true
and they are not there, the run stops before training instead of training from scratch.
"""

from __future__ import annotations

from torch import nn
from torchvision import models

from trainer.config import ARCHITECTURES
from trainer.weights import load_pretrained

# Inputs are normalised with these on the device during training; the exporter bakes them in.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_model(arch: str, num_classes: int, pretrained: bool = False) -> nn.Module:
    """A torchvision `arch` whose last linear layer has `num_classes` outputs."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown model '{arch}'; choose one of {', '.join(ARCHITECTURES)}.")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}.")
    if not pretrained:
        return models.get_model(arch, weights=None, num_classes=num_classes)
    model = load_pretrained(arch)
    replace_head(model, num_classes)
    return model


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the last nn.Linear (the classifier of every supported arch) for a fresh one."""
    name, last = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    assert isinstance(last, nn.Linear)
    parent = model.get_submodule(name.rpartition(".")[0])
    head = nn.Linear(last.in_features, num_classes)
    setattr(parent, name.rpartition(".")[2], head)
