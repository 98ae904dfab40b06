"""watchdog.json is one contract: the controller (core/remote/host_contract.py) writes exactly the
keys the host's watchdog (trainer/watchdog.py) defines and reads, with the same types; the
watchdog refuses a file that does not match, in one sentence. The two programs never import each
other, so this test, which imports both, is where a key added on one side only fails."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from pacerid_tui.config import Config, InstanceConfig
from pacerid_tui.core.kernel.models import Instance, InstanceState
from pacerid_tui.core.remote import host_contract
from pacerid_tui.core.remote.host_contract import watchdog_settings
from trainer import watchdog

CONFIG = Config(instance=InstanceConfig(budget_usd=2.0, max_price=0.5, max_runtime_minutes=90))
ON_DEMAND = Instance("i-1", "aws", InstanceState.RUNNING, launched_at=100.0, region="eu-west-1")
SPOT = Instance(
    "i-2",
    "aws",
    InstanceState.RUNNING,
    launched_at=200.0,
    region="eu-west-1",
    spot_request_id="sir-1",
)


def test_both_sides_have_the_same_keys_in_the_same_order_with_the_same_types() -> None:
    written = [(f.name, str(f.type)) for f in fields(host_contract.WatchdogSettings)]
    read = [(f.name, str(f.type)) for f in fields(watchdog.WatchdogSettings)]
    assert written == read


@pytest.mark.parametrize("instance", [ON_DEMAND, SPOT], ids=["on-demand", "spot"])
def test_what_the_controller_writes_the_watchdog_reads_back_whole(
    tmp_path: Path, instance: Instance
) -> None:
    sent = watchdog_settings(CONFIG, instance, spent_usd=0.5)
    (tmp_path / "watchdog.json").write_text(sent.json())
    read = watchdog.read_settings(tmp_path / "watchdog.json")
    assert asdict(read) == asdict(sent)
    assert (read.max_runtime_s, read.budget_usd, read.price_per_hour) == (5400, 1.5, 0.5)
    assert read.spot_request_id == instance.spot_request_id
    assert read.instance_id == ("i-2" if instance is SPOT else None)  # ids only for its own calls


def test_a_file_with_a_key_missing_or_unknown_is_refused_naming_it(tmp_path: Path) -> None:
    good = json.loads(watchdog_settings(CONFIG, ON_DEMAND).json())
    path = tmp_path / "watchdog.json"
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "idle_s"}))
    with pytest.raises(watchdog.SettingsError, match="missing: idle_s; unknown: none"):
        watchdog.read_settings(path)
    path.write_text(json.dumps({**good, "poll_s": 60}))
    with pytest.raises(watchdog.SettingsError, match="missing: none; unknown: poll_s"):
        watchdog.read_settings(path)


def test_setup_s_check_fails_in_one_sentence_on_a_mismatched_file(tmp_path: Path) -> None:
    """setup_host.sh runs `watchdog.py RUN --check` before training: a mismatch stops setup."""
    good = json.loads(watchdog_settings(CONFIG, ON_DEMAND).json())
    (tmp_path / "watchdog.json").write_text(json.dumps({**good, "poll_s": 5}))
    script = Path(watchdog.__file__)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "unknown: poll_s" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    (tmp_path / "watchdog.json").write_text(json.dumps(good))
    ok = subprocess.run([sys.executable, str(script), str(tmp_path), "--check"], check=False)
    assert ok.returncode == 0
