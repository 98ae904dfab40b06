"""Export and sync-model for the dashboard: the glue `pacerid_tui/cli/model.py` does for the
CLI, with progress going to a `report` callback instead of stderr.

It mirrors the CLI's glue line for line (results folder → checkpoint → package; export.json →
iOS models folder) so both behave the same; the conversion and the install rules live in
core/export.py and core/ios.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from pacerid_tui.core.errors import PaceridError
from pacerid_tui.core.export import ExportResult, export_model, find_checkpoint, read_export
from pacerid_tui.core.ios import ModelManifest, SyncResult, parse_version, read_manifest
from pacerid_tui.core.ios import sync_model as install
from pacerid_tui.core.lifecycle import Lifecycle
from pacerid_tui.core.models import Run

EXPORT_DIR = "coreml"
"""The same folder the CLI exports into, so either can sync what the other exported."""


async def export(lifecycle: Lifecycle, run: Run, report: Callable[[str], None]) -> ExportResult:
    results = lifecycle.results_dir(run)
    source = find_checkpoint(results)
    name = lifecycle.config_of(run).output.model_name
    return await export_model(source, results / EXPORT_DIR, model_name=name, report=report)


def export_summary(result: ExportResult) -> str:
    return (
        f"Exported {result.package.name} ({len(result.labels)} labels, {result.image_size} px, "
        f"epoch {result.epoch or '?'}, checks passed: {', '.join(result.checks)})."
    )


def models_dir(lifecycle: Lifecycle, run: Run) -> Path:
    return Path(lifecycle.config_of(run).output.ios_models_dir).expanduser()


def installed(lifecycle: Lifecycle, run: Run) -> ModelManifest | None:
    """The manifest now in the iOS app's models folder (None when none or unreadable)."""
    try:
        return read_manifest(models_dir(lifecycle, run))
    except PaceridError:  # an unreadable manifest is reported by the sync itself
        return None


def next_version(current: ModelManifest | None) -> str:
    """A suggestion for the version prompt: the next patch after what is installed."""
    if current is None:
        return "v1.0.0"
    try:
        major, minor, patch = parse_version(current.version)
    except PaceridError:
        return "v1.0.0"
    return f"v{major}.{minor}.{patch + 1}"


async def sync_model(lifecycle: Lifecycle, run: Run, version: str, *, force: bool) -> SyncResult:
    exported = read_export(lifecycle.results_dir(run) / EXPORT_DIR)
    return await asyncio.to_thread(
        install,
        exported.package,
        version,
        models_dir(lifecycle, run),
        run_id=run.run_id,
        labels=exported.labels,
        metrics=exported.metrics,
        force=force,
    )


def sync_summary(result: SyncResult, version: str) -> str:
    verb = "Installed" if result.changed else "Already installed:"
    return f"{verb} {result.package} as {version} (manifest {result.manifest_path})."
