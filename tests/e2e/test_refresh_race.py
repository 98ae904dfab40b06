"""A refresh never overwrites what was recorded while it asked the provider.

`Lifecycle.refresh` describes the instances of runs read before its (threaded) provider call;
a budget stop that terminates the instance and records its reason in between must keep that
reason, which the dashboard announces and recovery reads as our own stop. Found as a flake of
tests/aws/test_aws_dashboard.py::test_a_budget_stop_outlasting_the_refresh_still_saves_then_terminates
under load (refresh every 0.2 s); here the same order, on the real local provider, every time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pacerid_tui.config import Config
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry


async def test_a_reason_recorded_during_a_refresh_survives_it(tmp_path: Path) -> None:
    lifecycle = Lifecycle(Registry(tmp_path / "runs.json"))
    config = Config.model_validate({"data": {"source": "synthetic"}})
    run = await lifecycle.launch(lifecycle.create_run(tmp_path / "run.yaml", config))
    read_by_the_refresh = lifecycle.registry.runs()  # alive, before the stop

    run = await lifecycle.terminate(run)  # the budget stop, meanwhile
    assert run.instance is not None
    lifecycle.update(run, instance=replace(run.instance, state_reason="budget reached"))

    [refreshed] = await lifecycle.refresh(read_by_the_refresh)
    kept = lifecycle.registry.get(run.run_id).instance
    assert kept is not None and kept.state.value == "terminated"
    assert kept.state_reason == "budget reached"
    assert refreshed.instance == kept  # the refresh answers what the registry holds
