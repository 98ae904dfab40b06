"""A run's config is frozen at launch: `--set` is recorded in it, and editing the YAML file
afterwards changes nothing of the running run (what its steps, `status` and the host read)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli_local import cli, tiny_config


def test_editing_the_config_after_launch_changes_nothing_of_the_running_run(
    tmp_path: Path,
) -> None:
    path = tiny_config(tmp_path)
    launched = cli(
        "launch", "--config", str(path), "--set", "training.epochs=3",
        "--set", "instance.budget_usd=4.5",
    )  # fmt: skip
    run_id = launched.stdout.strip()
    edited = yaml.safe_load(path.read_text())
    edited["training"]["epochs"] = 9
    edited["instance"]["budget_usd"] = 1.25
    edited["instance"]["idle_terminate_minutes"] = 1
    path.write_text(yaml.safe_dump(edited))

    cli("upload", "--run", run_id)
    [row] = json.loads(cli("status", "--json").stdout)
    assert (row["budget_usd"], row["epochs"], row["over_budget"]) == (4.5, 3, False)
    home = Path(os.environ["PACERID_HOME"])
    frozen = yaml.safe_load((home / "runs" / run_id / "run.yaml").read_text())
    workspace = home / "local" / row["instance_id"] / "workspace" / "pacerid" / run_id
    on_host = yaml.safe_load((workspace / "code" / "run.yaml").read_text())
    assert on_host == frozen
    assert (on_host["training"]["epochs"], on_host["instance"]["budget_usd"]) == (3, 4.5)
    assert on_host["instance"]["idle_terminate_minutes"] == 30  # the file's edit is not there
    cli("setup", "--run", run_id)
    watchdog = json.loads((workspace / "watchdog.json").read_text())
    assert (watchdog["budget_usd"], watchdog["idle_s"]) == (4.5, 30 * 60)
    cli("terminate", "--run", run_id)


def test_a_bad_set_is_one_sentence_naming_the_key_and_launches_nothing(tmp_path: Path) -> None:
    path = tiny_config(tmp_path)
    done = cli("launch", "--config", str(path), "--set", "training.epocs=3", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "pacerid-tui: --set training.epocs: unknown key; check its spelling "
        "(see configs/base.yaml)."
    )
    assert json.loads(cli("status", "--json").stdout) == []


def test_pacerid_home_under_a_file_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PACERID_HOME", str(blocker / "state"))
    done = cli("status", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "PACERID_HOME" in done.stderr
