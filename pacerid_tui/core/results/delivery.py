"""A downloaded run's model delivered: checkpoint → Core ML package → the iOS app's models folder.

The CLI (`export`, `sync-model`) and the dashboard (m, v) call these same functions, so both
export into the same folder of the run's results, from the same checkpoint, and either can sync
what the other exported. Progress goes to a `report` callback (the CLI prints to stderr, the
dashboard to the run's log); the conversion and the install rules live in
coreml_export.py and ios_sync.py beside this file.
"""

from __future__ import annotations

from pathlib import Path

from pacerid_tui.core.cloud.base import Report, quiet
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.results.coreml_export import (
    RESULT_NAME,
    ExportResult,
    export_model,
    find_checkpoint,
    read_export,
)
from pacerid_tui.core.results.ios_sync import (
    ModelManifest,
    SyncResult,
    parse_version,
    read_manifest,
)
from pacerid_tui.core.results.ios_sync import sync_model as install
from pacerid_tui.core.steps.lifecycle import Lifecycle

EXPORT_DIR = "coreml"
"""The export's folder inside the run's results."""
FIRST_VERSION = "v1.0.0"


def export_dir(lifecycle: Lifecycle, run: Run) -> Path:
    return lifecycle.results_dir(run) / EXPORT_DIR


def exported(lifecycle: Lifecycle, run: Run) -> bool:
    """Whether the run has an export that sync-model can install."""
    return (export_dir(lifecycle, run) / RESULT_NAME).is_file()


async def export(
    lifecycle: Lifecycle, run: Run, checkpoint: Path | None = None, report: Report = quiet
) -> ExportResult:
    """Convert the run's best downloaded checkpoint (or `checkpoint`), in a child process."""
    source = checkpoint or find_checkpoint(lifecycle.results_dir(run))
    name = lifecycle.config_of(run).output.model_name
    return await export_model(source, export_dir(lifecycle, run), model_name=name, report=report)


def export_summary(result: ExportResult) -> str:
    return (
        f"Exported {result.package.name} ({len(result.labels)} labels, {result.image_size} px, "
        f"epoch {result.epoch or '?'}, checks passed: {', '.join(result.checks)}) "
        f"into {result.package.parent}."
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
        return FIRST_VERSION
    try:
        major, minor, patch = parse_version(current.version)
    except PaceridError:
        return FIRST_VERSION
    return f"v{major}.{minor}.{patch + 1}"


def sync_model(lifecycle: Lifecycle, run: Run, version: str, *, force: bool) -> SyncResult:
    """Install the run's export as `version` into the iOS app's models folder; blocking (it
    hashes and copies the package: the dashboard calls it in a thread)."""
    exported = read_export(export_dir(lifecycle, run))
    return install(
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
