"""The classifier networks: torchvision architectures with the head sized to our classes.

Shared by training and by the exporter, so both build exactly the same module tree and a
checkpoint's `model_state` loads into either. ImageNet weights are optional: the host usually
has internet, a test machine does not, and a run should go on (and say so) when they can't
be fetched.
"""

from __future__ import annotations

import logging

from torch import nn
from torchvision import models

from trainer.config import ARCHITECTURES

# Inputs are normalised with these on the device during training; the exporter bakes them in.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

log = logging.getLogger(__name__)


def build_model(arch: str, num_classes: int, pretrained: bool = False) -> nn.Module:
    """A torchvision `arch` whose last linear layer has `num_classes` outputs."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown model '{arch}'; choose one of {', '.join(ARCHITECTURES)}.")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}.")
    if not pretrained:
        return models.get_model(arch, weights=None, num_classes=num_classes)
    model = models.get_model(arch, weights=None)
    weights = models.get_model_weights(arch).DEFAULT
    try:
        model.load_state_dict(weights.get_state_dict(progress=False))
    except Exception as err:  # any fetch or cache failure: train from scratch, loudly
        log.warning(
            "Could not fetch ImageNet weights for %s (%s); training from random initialisation.",
            arch,
            err,
        )
    replace_head(model, num_classes)
    return model


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the last nn.Linear (the classifier of every supported arch) for a fresh one."""
    name, last = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    assert isinstance(last, nn.Linear)
    parent = model.get_submodule(name.rpartition(".")[0])
    head = nn.Linear(last.in_features, num_classes)
    setattr(parent, name.rpartition(".")[2], head)
