"""The run's record on disk, per the host contract: train.log, metrics.jsonl, status.json.

The controller follows train.log and metrics.jsonl by byte offset over SSH, so both are
append-only and flushed a line at a time; a resumed run appends to them (its `start` event
says where it picked up). status.json is rewritten atomically so a reader never sees half of
it. Only the primary process of a distributed run records anything.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

PHASES = ("starting", "training", "done", "interrupted", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class ConsoleFormatter(logging.Formatter):
    """Like the file's format minus tracebacks: those go to train.log only."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(
            logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        )


def setup_console_logging(verbose: bool = True) -> None:
    """Log lines to stdout (the host runs us under tmux/nohup, and the user may attach)."""
    root = logging.getLogger("trainer")
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(ConsoleFormatter(LOG_FORMAT))
        root.addHandler(handler)
    root.propagate = False


def add_log_file(path: Path) -> logging.Handler:
    """Also write every log line to `path` (train.log), flushed per line."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger("trainer").addHandler(handler)
    return handler


class Recorder:
    """metrics.jsonl events and status.json for one run in `output_dir`."""

    def __init__(self, output_dir: Path, epochs: int) -> None:
        self.output_dir = output_dir
        self.epochs = epochs
        self.epoch = 0
        self.stream: TextIO = open(output_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def event(self, name: str, **fields: Any) -> None:
        record = {"event": name, "time": round(time.time(), 3), **fields}
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()

    def supersede(self, after_epoch: int) -> bool:
        """When metrics.jsonl holds epochs newer than the checkpoint a run resumes from (they
        run again), say so in one appended event: readers drop the epochs after
        `after_epoch` written before it, so the curve has each epoch once. Appended, never
        rewritten: a follower reading by offset sees it like any other line."""
        newer = False
        for line in (self.output_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            newer |= record.get("event") == "epoch" and (record.get("epoch") or 0) > after_epoch
        if newer:
            message = f"epochs after {after_epoch} run again from its checkpoint"
            self.event("superseded", epoch=after_epoch, message=message)
        return newer

    def status(self, phase: str, epoch: int | None = None, **extra: Any) -> None:
        assert phase in PHASES
        if epoch is not None:
            self.epoch = epoch
        record = {
            "phase": phase,
            "pid": os.getpid(),
            "epoch": self.epoch,
            "epochs": self.epochs,
            "updated_at": round(time.time(), 3),
            **extra,
        }
        write_json_atomic(self.output_dir / "status.json", record)

    def close(self) -> None:
        self.stream.close()


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
