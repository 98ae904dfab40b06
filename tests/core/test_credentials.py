"""Kaggle credentials are found where the kaggle client looks; missing ones say what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pacerid_tui.core.credentials import kaggle_credentials
from pacerid_tui.core.errors import CredentialsError


def test_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "ann")
    monkeypatch.setenv("KAGGLE_KEY", "k1")
    assert kaggle_credentials() == {"username": "ann", "key": "k1"}


def test_kaggle_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    (tmp_path / "kaggle.json").write_text(json.dumps({"username": "bob", "key": "k2"}))
    assert kaggle_credentials() == {"username": "bob", "key": "k2"}
    (tmp_path / "kaggle.json").write_text("{not json")
    with pytest.raises(CredentialsError, match="not valid JSON"):
        kaggle_credentials()


def test_missing_says_how_to_fix_it() -> None:
    with pytest.raises(CredentialsError, match="KAGGLE_USERNAME and KAGGLE_KEY") as caught:
        kaggle_credentials()
    assert caught.value.exit_code == 2
