"""The data step on a host: the real kaggle client against a loopback stand-in, with made-up
credentials that travel only over the SSH channel's stdin — never argv, files or logs."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pacerid_tui.config import load_config
from pacerid_tui.core.lifecycle import Lifecycle
from tests.e2e.test_cli_local import tiny_config
from tests.trainer.test_trainer_download import KEY, PORT, USERNAME, KaggleStandIn, dataset


@pytest.fixture
def kaggle(monkeypatch: pytest.MonkeyPatch) -> Iterator[KaggleStandIn]:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")  # the client calls localhost:7777
    with open(Path(tempfile.gettempdir()) / f"pacerid-kaggle-{PORT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the port is fixed: one stand-in at a time
        server = KaggleStandIn()
        server.archive = dataset("pacemakers/Train", "pacemakers/Test", ("a", "b"), ("a", "b"))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server
        server.shutdown()
        server.server_close()


def command_lines() -> list[bytes]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found.append((entry / "cmdline").read_bytes())
    return found


def files_containing(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


async def test_kaggle_data_arrives_and_the_key_stays_off_the_host(
    kaggle: KaggleStandIn, tmp_path: Path
) -> None:
    path = tiny_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["source"] = "kaggle"
    path.write_text(yaml.safe_dump(raw))
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
    await lifecycle.setup(run)

    seen_in_argv = []
    done = asyncio.Event()

    async def watch_processes() -> None:
        while not done.is_set():
            seen_in_argv.extend(c for c in command_lines() if KEY.encode() in c)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch_processes())
    try:
        await lifecycle.data(run)
    finally:
        done.set()
        await watcher
    lifecycle.close()

    assert [r["path"] for r in kaggle.requests][:1] == [
        "/api/v1/datasets.DatasetApiService/DownloadDataset"
    ]
    assert kaggle.requests[0]["auth"]  # the made-up credentials reached "Kaggle"
    assert run.instance and run.instance.key_path
    workspace = Path(run.instance.key_path).parent / "workspace" / "pacerid" / run.run_id
    assert sorted(p.name for p in (workspace / "data" / "Train").iterdir()) == ["a", "b"]
    assert seen_in_argv == []
    home = Path(os.environ["PACERID_HOME"])
    assert files_containing(home, KEY.encode()) == []  # workspace, logs, registry, keys
    assert (workspace / "output" / "data.log").exists()
