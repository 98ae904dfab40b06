"""Export a downloaded run's checkpoint to Core ML, in a child process.

The dashboard and the CLI never import torch or coremltools (seconds to import, gigabytes of
memory, and a converter crash must not take the dashboard down with it), so this runs
`python -m trainer export` with this checkout's trainer on PYTHONPATH. The child's stderr lines
are progress, passed to `report` as they come; its last stdout line is the JSON result, which
is saved as `export.json` beside the package so `sync-model` can publish it later.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pacerid_tui.core.cloud.base import Report, quiet
from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import PaceridError, UsageError

CHECKPOINT_NAMES = ("checkpoint_best.pt", "model_best_fp16.pt", "checkpoint_latest.pt")
"""What to export from a run's results: the best weights, full or half precision, else latest."""
RESULT_NAME = "export.json"
TRAINER_ROOT = Path(__file__).resolve().parents[2]
"""The folder that holds `trainer/` (the repository, or site-packages when installed)."""


@dataclass(frozen=True)
class ExportResult:
    """What the trainer's exporter reports about the package it wrote and checked."""

    package: Path
    model_name: str
    version: str
    labels: tuple[str, ...]
    image_size: int
    arch: str
    epoch: int | None
    metrics: dict[str, float]
    checkpoint: Path
    checkpoint_sha256: str
    checks: tuple[str, ...]
    """Names of the checks that passed (preprocessing, input, labels, float16, ios16, …)."""
    max_abs_diff: float
    """Largest probability difference found by the preprocessing check."""
    seconds: float

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExportResult:
        return cls(
            package=Path(raw["package"]),
            model_name=str(raw["model_name"]),
            version=str(raw["version"]),
            labels=tuple(str(label) for label in raw["labels"]),
            image_size=int(raw["image_size"]),
            arch=str(raw["arch"]),
            epoch=None if raw.get("epoch") is None else int(raw["epoch"]),
            metrics={str(k): float(v) for k, v in dict(raw["metrics"]).items()},
            checkpoint=Path(raw["checkpoint"]),
            checkpoint_sha256=str(raw["checkpoint_sha256"]),
            checks=tuple(str(check) for check in raw["checks"]),
            max_abs_diff=float(raw["max_abs_diff"]),
            seconds=float(raw["seconds"]),
        )

    def to_json(self) -> str:
        raw = asdict(self)
        raw.update(package=str(self.package), checkpoint=str(self.checkpoint))
        raw.update(labels=list(self.labels), checks=list(self.checks))
        return json.dumps(raw, indent=2) + "\n"


def find_checkpoint(results_dir: Path) -> Path:
    """The checkpoint to export from a run's downloaded results: best, else latest.

    The best weights are checkpoint_best.pt, or model_best_fp16.pt where that is newer: during
    training (`output.checkpoints: notice`) only the half-precision snapshot comes, while a full
    one may be left from an earlier save. The trainer writes the snapshot first, so the same
    epoch's pair (mtimes equal to the second once downloaded) picks the full one."""
    best, half, latest = (results_dir / name for name in CHECKPOINT_NAMES)
    found = [path for path in (best, half) if path.is_file()]
    if found:
        return max(found, key=lambda path: (int(path.stat().st_mtime), path == best))
    if latest.is_file():
        return latest
    raise UsageError(
        f"No {' or '.join(CHECKPOINT_NAMES)} in {results_dir}; download the run's results "
        "first, or pass --checkpoint FILE."
    )


def read_export(out_dir: Path) -> ExportResult:
    """The last export saved in `out_dir`."""
    path = out_dir / RESULT_NAME
    try:
        return ExportResult.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise UsageError(f"Nothing exported in {out_dir} yet; run `pacerid-tui export`.") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PaceridError(f"{path} is unreadable ({err}); export again.") from None


async def export_model(
    checkpoint: Path,
    out_dir: Path,
    *,
    model_name: str = "PacerIDClassifier",
    version: str | None = None,
    report: Report = quiet,
    python: str = sys.executable,
) -> ExportResult:
    """Write `<out_dir>/<model_name>.mlpackage` from `checkpoint`, checked; see trainer/export.py.

    UsageError (exit 2) when the checkpoint is missing or unusable, PaceridError when the
    conversion or a check fails. Cancelling the task kills the child.
    """
    out_dir = out_dir.resolve()
    argv = [python, "-m", "trainer", "export", "--checkpoint", str(checkpoint.resolve())]
    argv += ["--out", str(out_dir), "--model-name", model_name]
    if version is not None:
        argv += ["--version", version]
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TRAINER_ROOT), env.get("PYTHONPATH")]))
    child = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    stderr: list[str] = []

    async def progress(stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if line:
                stderr.append(line)
                report(line)

    try:
        stdout, _ = await asyncio.gather(child.stdout.read(), progress(child.stderr))
        code = await child.wait()
    except BaseException:
        if child.returncode is None:
            child.kill()
            await child.wait()
        raise
    return _result(code, stdout.decode(errors="replace"), stderr, out_dir)


def _result(code: int, stdout: str, stderr: list[str], out_dir: Path) -> ExportResult:
    """Turn the child's exit code and output into a result (saved) or one clear error."""
    last = stderr[-1].removeprefix("export: ") if stderr else f"exit status {code}"
    if code == 2:
        raise UsageError(last[:1].upper() + last[1:])
    if code != 0:
        raise PaceridError(f"Core ML export failed: {last.removeprefix('export failed: ')}")
    lines = stdout.strip().splitlines()
    try:
        result = ExportResult.from_dict(json.loads(lines[-1]))
    except (IndexError, ValueError, KeyError, TypeError) as err:
        raise PaceridError(f"Core ML export printed no readable result ({err}).") from None
    atomic.write_text(out_dir / RESULT_NAME, result.to_json(), mode=0o644)
    return result
