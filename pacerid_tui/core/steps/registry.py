"""The runs the tool knows about, in one JSON file under the state folder.

It replaces the guide's `.aws_instance` and holds any number of runs. Every write is atomic and
goes through a lock file, so the dashboard and a CLI command can update it side by side.
Losing this file never loses an instance: providers can find their instances again by tag.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import PaceridError, RunNotFound
from pacerid_tui.core.kernel.models import Instance, InstanceState, Run

FORMAT_VERSION = 1


def run_to_dict(run: Run) -> dict[str, Any]:
    return dataclasses.asdict(run)


def run_from_dict(raw: dict[str, Any]) -> Run:
    raw = dict(raw)
    inst = raw.pop("instance", None)
    known = {f.name for f in dataclasses.fields(Run)}
    run = Run(**{k: v for k, v in raw.items() if k in known})
    if inst:
        inst_known = {f.name for f in dataclasses.fields(Instance)}
        fields = {k: v for k, v in inst.items() if k in inst_known}
        fields["state"] = InstanceState(fields.get("state", "unknown"))
        run.instance = Instance(**fields)
    return run


class Registry:
    """Load, change and save runs. Each change re-reads the file under the lock first."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def runs(self) -> list[Run]:
        """Every run, oldest first."""
        return sorted(self._read().values(), key=lambda run: run.created_at)

    def get(self, run_id: str | None = None) -> Run:
        """The run with this id, or the most recent one."""
        runs = self.runs()
        if run_id is None:
            if not runs:
                raise RunNotFound("No runs yet; start one with `pacerid-tui launch --config FILE`.")
            return runs[-1]
        for run in runs:
            if run.run_id == run_id or run.run_id.startswith(run_id):
                return run
        raise RunNotFound(f"No run '{run_id}'; `pacerid-tui status` lists the runs.")

    def save(self, run: Run) -> None:
        with self._locked():
            runs = self._read()
            runs[run.run_id] = run
            self._write(runs)

    def update(self, run_id: str, **changes: Any) -> Run:
        """Change some fields of one run atomically; returns the updated run."""
        with self._locked():
            runs = self._read()
            if run_id not in runs:
                raise RunNotFound(f"No run '{run_id}'; `pacerid-tui status` lists the runs.")
            run = dataclasses.replace(runs[run_id], **changes)
            runs[run_id] = run
            self._write(runs)
            return run

    def remove(self, run_id: str) -> None:
        with self._locked():
            runs = self._read()
            runs.pop(run_id, None)
            self._write(runs)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, Run]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise PaceridError(
                f"The run registry {self.path} is unreadable ({err}); move it aside to start "
                "afresh (instances are found again by tag)."
            ) from None
        return {item["run_id"]: run_from_dict(item) for item in raw.get("runs", [])}

    def _write(self, runs: dict[str, Run]) -> None:
        body = {
            "version": FORMAT_VERSION,
            "saved_at": time.time(),
            "runs": [run_to_dict(run) for run in sorted(runs.values(), key=lambda r: r.created_at)],
        }
        atomic.write_text(self.path, json.dumps(body, indent=2) + "\n")
