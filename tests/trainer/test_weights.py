"""ImageNet weights as a host has them: a file in torch.hub's cache (a temporary TORCH_HOME),
named as torchvision expects and laid out as torchvision publishes it (densenet's dense layers
under their old key names, `denselayer1.norm.1.weight`). Nothing here downloads: a missing file
must stop a run, and the one fetch tried goes to a proxy on 127.0.0.1 that refuses it.

torch.hub checks a file's SHA-256 prefix only when it downloads it; a cached file is read as it
is (`torch.hub.load_state_dict_from_url`), so the stand-in files below load although their
bytes are not the published ones, and the trainer's log says so.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from tests.trainer.imagenet_files import published_name, write_published
from tests.trainer.support import events, run_trainer, write_config
from trainer.config import ARCHITECTURES
from trainer.errors import TrainerError
from trainer.model import build_model
from trainer.weights import published, sha256_prefix


def head_keys(model: nn.Module) -> set[str]:
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    return {f"{name}.weight", f"{name}.bias"}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_pretrained_weights_load_into_every_backbone_tensor(
    arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    published_state = write_published(arch, tmp_path)
    caplog.set_level(logging.INFO, logger="trainer")

    model = build_model(arch, 5, pretrained=True)

    head = head_keys(model)
    for key, value in model.state_dict().items():
        if key in head:
            assert value.shape[0] == 5  # our classes, initialised afresh
        elif not key.endswith("num_batches_tracked") or not arch.startswith("densenet"):
            assert torch.equal(value, published_state[published_name(arch, key)]), key
    file = published(arch).path
    assert file == tmp_path / "hub" / "checkpoints" / file.name
    expected = f"ImageNet weights {published(arch).name} loaded from {file} "
    assert f"{expected}(sha256 {sha256_prefix(file)}…)" in caplog.text
    assert "is not the published file" in caplog.text  # a stand-in, and the log says so


def refused_proxy() -> str:
    """A proxy address on 127.0.0.1 where nothing listens: any download through it fails."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def pretrained_config(tmp_path: Path) -> Path:
    config = write_config(tmp_path, epochs=1, arch="resnet18")
    raw = yaml.safe_load(config.read_text())
    raw["model"]["pretrained"] = True
    config.write_text(yaml.safe_dump(raw))
    return config


def test_missing_weights_stop_the_run_before_training_in_one_sentence(tmp_path: Path) -> None:
    proxy = refused_proxy()
    done = run_trainer(
        "train",
        "--config",
        pretrained_config(tmp_path),
        "--data",
        tmp_path / "data",
        TORCH_HOME=str(tmp_path / "torch"),
        https_proxy=proxy,
        HTTPS_PROXY=proxy,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    [sentence] = done.stderr.strip().splitlines()
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert "model.pretrained is true" in sentence and "resnet18-f37072fd.pth" in sentence
    assert f"{cache} (TORCH_HOME)" in sentence
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in sentence
    assert events(tmp_path / "output", "step") == []  # not one step trained
    assert events(tmp_path / "output", "error")[0]["message"] == sentence


def test_weights_command_fetches_nothing_without_pretrained_and_fails_in_one_sentence(
    tmp_path: Path,
) -> None:
    proxy = refused_proxy()
    env = {"TORCH_HOME": str(tmp_path / "torch"), "https_proxy": proxy, "HTTPS_PROXY": proxy}
    scratch = write_config(tmp_path, arch="resnet18")
    done = run_trainer("weights", "--config", scratch, **env)
    assert done.returncode == 0 and "no weights to fetch" in done.stdout

    failed = run_trainer("weights", "--config", pretrained_config(tmp_path), **env)
    assert failed.returncode == 1
    [sentence] = failed.stderr.strip().splitlines()
    assert sentence.startswith("Could not fetch the ImageNet weights for resnet18 from https://")
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in sentence
    assert not list((tmp_path / "torch").rglob("*.pth*"))  # nothing half-written left behind


def test_a_cached_file_that_is_not_weights_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / published("resnet18").path.name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>a proxy's error page</html>")
    with pytest.raises(TrainerError, match=r"do not load .*delete the file and run setup again"):
        build_model("resnet18", 3, pretrained=True)
