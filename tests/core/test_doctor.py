"""`pacerid-tui doctor` on the local provider: nothing to check, everything ok, exit 0; the
kaggle check without credentials blocks the launch; bad input exits 2 (the kaggle check's
answers from Kaggle: tests/e2e/test_doctor_kaggle.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pacerid_tui.__main__ import main
from pacerid_tui.config import load_config
from pacerid_tui.core.steps.doctor import NAMES, PreflightError, preflight, run_checks
from tests.conftest import REPO


def test_local_needs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json", "--config", str(REPO / "configs" / "local.yaml")]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["check"] for entry in listed] == list(NAMES)
    assert {entry["status"] for entry in listed} == {"ok"}
    assert all(entry["detail"].startswith("Not needed") for entry in listed)


def test_a_missing_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--config", "no-such.yaml"]) == 2
    assert "no such config file" in capsys.readouterr().err


def kaggle_config(tmp_path: Path) -> Path:
    path = tmp_path / "kaggle.yaml"
    path.write_text("instance:\n  provider: local\ndata:\n  source: kaggle\n")
    return path


def test_kaggle_without_credentials_fails_and_blocks_the_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load_config(kaggle_config(tmp_path))
    [check] = run_checks(config, ["kaggle"])
    assert check.status == "fail" and "KAGGLE_API_TOKEN" in check.fix
    with pytest.raises(PreflightError, match="kaggle check failed") as refused:
        preflight(config)
    assert refused.value.exit_code == 2
