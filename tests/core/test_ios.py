"""sync-model's rules on real folders: every refusal is a UsageError (exit 2) that leaves the
iOS models folder byte-for-byte as it was; --force replaces; the manifest matches the package."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from pacerid_tui.core.kernel.errors import UsageError
from pacerid_tui.core.results.ios_sync import (
    MANIFEST_NAME,
    ModelManifest,
    package_sha256,
    read_manifest,
    sync_model,
)

LABELS = ("Medtronic Azure", "Boston Scientific Accolade", "Biotronik Edora")
NAME = "PacerIDClassifier.mlpackage"


def make_package(root: Path, weights: bytes) -> Path:
    """A folder shaped like a Core ML package (what sync copies; its content is opaque)."""
    package = root / NAME
    data = package / "Data" / "com.apple.CoreML"
    (data / "weights").mkdir(parents=True)
    (package / "Manifest.json").write_text('{"fileFormatVersion": "1.0.0"}')
    (data / "model.mlmodel").write_bytes(b"spec")
    (data / "weights" / "weight.bin").write_bytes(weights)
    return package


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for folders)."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ios" / "PacerID" / "Models"
    path.mkdir(parents=True)
    return path


def sync(package: Path, version: str, models_dir: Path, force: bool = False):
    return sync_model(
        package,
        version,
        models_dir,
        run_id="run-42",
        labels=LABELS,
        metrics={"val_acc": 0.91, "val_loss": 0.3},
        force=force,
    )


def test_first_sync_installs_package_and_a_manifest_that_matches_it(tmp_path, models_dir):
    package = make_package(tmp_path / "export", b"weights-1")
    result = sync(package, "v1.0.0", models_dir)

    dest = models_dir / NAME
    assert result.changed and result.previous_version is None and result.package == dest
    assert snapshot(dest) == snapshot(package)
    raw = json.loads((models_dir / MANIFEST_NAME).read_text())
    assert raw["version"] == "v1.0.0"
    assert raw["sha256"] == package_sha256(dest) == package_sha256(package)
    assert raw["labels"] == list(LABELS)
    assert raw["metrics"] == {"val_acc": 0.91, "val_loss": 0.3}
    assert raw["source_run"] == "run-42" and raw["package"] == NAME
    assert datetime.fromisoformat(raw["created_at"]).tzinfo is not None
    assert read_manifest(models_dir) == result.manifest
    assert sorted(os.listdir(models_dir)) == sorted([NAME, MANIFEST_NAME])  # no temp leftovers


@pytest.mark.parametrize(
    "version", ["1.0.0", "v1.0", "v1.0.0-beta", "v01.0.0", "V1.0.0", "v1.0.0 ", "", "latest"]
)
def test_bad_version_strings_are_refused_and_nothing_changes(tmp_path, models_dir, version):
    sync(make_package(tmp_path / "old", b"weights-1"), "v1.0.0", models_dir)
    before = snapshot(models_dir)
    with pytest.raises(UsageError, match=r"vMAJOR.MINOR.PATCH") as err:
        sync(make_package(tmp_path / "new", b"weights-2"), version, models_dir)
    assert err.value.exit_code == 2
    assert snapshot(models_dir) == before


def test_same_version_with_different_content_is_refused_then_forced(tmp_path, models_dir):
    sync(make_package(tmp_path / "old", b"weights-1"), "v1.0.0", models_dir)
    before = snapshot(models_dir)
    new = make_package(tmp_path / "new", b"weights-2")

    with pytest.raises(UsageError, match=r"already in .* with different content") as err:
        sync(new, "v1.0.0", models_dir)
    assert err.value.exit_code == 2
    assert snapshot(models_dir) == before

    result = sync(new, "v1.0.0", models_dir, force=True)
    assert result.changed and result.previous_version == "v1.0.0"
    assert snapshot(models_dir / NAME) == snapshot(new)
    assert read_manifest(models_dir).sha256 == package_sha256(models_dir / NAME)


def test_lower_version_is_refused_then_forced(tmp_path, models_dir):
    sync(make_package(tmp_path / "old", b"weights-1"), "v1.10.0", models_dir)
    before = snapshot(models_dir)
    new = make_package(tmp_path / "new", b"weights-2")

    with pytest.raises(UsageError, match=r"v1.9.3 is lower than the v1.10.0"):
        sync(new, "v1.9.3", models_dir)  # numeric, not string, comparison
    assert snapshot(models_dir) == before

    result = sync(new, "v1.9.3", models_dir, force=True)
    assert read_manifest(models_dir) == result.manifest
    assert result.manifest.version == "v1.9.3"
    assert result.manifest.sha256 == package_sha256(models_dir / NAME)


def test_higher_version_upgrades(tmp_path, models_dir):
    sync(make_package(tmp_path / "old", b"weights-1"), "v1.0.0", models_dir)
    new = make_package(tmp_path / "new", b"weights-2")
    result = sync(new, "v1.0.1", models_dir)
    assert result.changed and result.previous_version == "v1.0.0"
    assert snapshot(models_dir / NAME) == snapshot(new)
    assert sorted(os.listdir(models_dir)) == sorted([NAME, MANIFEST_NAME])


def test_same_version_same_content_changes_nothing(tmp_path, models_dir):
    package = make_package(tmp_path / "export", b"weights-1")
    first = sync(package, "v1.0.0", models_dir)
    before = snapshot(models_dir)
    again = sync(package, "v1.0.0", models_dir)
    assert not again.changed and again.manifest == first.manifest
    assert snapshot(models_dir) == before


def test_package_without_manifest_or_edited_by_hand_needs_force(tmp_path, models_dir):
    make_package(models_dir, b"put there by hand")
    before = snapshot(models_dir)
    new = make_package(tmp_path / "new", b"weights-2")
    with pytest.raises(UsageError, match=r"no model-manifest.json"):
        sync(new, "v1.0.0", models_dir)
    assert snapshot(models_dir) == before
    sync(new, "v1.0.0", models_dir, force=True)

    (models_dir / NAME / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"edited")
    before = snapshot(models_dir)
    with pytest.raises(UsageError, match=r"was changed since v1.0.0 was synced"):
        sync(make_package(tmp_path / "newer", b"weights-3"), "v2.0.0", models_dir)
    assert snapshot(models_dir) == before


def test_a_differently_named_model_needs_force(tmp_path, models_dir):
    sync(make_package(tmp_path / "old", b"weights-1"), "v1.0.0", models_dir)
    other = make_package(tmp_path / "new", b"weights-2").rename(
        tmp_path / "new" / "Other.mlpackage"
    )
    before = snapshot(models_dir)
    with pytest.raises(UsageError, match=rf"holds {NAME} \(v1.0.0\), not Other.mlpackage"):
        sync(other, "v2.0.0", models_dir)
    assert snapshot(models_dir) == before
    assert sync(other, "v2.0.0", models_dir, force=True).manifest.package == "Other.mlpackage"


def test_unreadable_manifest_is_refused_unless_forced(tmp_path, models_dir):
    (models_dir / MANIFEST_NAME).write_text("{not json")
    package = make_package(tmp_path / "export", b"weights-1")
    with pytest.raises(UsageError, match=r"unreadable"):
        sync(package, "v1.0.0", models_dir)
    assert sync(package, "v1.0.0", models_dir, force=True).previous_version is None


def test_not_a_package_or_no_ios_project_is_refused_without_creating_anything(tmp_path):
    folder = tmp_path / "not-a-package"
    folder.mkdir()
    with pytest.raises(UsageError, match=r"not a Core ML .mlpackage"):
        sync(folder, "v1.0.0", tmp_path / "Models")
    package = make_package(tmp_path / "export", b"weights-1")
    missing = tmp_path / "no-such-app" / "Models"
    with pytest.raises(UsageError, match=r"not a folder in an existing iOS project"):
        sync(package, "v1.0.0", missing)
    assert not missing.parent.exists()


def test_models_folder_is_created_inside_an_existing_project(tmp_path):
    package = make_package(tmp_path / "export", b"weights-1")
    (tmp_path / "app").mkdir()
    result = sync(package, "v0.1.0", tmp_path / "app" / "Models")
    assert result.package.is_dir()


def test_package_hash_is_the_documented_shell_pipeline_and_ignores_timestamps(tmp_path):
    package = make_package(tmp_path, b"weights-1")
    (package / "a-b").write_text("sorts before a/ in C order")
    pipeline = "find . -type f | cut -c3- | LC_ALL=C sort | xargs sha256sum | sha256sum"
    shell = subprocess.run(
        ["sh", "-c", pipeline], cwd=package, capture_output=True, text=True, check=True
    )
    digest = package_sha256(package)
    assert shell.stdout.split()[0] == digest
    os.utime(package / "Manifest.json", (0, 0))
    assert package_sha256(package) == digest
    (package / "Manifest.json").write_text("{}")
    assert package_sha256(package) != digest


def test_manifest_round_trips():
    manifest = ModelManifest("v1.2.3", NAME, "ab" * 32, LABELS, {"val_acc": 0.5}, "now", None)
    assert ModelManifest.from_dict(json.loads(manifest.to_json())) == manifest
