"""ImageNet weights: fetched once by setup, loaded by training from torch's cache, or a loud stop.

The published densenet checkpoints keep old key names (`denselayer1.norm.1.weight`); only
torchvision's own path, `models.get_model(arch, weights=…)`, remaps them (a plain
`load_state_dict` fails part-way, after copying the keys that match). That path reads the file
torch.hub caches under TORCH_HOME/hub/checkpoints/ and downloads it, checking the SHA-256
prefix in its name, only when it is missing: a cached file is read as it is, unchecked. So:

- setup runs `python -m trainer weights`: it checks the cached file's hash and downloads the
  file (hash-checked by torch.hub) when it is missing or not the published one;
- training never touches the network: a missing file stops the run before its first step, in
  one sentence naming the file, its URL and the cache folder; a file that is there is loaded by
  torchvision, and the log names the weights, the file and the SHA-256 prefix of its bytes
  (with a warning when that is not the published prefix: a file put there by hand).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models

from trainer.errors import TrainerError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """The ImageNet weights torchvision publishes for an architecture, and where they cache."""

    arch: str
    weights: models.WeightsEnum
    path: Path
    """The file torch.hub reads: TORCH_HOME/hub/checkpoints/<the URL's file name>."""
    hash_prefix: str
    """The SHA-256 prefix in the file's name, which torch.hub checks when it downloads."""

    @property
    def name(self) -> str:
        return f"{type(self.weights).__name__}.{self.weights.name}"

    @property
    def url(self) -> str:
        return str(self.weights.url)

    def cache_note(self) -> str:
        source = "TORCH_HOME" if os.environ.get("TORCH_HOME") else "TORCH_HOME unset: the default"
        return f"{self.path.parent} ({source})"


def published(arch: str) -> Published:
    weights = models.get_model_weights(arch).DEFAULT
    filename = os.path.basename(urlparse(weights.url).path)
    found = torch.hub.HASH_REGEX.search(filename)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return Published(arch, weights, cache / filename, found.group(1) if found else "")


def sha256_prefix(path: Path, length: int = 8) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[: max(8, length)]


def load_pretrained(arch: str) -> nn.Module:
    """`arch` with its ImageNet weights, from the cache only; TrainerError when they are not
    there or do not load."""
    found = published(arch)
    if not found.path.is_file():
        raise TrainerError(
            f"model.pretrained is true but the ImageNet weights for {arch} are not on this host: "
            f"{found.path.name} is missing from {found.cache_note()}; setup fetches it from "
            f"{found.url} (`python -m trainer weights --config FILE`), or set "
            "model.pretrained: false to train from scratch."
        )
    try:
        model = models.get_model(arch, weights=found.weights)
    except Exception as err:  # unpickling and key errors alike: a file that is not the weights
        raise TrainerError(
            f"The ImageNet weights in {found.path} do not load ({type(err).__name__}); delete "
            f"the file and run setup again to fetch it from {found.url}."
        ) from None
    actual = sha256_prefix(found.path, len(found.hash_prefix))
    log.info("ImageNet weights %s loaded from %s (sha256 %s…).", found.name, found.path, actual)
    if found.hash_prefix and actual != found.hash_prefix:
        log.warning(
            "%s is not the published file (its SHA-256 starts %s, the published one %s); "
            "setup replaces it.",
            found.path,
            actual,
            found.hash_prefix,
        )
    return model


def fetch(arch: str) -> Published:
    """The published weights of `arch` in the cache, downloaded (hash-checked) unless there."""
    found = published(arch)
    length = len(found.hash_prefix)
    if found.path.is_file() and sha256_prefix(found.path, length) == found.hash_prefix:
        log.info("ImageNet weights %s already in %s.", found.name, found.path)
        return found
    log.info("Downloading ImageNet weights %s from %s…", found.name, found.url)
    found.path.parent.mkdir(parents=True, exist_ok=True)
    try:  # a temporary file, moved into place once its hash is right
        torch.hub.download_url_to_file(found.url, str(found.path), found.hash_prefix or None, False)
    except (OSError, RuntimeError) as err:
        reason = getattr(err, "reason", None) or err
        raise TrainerError(
            f"Could not fetch the ImageNet weights for {arch} from {found.url} into "
            f"{found.cache_note()} ({reason}); check the host's internet access, put "
            f"{found.path.name} there yourself, or set model.pretrained: false."
        ) from None
    log.info("ImageNet weights %s saved to %s.", found.name, found.path)
    return found
