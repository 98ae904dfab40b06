"""Config files: validated once per text, read again whenever the file changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import ConfigError
from pacerid_tui.core.remote.host_contract import HostPaths


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


def test_set_overrides_pass_the_same_schema_and_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  epochs: 3\n")
    sets = ["training.epochs=5", "instance.budget_usd=0.5", "data.source=local"]
    config = load_config(path, sets)
    assert (config.training.epochs, config.instance.budget_usd) == (5, 0.5)
    assert config.data.source == "local"
    assert load_config(path).training.epochs == 3  # the file itself is untouched
    for item, said in [
        ("instance.budget_usd=-1", "--set instance.budget_usd = -1 is invalid"),
        ("instance.budgte_usd=1", "--set instance.budgte_usd: unknown key"),
        ("training.epochs", "expected KEY=VALUE"),
        ("training.epochs.x=1", "--set training.epochs.x: training.epochs is a value"),
        ("name.x=1", "--set name = {'x': 1} is invalid"),
        ("instance.ssh_cidr=10.0.0.1", "the prefix is missing"),
        ("instance.ssh_cidr=my-laptop", "expected a cidr block"),
    ]:
        with pytest.raises(ConfigError, match=r"^--set") as caught:
            load_config(path, [item])
        assert said in str(caught.value) and caught.value.exit_code == 2


def test_ssh_cidr_in_the_file_is_validated_too(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("instance:\n  ssh_cidr: 203.0.113.300/32\n")
    with pytest.raises(ConfigError, match=r"instance.ssh_cidr = '203.0.113.300/32' is invalid"):
        load_config(path)
    path.write_text("instance:\n  ssh_cidr: 203.0.113.7/32\n")
    assert load_config(path).instance.ssh_cidr == "203.0.113.7/32"


def test_checkpoints_default_to_notice_and_decide_what_a_download_takes(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("output:\n  dir: out\n")  # a config from before the key: notice
    assert load_config(path).output.checkpoints == "notice"
    assert load_config(path, ["output.checkpoints=every_epoch"]).output.checkpoints == "every_epoch"
    with pytest.raises(ConfigError, match=r"output\.checkpoints = .always. is invalid"):
        load_config(path, ["output.checkpoints=always"])
    names = ["metrics.jsonl", "train.log", "report.json", "system.jsonl", "model_best_fp16.pt"]
    big = ["checkpoint_latest.pt", "checkpoint_best.pt", "checkpoint_epoch_002.pt"]
    files = [*names, *big, "model_final.pt"]

    def taken(checkpoints: bool, epochs: bool, final: bool) -> list[str]:
        wanted = HostPaths.results_filter(checkpoints, epochs, final)
        return [name for name in files if wanted(name)]

    assert taken(False, True, True) == names  # during training with `notice`
    assert taken(True, False, False) == [*names, *big[:2]]  # `notice`'s saves
    assert taken(True, False, True) == [*names, *big[:2], "model_final.pt"]  # `every_epoch`
    assert taken(True, True, True) == files  # download_epoch_checkpoints too
