"""Config files: validated once per text, read again whenever the file changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacerid_tui.config import load_config
from pacerid_tui.core.errors import ConfigError


def test_an_edited_config_is_read_again_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  epochs: 3\n")
    first = load_config(path)
    assert first.training.epochs == 3
    assert load_config(path) is first  # same text: the validated object is reused
    path.write_text("training:\n  epochs: 5\n")
    assert load_config(path).training.epochs == 5
    path.write_text("training:\n  epochs: -1\n")
    with pytest.raises(ConfigError, match="epochs"):
        load_config(path)
    with pytest.raises(ConfigError, match="epochs"):  # an error is not remembered as a success
        load_config(path)
