"""Stand-ins for torchvision's published ImageNet checkpoints, written where torch.hub reads them.

Nothing in the tests or benchmarks may download, so they write a file in the published layout
under the exact name torchvision expects, in TORCH_HOME/hub/checkpoints/: 1,000 ImageNet
classes, and densenet's dense layers under their old key names (`denselayer1.norm.1.weight`,
which torchvision remaps when it loads the file). The values are random, not ImageNet's.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torchvision import models

from trainer.weights import published

OLD_DENSE_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$"
)
"""A dense layer's key as torchvision names it now (`norm1`), split to write the old `norm.1`."""


def published_name(arch: str, key: str) -> str:
    return OLD_DENSE_KEY.sub(r"\1.\2.\3", key) if arch.startswith("densenet") else key


def write_published(arch: str, torch_home: Path) -> dict[str, torch.Tensor]:
    """A stand-in for the published checkpoint of `arch` at the path torchvision reads under
    `torch_home`. Every tensor is random, BatchNorm statistics included, so a tensor that was not
    loaded cannot equal the file's by chance; densenet's file (2017) predates BatchNorm's
    num_batches_tracked and carries none."""
    generator = torch.Generator().manual_seed(7)
    state = {}
    for key, value in models.get_model(arch, weights=None).state_dict().items():
        if arch.startswith("densenet") and key.endswith("num_batches_tracked"):
            continue
        if value.is_floating_point():
            value = torch.rand(value.shape, generator=generator) + 0.5  # a valid running_var too
        else:
            value = torch.randint(1, 1000, value.shape, generator=generator)
        state[published_name(arch, key)] = value
    path = torch_home / "hub" / "checkpoints" / published(arch).path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state
