"""`pacerid-tui all` on the local provider when a step fails: what exists is downloaded, then the
host is terminated (or kept, when asked), and one line says which step failed and where its log
is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_local import cli, tiny_config
from tests.host.images import BASE


@pytest.fixture(autouse=True)
def host_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local host trains with this interpreter, which has no torch: setup fails there."""
    monkeypatch.setenv("PACERID_PYTHON", str(BASE))


def test_a_failed_setup_downloads_the_logs_then_terminates(tmp_path: Path) -> None:
    done = cli("all", "--config", str(tiny_config(tmp_path)), check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [row] = json.loads(cli("status", "--json").stdout)
    assert row["state"] == "terminated"
    log = tmp_path / "results" / row["run_id"] / "setup.log"
    assert "torch is missing" in log.read_text()  # downloaded before the host went
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pacerid-tui: {row['run_id']}: the setup step failed on the host (")
    assert f"its log is in {log}" in last
    assert last.endswith("the host was terminated.")


def test_keep_on_failure_keeps_the_host_and_says_how_to_end_it(tmp_path: Path) -> None:
    config = str(tiny_config(tmp_path))
    done = cli("all", "--config", config, "--keep-on-failure", check=False)
    assert done.returncode == 1
    [row] = json.loads(cli("status", "--json").stdout)
    assert row["state"] == "running"
    assert (tmp_path / "results" / row["run_id"] / "setup.log").exists()
    assert f"`pacerid-tui terminate --run {row['run_id']}` ends it." in done.stderr
