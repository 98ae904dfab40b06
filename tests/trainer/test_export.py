"""The Core ML exporter on a real (tiny) trained model: the package's spec is read back
independently, the preprocessing check is shown to catch a missing or wrong normalisation,
and bad checkpoints are refused with exit 2 and one sentence."""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import coremltools as ct
import pytest
import torch
from coremltools.proto import FeatureTypes_pb2

from trainer.augment import prepare_eval
from trainer.export import (
    ExportCheckError,
    Preprocessed,
    check_preprocessing,
    main,
    restore_model,
    save_replacing,
    spec_labels,
    verify_package,
)
from trainer.model import IMAGENET_MEAN, IMAGENET_STD, build_model

pytestmark = pytest.mark.xdist_group("trainer-export")
"""One worker runs this module: its module-scoped fixture trains once, not once per worker."""

LABELS = ["Sorin Reply", "Medtronic Azure", "Boston Scientific Accolade"]  # not sorted
SIZE = 32


def train_one_epoch_checkpoint(path: Path) -> dict:
    """resnet18 trained for one epoch on CPU on random 32px images, saved as the trainer does."""
    torch.manual_seed(0)
    model = build_model("resnet18", len(LABELS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    images, targets = torch.rand(24, 3, SIZE, SIZE), torch.arange(24) % len(LABELS)
    model.train()
    for batch, target in zip(images.split(8), targets.split(8), strict=True):
        loss = torch.nn.functional.cross_entropy(model((batch - mean) / std), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ckpt = {
        "format_version": 1,
        "epoch": 1,
        "step": 3,
        "arch": "resnet18",
        "num_classes": len(LABELS),
        "class_names": LABELS,
        "image_size": SIZE,
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": {},
        "scaler_state": {},
        "best_val_acc": 0.34,
        "config": {"model": {"name": "resnet18"}, "data": {"image_size": SIZE}},
        "metrics": {"train_loss": loss.item(), "val_loss": 1.1, "val_acc": 0.34},
    }
    torch.save(ckpt, path)
    return ckpt


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint_best.pt"
    train_one_epoch_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> tuple[dict, Path]:
    """Export once for the module: (the JSON result line, the output folder)."""
    out = tmp_path_factory.mktemp("coreml")
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(["--checkpoint", str(checkpoint), "--out", str(out), "--version", "v1.2.3"])
    assert code == 0, stderr.getvalue()
    [line] = stdout.getvalue().splitlines()
    return json.loads(line), out


def test_export_writes_a_package_whose_spec_matches_the_checkpoint(checkpoint, exported):
    result, out = exported
    package = out / "PacerIDClassifier.mlpackage"
    assert result["package"] == str(package) and package.is_dir()
    assert [p.name for p in out.iterdir()] == [package.name]  # no staging copy left behind
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert result["checkpoint_sha256"] == sha
    assert result["labels"] == LABELS and result["image_size"] == SIZE
    assert set(result["checks"]) >= {"preprocessing", "input", "labels", "float16", "ios16"}
    assert result["max_abs_diff"] < 1e-4

    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    desc = spec.description
    assert [i.name for i in desc.input] == ["image"]
    image = desc.input[0].type.imageType
    assert (image.width, image.height) == (SIZE, SIZE)
    assert image.colorSpace == FeatureTypes_pb2.ImageFeatureType.RGB
    assert desc.predictedFeatureName == "classLabel"
    assert {o.name for o in desc.output} == {"classLabel", desc.predictedProbabilitiesName}
    assert spec_labels(spec) == LABELS  # the checkpoint's order, not sorted
    assert spec.specificationVersion == 7  # iOS 16
    meta = desc.metadata
    assert meta.versionString == "v1.2.3" and meta.author == "PacerID"
    assert "pacemaker" in meta.shortDescription
    assert meta.userDefined["pacerid.checkpoint_sha256"] == sha
    assert json.loads(meta.userDefined["pacerid.labels"]) == LABELS
    assert float(meta.userDefined["pacerid.metrics.val_acc"]) == pytest.approx(0.34)
    assert meta.userDefined["pacerid.exported_at"]


def test_a_package_failing_its_checks_never_replaces_the_previous_one(exported):
    result, out = exported
    package = Path(result["package"])
    spec = ct.models.MLModel(str(package), skip_model_load=True)
    meta = {k: v for k, v in spec.user_defined_metadata.items() if k.startswith("pacerid.")}
    assert verify_package(package, LABELS, SIZE, meta)
    before = {p: p.read_bytes() for p in package.rglob("*") if p.is_file()}

    wrong = [LABELS[1], LABELS[0], LABELS[2]]
    with pytest.raises(ExportCheckError, match="failed its spec checks: labels"):
        save_replacing(spec, package, lambda staged: verify_package(staged, wrong, SIZE, meta))
    with pytest.raises(ExportCheckError, match="image_size"):
        verify_package(package, LABELS, SIZE * 2, meta)
    assert {p: p.read_bytes() for p in package.rglob("*") if p.is_file()} == before
    assert [p.name for p in out.iterdir()] == [package.name]


def test_preprocessing_check_passes_for_the_exported_wrapper(checkpoint):
    ckpt = torch.load(checkpoint, weights_only=True)
    model = restore_model(ckpt, checkpoint)
    assert check_preprocessing(Preprocessed(model).eval(), model, SIZE) < 1e-4


def test_exported_preprocessing_is_what_the_trainer_evaluates_with(checkpoint):
    """Raw pixels through the export wrapper == the trainer's eval pipeline, then softmax."""
    model = restore_model(torch.load(checkpoint, weights_only=True), checkpoint)
    pixels = torch.randint(0, 256, (4, SIZE, SIZE, 3), dtype=torch.uint8)  # NHWC, as loaded
    with torch.no_grad():
        trained = torch.softmax(model(prepare_eval(pixels, channels_last=False)), dim=1)
        exported = Preprocessed(model).eval()(pixels.permute(0, 3, 1, 2).float())
    torch.testing.assert_close(exported, trained, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda m, x: torch.softmax(m(x), dim=1), id="no-normalisation-at-all"),
        pytest.param(lambda m, x: torch.softmax(m(x / 255), dim=1), id="scaled-but-no-mean-std"),
        pytest.param(lambda m, x: Preprocessed(m)(x.flip(1)), id="bgr-channel-order"),
    ],
)
def test_preprocessing_check_fails_when_normalisation_is_wrong(checkpoint, broken):
    ckpt = torch.load(checkpoint, weights_only=True)
    model = restore_model(ckpt, checkpoint)
    with pytest.raises(ExportCheckError, match="preprocessing check failed"):
        check_preprocessing(lambda x: broken(model, x), model, SIZE)


def bad_checkpoint(path: Path, kind: str) -> None:
    if kind == "corrupt":
        path.write_bytes(b"definitely not a checkpoint\n")
        return
    model = build_model("resnet18", 3)
    ckpt = {
        "format_version": 1,
        "arch": "resnet18",
        "num_classes": 3,
        "class_names": ["a", "b", "c"],
        "image_size": SIZE,
        "model_state": model.state_dict(),
    }
    if kind == "no-labels":
        del ckpt["class_names"]
    elif kind == "label-count":
        ckpt["class_names"] = ["a", "b"]
    elif kind == "wrong-arch":
        ckpt["arch"] = "mobilenet_v3_large"
    elif kind == "future-format":
        ckpt["format_version"] = 2
    torch.save(ckpt, path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such checkpoint file"),
        ("corrupt", "is not a readable PyTorch checkpoint"),
        ("no-labels", "lacks class_names"),
        ("label-count", "class_names must be 3 distinct"),
        ("wrong-arch", "weights do not fit a mobilenet_v3_large"),
        ("future-format", "checkpoint format 2"),
    ],
)
def test_bad_checkpoints_exit_2_with_one_sentence(tmp_path, capsys, kind, message):
    path = tmp_path / "checkpoint_latest.pt"
    if kind != "missing":
        bad_checkpoint(path, kind)
    code = main(["--checkpoint", str(path), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    [line] = captured.err.splitlines()  # one sentence, no traceback, no warnings
    assert line.startswith("export: ") and str(path) in line and message in line
    assert not (tmp_path / "out" / "PacerIDClassifier.mlpackage").exists()
