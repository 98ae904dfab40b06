"""Export a training checkpoint to the Core ML package the iOS app ships.

The guide's old exporter fed the network un-normalised pixels and dropped the class names, so
the app would have predicted garbage with anonymous labels. Here the preprocessing the trainer
applies (pixels / 255, then ImageNet mean and std) is part of the converted graph: the app hands
Core ML an RGB image and gets back a class name and a probability per class, in the
checkpoint's class order.

Core ML can only run a model on macOS, so on Linux the result is checked two ways before it
replaces any previous package: the traced graph that gets converted is compared numerically
with the original network on manually normalised input, and the saved package's spec is read
back (input, outputs, image size, labels in order, FLOAT16, iOS 16 opset, metadata).

`python -m trainer export --checkpoint FILE --out DIR` prints progress on stderr and one JSON
line describing the result on stdout. Exit 0: exported; 2: bad input (one sentence on stderr);
1: conversion or a check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.model import IMAGENET_MEAN, IMAGENET_STD, build_model

CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = (
    "format_version",
    "arch",
    "num_classes",
    "class_names",
    "image_size",
    "model_state",
)
INPUT_NAME = "image"
LABEL_OUTPUT = "classLabel"
IOS16_SPEC_VERSION = 7  # Core ML specification 7 == iOS 16 / macOS 13; its opset is CoreML6
TOLERANCE = 1e-4  # max |Δprobability| between the exported graph and the reference


class ExportInputError(Exception):
    """The checkpoint or an argument is unusable; the message says which and why (exit 2)."""


class ExportCheckError(Exception):
    """The exported model failed a check; it was not written over any previous one (exit 1)."""


class Preprocessed(nn.Module):
    """The network with the trainer's input normalisation in front and softmax behind it."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """RGB pixels in 0..255, shape (N, 3, H, W) → class probabilities (N, classes)."""
        scaled = pixels / 255.0
        return torch.softmax(self.model((scaled - self.mean) / self.std), dim=1)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and validate a checkpoint written by the trainer (format 1)."""
    if not path.is_file():
        raise ExportInputError(f"{path}: no such checkpoint file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": noise here
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ExportInputError(f"{path} is not a readable PyTorch checkpoint ({reason}).") from None
    if not isinstance(ckpt, dict):
        raise ExportInputError(f"{path} holds a {type(ckpt).__name__}, not a trainer checkpoint.")
    missing = [key for key in REQUIRED_KEYS if key not in ckpt]
    if missing:
        raise ExportInputError(
            f"{path} lacks {', '.join(missing)}; it was not written by this trainer."
        )
    if ckpt["format_version"] != CHECKPOINT_FORMAT:
        raise ExportInputError(
            f"{path} has checkpoint format {ckpt['format_version']!r}; this exporter reads "
            f"format {CHECKPOINT_FORMAT}."
        )
    names = ckpt["class_names"]
    valid_names = isinstance(names, list) and all(isinstance(n, str) and n for n in names)
    if not valid_names or len(set(names)) != len(names) or len(names) != ckpt["num_classes"]:
        raise ExportInputError(
            f"{path}: class_names must be {ckpt['num_classes']} distinct non-empty strings, "
            f"got {names!r}."
        )
    if not isinstance(ckpt["image_size"], int) or ckpt["image_size"] < 16:
        raise ExportInputError(f"{path}: image_size {ckpt['image_size']!r} is not a valid size.")
    return ckpt


def restore_model(ckpt: dict[str, Any], path: Path) -> nn.Module:
    """The trained network, in eval mode, from the checkpoint's arch and weights."""
    try:
        model = build_model(ckpt["arch"], ckpt["num_classes"], pretrained=False)
        model.load_state_dict(ckpt["model_state"])
    except (ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0][:200]
        raise ExportInputError(
            f"{path}: its weights do not fit a {ckpt['arch']} with {ckpt['num_classes']} "
            f"classes ({reason})."
        ) from None
    return model.eval()


def check_images(image_size: int) -> torch.Tensor:
    """Raw RGB pixels that expose a wrong scale, mean, std or channel order: noise, ramps, flats."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 3, image_size, image_size, generator=generator) * 255
    across = torch.linspace(0, 255, image_size).view(1, -1).expand(image_size, -1)
    ramps = torch.stack([across, across.T, 255 - across])
    flats = torch.tensor([0.0, 255.0]).view(2, 1, 1, 1).expand(2, 3, image_size, image_size)
    return torch.cat([noise, ramps.unsqueeze(0), flats])


def check_preprocessing(
    exported: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, image_size: int
) -> float:
    """Max |Δprobability| of `exported` on raw pixels vs `model` on hand-normalised pixels.

    The reference normalises in float64 numpy, independently of the graph; raises
    ExportCheckError when the two disagree by more than TOLERANCE.
    """
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, dtype=np.float64).reshape(1, 3, 1, 1)
    worst = 0.0
    with torch.no_grad():
        for raw in check_images(image_size).split(1):
            manual = (raw.double().numpy() / 255.0 - mean) / std
            expected = torch.softmax(model(torch.from_numpy(manual).float()), dim=1)
            worst = max(worst, (exported(raw) - expected).abs().max().item())
    if not worst <= TOLERANCE:
        raise ExportCheckError(
            f"preprocessing check failed: the exported graph on raw pixels differs from the "
            f"model on ImageNet-normalised input by {worst:.3g} (tolerance {TOLERANCE})."
        )
    return worst


def trace(model: nn.Module, image_size: int) -> torch.jit.ScriptModule:
    """TorchScript of the preprocessed network (coremltools 9 converts traces from torch 2.14)."""
    example = torch.rand(1, 3, image_size, image_size) * 255
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.trace is deprecated"
        return torch.jit.trace(Preprocessed(model).eval(), example)


def convert(traced: torch.jit.ScriptModule, labels: list[str], image_size: int) -> Any:
    """An FP16 ML program for iOS 16+: RGB image input, classifier outputs with our labels."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)  # Linux: "Failed to load …Proxy"
    import coremltools as ct

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Output '…' has been renamed"
        return ct.convert(
            traced,
            inputs=[
                ct.ImageType(
                    name=INPUT_NAME,
                    shape=(1, 3, image_size, image_size),
                    color_layout=ct.colorlayout.RGB,
                )
            ],
            classifier_config=ct.ClassifierConfig(labels, predicted_feature_name=LABEL_OUTPUT),
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS16,
        )


def metadata(ckpt: dict[str, Any], sha256: str, version: str, author: str) -> dict[str, str]:
    """What the package carries about where it came from (all values are strings)."""
    metrics = ckpt.get("metrics") or {}
    meta = {
        "pacerid.version": version,
        "pacerid.author": author,
        "pacerid.exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pacerid.checkpoint_sha256": sha256,
        "pacerid.arch": str(ckpt["arch"]),
        "pacerid.image_size": str(ckpt["image_size"]),
        "pacerid.labels": json.dumps(ckpt["class_names"]),
        "pacerid.epoch": str(ckpt.get("epoch", "")),
        "pacerid.best_val_acc": str(ckpt.get("best_val_acc", "")),
    }
    meta.update({f"pacerid.metrics.{key}": str(value) for key, value in metrics.items()})
    return meta


def describe(mlmodel: Any, ckpt: dict[str, Any], meta: dict[str, str]) -> None:
    """Fill the human-readable fields Xcode shows, and the provenance metadata."""
    size, labels = ckpt["image_size"], ckpt["class_names"]
    mlmodel.author = meta["pacerid.author"]
    mlmodel.version = meta["pacerid.version"]
    mlmodel.short_description = (
        f"PacerID: identifies the pacemaker model in a chest X-ray ({ckpt['arch']}, "
        f"{len(labels)} classes, checkpoint sha256 {meta['pacerid.checkpoint_sha256'][:12]})."
    )
    mlmodel.input_description[INPUT_NAME] = (
        f"Chest X-ray, RGB, {size}x{size}, pixels 0-255; normalisation happens inside the model."
    )
    mlmodel.output_description[LABEL_OUTPUT] = "Most likely device model."
    probs = mlmodel.get_spec().description.predictedProbabilitiesName
    mlmodel.output_description[probs] = "Probability of each device model."
    mlmodel.user_defined_metadata.update(meta)


def spec_labels(spec: Any) -> list[str]:
    """Class labels in order, from the ML program's `classify` op."""
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    for op in block.operations:
        if op.type == "classify":
            classes = op.inputs["classes"].arguments[0].value.immediateValue.list.values
            return [value.immediateValue.tensor.strings.values[0] for value in classes]
    return []


def verify_package(
    path: Path, labels: list[str], image_size: int, meta: dict[str, str]
) -> list[str]:
    """Read the saved package back without loading it (Linux-safe); names of the checks passed."""
    import coremltools as ct
    from coremltools.proto import FeatureTypes_pb2, MIL_pb2

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    desc = spec.description
    image = desc.input[0].type.imageType if len(desc.input) == 1 else None
    function = spec.mlProgram.functions["main"]
    ops = function.block_specializations[function.opset].operations
    outputs = [tensor.type.tensorType.dataType for op in ops for tensor in op.outputs]
    checks = {
        "input": [i.name for i in desc.input] == [INPUT_NAME]
        and desc.input[0].type.WhichOneof("Type") == "imageType",
        "image_size": image is not None
        and (image.width, image.height) == (image_size, image_size)
        and image.colorSpace == FeatureTypes_pb2.ImageFeatureType.RGB,
        "outputs": desc.predictedFeatureName == LABEL_OUTPUT
        and {o.name for o in desc.output} == {LABEL_OUTPUT, desc.predictedProbabilitiesName},
        "labels": spec_labels(spec) == labels,
        "float16": MIL_pb2.DataType.FLOAT16 in outputs,
        "ios16": spec.specificationVersion == IOS16_SPEC_VERSION and function.opset == "CoreML6",
        "metadata": all(desc.metadata.userDefined.get(k) == v for k, v in meta.items())
        and desc.metadata.author == meta["pacerid.author"]
        and desc.metadata.versionString == meta["pacerid.version"],
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise ExportCheckError(f"the saved package failed its spec checks: {', '.join(failed)}.")
    return list(checks)


def save_replacing(mlmodel: Any, dest: Path, check: Callable[[Path], list[str]]) -> list[str]:
    """Save beside `dest`, check the saved copy, then swap it in; a failure leaves `dest` as-is."""
    staging = dest.with_name(f".{dest.stem}.staging.mlpackage")  # coremltools wants the suffix
    shutil.rmtree(staging, ignore_errors=True)
    try:
        mlmodel.save(str(staging))
        passed = check(staging)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return passed


def export(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """The whole export; returns the JSON-able result."""
    started = time.monotonic()
    path = Path(args.checkpoint).resolve()
    ckpt = load_checkpoint(path)
    model = restore_model(ckpt, path)
    sha256 = sha256_file(path)
    size, labels = ckpt["image_size"], list(ckpt["class_names"])
    log(f"{path.name}: {ckpt['arch']}, {len(labels)} classes, {size}px, epoch {ckpt.get('epoch')}")
    log("tracing the model with its preprocessing inside")
    traced = trace(model, size)
    worst = check_preprocessing(traced, model, size)
    log(f"preprocessing check passed (max |Δp| {worst:.2g}); converting to Core ML (FP16, iOS 16)")
    mlmodel = convert(traced, labels, size)
    meta = metadata(ckpt, sha256, args.version, args.author)
    describe(mlmodel, ckpt, meta)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    package = out / f"{args.model_name}.mlpackage"
    log(f"saving and checking {package}")
    passed = save_replacing(mlmodel, package, lambda p: verify_package(p, labels, size, meta))
    metrics = {k: v for k, v in (ckpt.get("metrics") or {}).items() if isinstance(v, int | float)}
    return {
        "event": "exported",
        "package": str(package),
        "model_name": args.model_name,
        "version": args.version,
        "labels": labels,
        "image_size": size,
        "arch": ckpt["arch"],
        "epoch": ckpt.get("epoch"),
        "metrics": metrics,
        "checkpoint": str(path),
        "checkpoint_sha256": sha256,
        "checks": ["preprocessing", *passed],
        "max_abs_diff": worst,
        "seconds": round(time.monotonic() - started, 2),
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m trainer export", description="Checkpoint → Core ML .mlpackage."
    )
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by the trainer")
    parser.add_argument("--out", required=True, help="folder for <model-name>.mlpackage")
    parser.add_argument("--model-name", default="PacerIDClassifier")
    parser.add_argument("--version", default="unreleased", help="version string in the metadata")
    parser.add_argument("--author", default="PacerID")
    args = parser.parse_args(list(argv))
    if not args.model_name.isidentifier():
        parser.error(f"--model-name {args.model_name!r} must be a valid Swift/Python identifier")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)

    def log(line: str) -> None:
        print(f"export: {line}", file=sys.stderr, flush=True)

    try:
        result = export(args, log)
    except ExportInputError as err:
        print(f"export: {err}", file=sys.stderr, flush=True)
        return 2
    except ExportCheckError as err:
        print(f"export failed: {err}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:  # a converter bug: keep the traceback, end with one line
        traceback.print_exc()
        print(f"export failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0
