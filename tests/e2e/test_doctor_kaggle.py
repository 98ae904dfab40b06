"""The doctor's kaggle check asks Kaggle itself, through kagglesdk's client, against the loopback
stand-in of tests/kaggle_standin.py (KAGGLE_API_ENVIRONMENT=TEST is http://localhost:7777;
GetDataset shaped from kagglesdk's DatasetApiClient.get_dataset, ApiGetDatasetRequest and
ApiDataset): a legacy key and a token it accepts are ok, a refused key
names HTTP 401 and the fix, an unknown dataset fails, and no answer at all is only a warn. The
key or token is never in what the check says."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.checks import Check
from pacerid_tui.core.steps.doctor import run_checks
from tests.kaggle_standin import GET_RPC, KEY, TOKEN, USERNAME, KaggleStandIn


def kaggle_check(tmp_path: Path, dataset: str = "jamesphoward/pacemakers") -> Check:
    path = tmp_path / "kaggle.yaml"
    path.write_text(f"instance: {{provider: local}}\ndata: {{source: kaggle, dataset: {dataset}}}")
    [check] = run_checks(load_config(path), ["kaggle"])
    assert KEY not in check.detail + check.fix and TOKEN not in check.detail + check.fix
    return check


def test_an_accepted_legacy_key_and_dataset_are_ok(
    kaggle: KaggleStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    check = kaggle_check(tmp_path)
    assert check.status == "ok", check
    assert "accepted by Kaggle; dataset jamesphoward/pacemakers reachable" in check.detail
    basic = "Basic " + base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode()
    assert kaggle.requests == [{"path": GET_RPC, "auth": basic}]


def test_an_accepted_token_is_ok(
    kaggle: KaggleStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    check = kaggle_check(tmp_path)
    assert check.status == "ok", check
    assert check.detail.startswith("An API token from KAGGLE_API_TOKEN accepted by Kaggle")
    assert kaggle.requests == [{"path": GET_RPC, "auth": f"Bearer {TOKEN}"}]


def test_a_refused_key_fails_naming_401_and_the_fix(
    kaggle: KaggleStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", "not-the-key")
    check = kaggle_check(tmp_path)
    assert check.status == "fail" and check.usage, check
    assert "Kaggle refused these credentials (HTTP 401)" in check.detail
    assert "KAGGLE_API_TOKEN" in check.fix and "not-the-key" not in check.detail + check.fix


def test_an_unknown_dataset_fails(
    kaggle: KaggleStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    check = kaggle_check(tmp_path, "someone/no-such-data")
    assert check.status == "fail", check
    assert "someone/no-such-data not found or not accessible (HTTP 404)" in check.detail
    assert "data.dataset" in check.fix


def test_no_answer_from_kaggle_is_a_warn(
    kaggle_port_held: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    check = kaggle_check(tmp_path)  # nothing listens on localhost:7777
    assert check.status == "warn", check
    assert "Could not reach Kaggle at http://localhost:7777 (network)" in check.detail
