"""`export` and `sync-model`: a downloaded run's checkpoint → Core ML package → the iOS app."""

from __future__ import annotations

import sys
from pathlib import Path

from pacerid_tui.core.export import ExportResult, export_model, find_checkpoint, read_export
from pacerid_tui.core.ios import SyncResult
from pacerid_tui.core.ios import sync_model as install
from pacerid_tui.core.lifecycle import Lifecycle
from pacerid_tui.core.models import Run

EXPORT_DIR = "coreml"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def export(lifecycle: Lifecycle, run: Run, checkpoint: Path | None) -> ExportResult:
    results = lifecycle.results_dir(run)
    source = checkpoint or find_checkpoint(results)
    name = lifecycle.config_of(run).output.model_name
    result = await export_model(source, results / EXPORT_DIR, model_name=name, report=_say)
    _say(
        f"Exported {result.package} ({len(result.labels)} labels, {result.image_size} px, "
        f"checks passed: {', '.join(result.checks)})."
    )
    return result


def sync_model(lifecycle: Lifecycle, run: Run, version: str, *, force: bool) -> SyncResult:
    exported = read_export(lifecycle.results_dir(run) / EXPORT_DIR)
    models_dir = Path(lifecycle.config_of(run).output.ios_models_dir).expanduser()
    result = install(
        exported.package,
        version,
        models_dir,
        run_id=run.run_id,
        labels=exported.labels,
        metrics=exported.metrics,
        force=force,
    )
    verb = "Installed" if result.changed else "Already installed:"
    _say(f"{verb} {result.package} as {version} (manifest {result.manifest_path}).")
    return result
