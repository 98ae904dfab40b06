"""Publish an exported Core ML package into the iOS app's models folder (`sync-model VERSION`).

The app ships whatever sits in that folder, so a release must never silently replace a
different model under the same version, go back to an older version, or overwrite a package
nobody can account for. Every rule is checked before anything on disk changes. The package is
then copied to a temporary folder beside its destination, its copy re-hashed, and renamed into
place; `model-manifest.json` beside it records the version, the package's sha256, the labels,
the metrics, when and from which run. `force=True` skips the rules, never the atomic copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import PaceridError, UsageError

MANIFEST_NAME = "model-manifest.json"
VERSION_RE = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class ModelManifest:
    """What `model-manifest.json` says about the package beside it."""

    version: str
    package: str
    """The package's folder name, e.g. PacerIDClassifier.mlpackage."""
    sha256: str
    """`package_sha256` of the package."""
    labels: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    created_at: str = ""
    """ISO 8601, UTC."""
    source_run: str | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "labels": list(self.labels)}, indent=2) + "\n"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelManifest:
        return cls(
            version=str(raw["version"]),
            package=str(raw["package"]),
            sha256=str(raw["sha256"]),
            labels=tuple(str(label) for label in raw["labels"]),
            metrics={str(k): float(v) for k, v in dict(raw.get("metrics") or {}).items()},
            created_at=str(raw.get("created_at", "")),
            source_run=raw.get("source_run"),
        )


@dataclass(frozen=True)
class SyncResult:
    manifest: ModelManifest
    package: Path
    """Where the package now is."""
    manifest_path: Path
    previous_version: str | None
    changed: bool
    """False when the same version with the same content was already in place."""


def parse_version(version: str) -> tuple[int, int, int]:
    """`vMAJOR.MINOR.PATCH` as a comparable tuple."""
    match = VERSION_RE.fullmatch(version)
    if match is None:
        raise UsageError(
            f"Version {version!r} is not of the form vMAJOR.MINOR.PATCH (for example v1.0.0)."
        )
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def package_sha256(package: Path) -> str:
    """sha256 over every file of a package, independent of timestamps and walk order.

    It hashes the text `<sha256 of file>  <path relative to the package>\\n` for each file in
    path order: what `cd PKG && find . -type f | cut -c3- | LC_ALL=C sort | xargs sha256sum`
    prints, so the manifest can be checked by hand.
    """
    files = []
    for path in package.rglob("*"):
        if path.is_file():
            files.append((path.relative_to(package).as_posix(), _file_sha256(path)))
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(files))
    return hashlib.sha256(listing.encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(models_dir: Path) -> ModelManifest | None:
    """The manifest in `models_dir`, or None when there is none."""
    path = models_dir / MANIFEST_NAME
    try:
        return ModelManifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(
            f"{path} is unreadable ({err}); fix or remove it, or pass --force to replace it."
        ) from None


def check_sync(manifest: ModelManifest | None, dest: Path, version: str, sha256: str) -> str | None:
    """Why this sync must not happen without --force, or None when it may."""
    if dest.exists() and manifest is None:
        return f"{dest} exists but has no {MANIFEST_NAME}, so its version is unknown"
    if manifest is None:
        return None
    if manifest.package != dest.name:
        return f"{dest.parent} holds {manifest.package} ({manifest.version}), not {dest.name}"
    if dest.exists() and package_sha256(dest) != manifest.sha256:
        return f"{dest} was changed since {manifest.version} was synced (sha256 differs)"
    if parse_version(version) < parse_version(manifest.version):
        return f"{version} is lower than the {manifest.version} already in {dest.parent}"
    if version == manifest.version and sha256 != manifest.sha256:
        return f"{version} is already in {dest.parent} with different content"
    return None


def sync_model(
    package: Path,
    version: str,
    models_dir: Path,
    *,
    run_id: str | None,
    labels: Sequence[str],
    metrics: Mapping[str, float],
    force: bool = False,
) -> SyncResult:
    """Install `package` as `version` in `models_dir`; UsageError (nothing changed) if refused."""
    parse_version(version)
    if package.suffix != ".mlpackage" or not (package / "Manifest.json").is_file():
        raise UsageError(f"{package} is not a Core ML .mlpackage; run `pacerid-tui export` first.")
    if not models_dir.is_dir() and (models_dir.exists() or not models_dir.parent.is_dir()):
        raise UsageError(
            f"{models_dir} is not a folder in an existing iOS project; set "
            "output.ios_models_dir to the app's models folder."
        )
    dest = models_dir / package.name
    sha256 = package_sha256(package)
    previous = _manifest_or_none(models_dir) if force else read_manifest(models_dir)
    refusal = None if force else check_sync(previous, dest, version, sha256)
    if refusal:
        raise UsageError(f"{refusal}; use a new version, or pass --force to replace it.")
    manifest_path = models_dir / MANIFEST_NAME
    if previous and not force and version == previous.version and dest.exists():
        return SyncResult(previous, dest, manifest_path, previous.version, changed=False)
    manifest = ModelManifest(
        version=version,
        package=package.name,
        sha256=sha256,
        labels=tuple(labels),
        metrics={key: float(value) for key, value in metrics.items()},
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source_run=run_id,
    )
    _install(package, dest, sha256)
    atomic.write_text(manifest_path, manifest.to_json(), mode=0o644)
    return SyncResult(
        manifest, dest, manifest_path, previous.version if previous else None, changed=True
    )


def _manifest_or_none(models_dir: Path) -> ModelManifest | None:
    """With --force an unreadable manifest is simply replaced."""
    try:
        return read_manifest(models_dir)
    except UsageError:
        return None


def _install(package: Path, dest: Path, sha256: str) -> None:
    """Copy into a temporary folder beside `dest`, verify the copy, then rename it into place."""
    dest.parent.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.sync-"))
    try:
        copy = staging / dest.name
        shutil.copytree(package, copy)
        if package_sha256(copy) != sha256:
            raise PaceridError(f"{package} changed while it was being copied; sync again.")
        old = staging / "previous"
        if dest.exists():
            os.rename(dest, old)
        try:
            os.rename(copy, dest)
        except OSError:
            if old.exists():
                os.rename(old, dest)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
