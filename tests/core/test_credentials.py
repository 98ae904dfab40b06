"""Kaggle credentials are found where the kaggle client looks; missing ones say what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pacerid_tui.core.kernel.errors import CredentialsError
from pacerid_tui.core.steps.credentials import kaggle_credentials, kaggle_source


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


def test_missing_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CredentialsError, match="KAGGLE_USERNAME and KAGGLE_KEY") as caught:
        kaggle_credentials()
    assert caught.value.exit_code == 2


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user's home with no ~/.kaggle yet (kagglesdk looks for access_token there)."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return tmp_path / "user"


def test_an_api_token_comes_before_the_legacy_key(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "ann")
    monkeypatch.setenv("KAGGLE_KEY", "k1")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_t1")
    assert kaggle_credentials() == {"token": "KGAT_t1"}
    assert kaggle_source() == "an API token from KAGGLE_API_TOKEN"


def test_kaggle_api_token_may_name_a_file(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("KGAT_t2\n")
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(tmp_path / "token"))
    assert kaggle_credentials() == {"token": "KGAT_t2"}
    assert "the file named by KAGGLE_API_TOKEN" in kaggle_source()


def test_access_token_file_in_the_kaggle_folder(home: Path) -> None:
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "access_token").write_text("KGAT_t3")
    assert kaggle_credentials() == {"token": "KGAT_t3"}
    assert kaggle_source() == "an API token from ~/.kaggle/access_token"


def test_none_at_all_names_every_form(home: Path) -> None:
    with pytest.raises(CredentialsError, match=r"KAGGLE_API_TOKEN or ~/\.kaggle/access_token"):
        kaggle_credentials()
