"""`pacerid-tui sweep` on the local provider: the instances of ours no run knows (as the
dashboard's orphan notice finds them) are listed at no cost and ended by `--yes`, a stop-mode
one with its simulated persistent request cancelled first, so nothing comes back; a run's own
instance is kept."""

from __future__ import annotations

import json
import time

import pytest

from pacerid_tui import paths
from pacerid_tui.__main__ import main
from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.checks import OK
from pacerid_tui.core.kernel.models import InstanceSpec, Run
from pacerid_tui.core.steps.doctor import run_checks
from pacerid_tui.core.steps.registry import Registry
from tests.conftest import REPO

CONFIG = REPO / "configs" / "local.yaml"


def test_sweep_ends_the_local_instances_no_run_knows_and_keeps_a_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider = LocalProvider()
    lost = provider.launch(InstanceSpec(run_id="lost", provider="local", interruption="stop"))
    known = provider.launch(InstanceSpec(run_id="known", provider="local"))
    Registry(paths.registry_file()).save(
        Run("known", "local", str(CONFIG), time.time(), instance=known)
    )

    assert main(["sweep", "--json", "--config", str(CONFIG)]) == 0  # local costs nothing
    rows = {row["resource_id"]: row for row in json.loads(capsys.readouterr().out)["found"]}
    assert set(rows) == {lost.instance_id, known.instance_id}
    assert (rows[lost.instance_id]["in_use_by"], rows[known.instance_id]["in_use_by"]) == (
        None,
        "known",
    )
    assert {row["usd_per_day"] for row in rows.values()} == {0.0}
    [check] = run_checks(load_config(CONFIG), ["leftovers"])
    assert check.status == OK and f"instance {lost.instance_id} (local, $0.00/day)" in check.detail

    assert main(["sweep", "--yes", "--config", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert f"Removed instance {lost.instance_id} (local, $0.00/day)." in out
    assert "Nothing of ours costs money now" in out
    # Its request was cancelled before it ended: no fresh instance took its place.
    assert [i.instance_id for i in provider.find_managed()] == [known.instance_id]
    [check] = run_checks(load_config(CONFIG), ["leftovers"])
    assert check.detail.startswith("Not needed")
