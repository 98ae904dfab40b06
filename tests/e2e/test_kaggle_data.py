"""The data step on a host: the real kaggle client against a loopback stand-in, with made-up
credentials in each form Kaggle issues (legacy key; API token in KAGGLE_API_TOKEN as a value or a
path, or in ~/.kaggle/access_token) that travel only over the SSH channel's stdin — never argv,
files or logs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from pathlib import Path

import pytest
import yaml

from pacerid_tui.core.kernel.models import Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from tests.conftest import TakeRun
from tests.e2e.test_cli_local import tiny_config
from tests.kaggle_standin import DOWNLOAD_RPC, KEY, TOKEN, USERNAME, KaggleStandIn
from tests.trainer.test_trainer_download import dataset


@pytest.fixture
def kaggle(kaggle: KaggleStandIn, monkeypatch: pytest.MonkeyPatch) -> KaggleStandIn:
    """The Kaggle stand-in serving a two-class archive, to a user with a legacy key."""
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    kaggle.archive = dataset("pacemakers/Train", "pacemakers/Test", ("a", "b"), ("a", "b"))
    return kaggle


def command_lines() -> list[bytes]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found.append((entry / "cmdline").read_bytes())
    return found


def files_containing(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def credential_forms(root: Path) -> list[tuple[str, dict[str, str], str]]:
    """(name, environment, Authorization the stand-in must see) for each form kagglesdk reads
    (kaggle_env.get_access_token_from_env, then the legacy key): files live in `root`, the
    user's home here, never on the host."""
    token_file = root / "token.txt"
    token_file.write_text(TOKEN + "\n")
    (root / ".kaggle").mkdir(exist_ok=True)
    (root / ".kaggle" / "access_token").write_text(TOKEN + "\n")
    basic = "Basic " + base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode()
    home = str(root)
    return [
        (
            "legacy key",
            {"KAGGLE_USERNAME": USERNAME, "KAGGLE_KEY": KEY, "HOME": "/nonexistent"},
            basic,
        ),
        (
            "KAGGLE_API_TOKEN value",
            {"KAGGLE_API_TOKEN": TOKEN, "HOME": "/nonexistent"},
            f"Bearer {TOKEN}",
        ),
        (
            "KAGGLE_API_TOKEN path",
            {"KAGGLE_API_TOKEN": str(token_file), "HOME": "/nonexistent"},
            f"Bearer {TOKEN}",
        ),
        ("~/.kaggle/access_token", {"HOME": home}, f"Bearer {TOKEN}"),
    ]


async def test_kaggle_data_arrives_and_the_key_stays_off_the_host(
    kaggle: KaggleStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, take_run: TakeRun
) -> None:
    path = tiny_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["source"] = "kaggle"
    path.write_text(yaml.safe_dump(raw))
    lifecycle, run = await take_run(path, to="setup")
    assert run.instance and run.instance.key_path
    workspace = Path(run.instance.key_path).parent / "workspace" / "pacerid" / run.run_id
    user = tmp_path / "user"
    user.mkdir()
    for name, env, auth in credential_forms(user):
        for variable in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
            monkeypatch.delenv(variable, raising=False)
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        (workspace / "data" / ".download.json").unlink(missing_ok=True)
        kaggle.requests.clear()
        seen_in_argv = await data_watching_argv(lifecycle, run)
        assert [(r["path"], r["auth"]) for r in kaggle.requests][:1] == [(DOWNLOAD_RPC, auth)], name
        assert sorted(p.name for p in (workspace / "data" / "Train").iterdir()) == ["a", "b"]
        assert seen_in_argv == [], name
        home = Path(os.environ["PACERID_HOME"])  # workspace, logs, registry, keys
        assert files_containing(home, KEY.encode()) == [], name
        assert files_containing(home, TOKEN.encode()) == [], name
    lifecycle.close()
    assert (workspace / "output" / "data.log").exists()


async def data_watching_argv(lifecycle: Lifecycle, run: Run) -> list[bytes]:
    """Run the data step; every command line seen meanwhile that holds the key or the token."""
    seen: list[bytes] = []
    done = asyncio.Event()

    async def watch_processes() -> None:
        while not done.is_set():
            seen.extend(c for c in command_lines() if KEY.encode() in c or TOKEN.encode() in c)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch_processes())
    try:
        await lifecycle.data(run)
    finally:
        done.set()
        await watcher
    return seen
