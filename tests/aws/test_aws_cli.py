"""The guide's aws-launch / aws-status / aws-terminate, through the real program, on moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_seed import REGION

from pacerid_tui.config import load_config
from pacerid_tui.core.steps.lifecycle import Lifecycle

REPO = Path(__file__).resolve().parents[2]


def cli(endpoint: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    done = subprocess.run(
        [sys.executable, "-m", "pacerid_tui", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_launch_status_terminate_on_spot(aws_env: str, aws_config: Path) -> None:
    config = str(aws_config)
    launched = cli(aws_env, "launch", "--config", config)
    run_id = launched.stdout.strip()
    assert "spot" in launched.stderr.lower()
    status = json.loads(cli(aws_env, "status", "--json", "--config", config).stdout)
    [row] = status
    assert (row["run_id"], row["provider"], row["state"]) == (run_id, "aws", "running")
    assert row["instance_type"] == "g4dn.xlarge" and row["zone"].startswith(REGION)
    assert row["price_per_hour"] is not None and row["price_per_hour"] > 0
    # Per-second billing with a 60 s minimum: a fresh instance already costs one minute.
    compute = row["cost_parts"]["compute"]
    assert compute == pytest.approx(row["price_per_hour"] / 60, rel=0.05)
    assert row["cost_usd"] == pytest.approx(sum(row["cost_parts"].values()))
    table = cli(aws_env, "status", "--config", config).stdout
    assert run_id in table and "g4dn.xlarge" in table
    cli(aws_env, "terminate", "--config", config)
    status = json.loads(cli(aws_env, "status", "--json", "--config", config).stdout)
    assert status[0]["state"] == "terminated"


def test_an_aws_instance_the_registry_forgot_is_found_by_tag(
    aws_env: str, aws_config: Path
) -> None:
    config = str(aws_config)
    cli(aws_env, "launch", "--config", config)
    (Path(os.environ["PACERID_HOME"]) / "runs.json").unlink()
    unknown = json.loads(cli(aws_env, "status", "--json", "--config", config).stdout)
    assert [(u["provider"], u["known"]) for u in unknown] == [("aws", False)]
    cli(aws_env, "terminate", "--instance", unknown[0]["instance_id"], "--config", config)
    after = json.loads(cli(aws_env, "status", "--json", "--config", config).stdout)
    assert after == []


def test_missing_aws_credentials_is_one_sentence(
    aws_env: str, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    done = cli(aws_env, "launch", "--config", str(aws_config), check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2


def test_status_only_reads_and_a_supervising_command_stops_a_run_past_its_budget(
    aws_env: str, aws_config: Path
) -> None:
    config = str(aws_config)
    # Below moto's price for the billed first minute, set for this run only.
    run_id = cli(aws_env, "launch", "--config", config, "--set", "instance.budget_usd=1e-8")
    for _ in range(2):  # asking twice changes nothing either
        checked = cli(aws_env, "status", "--json", "--config", config)
        [row] = json.loads(checked.stdout)
        assert (row["state"], row["over_budget"], row["budget_usd"]) == ("running", True, 1e-8)
        assert "budget" not in checked.stderr
    assert "(over budget)" in cli(aws_env, "status", "--config", config).stdout
    stopped = cli(aws_env, "logs", "--follow", "--run", run_id.stdout.strip(), check=False)
    assert stopped.returncode == 1 and "reached its $0.00 budget" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    [row] = json.loads(cli(aws_env, "status", "--json", "--config", config).stdout)
    assert (row["state"], row["state_reason"]) == ("terminated", "budget reached")
    # kept with the run, as any ending of ours is: no later `all` or dashboard asks again
    assert row["ended"] == (
        f"{run_id.stdout.strip()} was stopped at its $0.00 budget after epoch 0 of 20; "
        f"{row['instance_id']} terminated."
    )


async def test_a_three_hour_run_costs_compute_volume_ipv4_and_egress_to_the_cent(
    aws_env: str, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's instance and spot price; 3 hours later, with 2 GiB downloaded, by hand: compute at
    moto's price, 100 GB x $0.08/GB-month x 3/720, $0.005/h x 3, 2 x $0.09."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    lifecycle = Lifecycle()
    config = load_config(aws_config, ["instance.root_volume_gb=100"])
    run = await lifecycle.launch(lifecycle.create_run(aws_config, config))
    run = lifecycle.registry.update(run.run_id, bytes_downloaded=2 * 1024**3)
    assert run.instance is not None and run.instance.launched_at is not None
    [row] = await lifecycle.statuses([run], now=run.instance.launched_at + 3 * 3600)
    assert row.price_per_hour is not None
    by_hand = row.price_per_hour * 3 + 100 * 0.08 * 3 / 720 + 0.005 * 3 + 2 * 0.09
    assert round(row.cost_usd, 2) == round(by_hand, 2) == 0.23
    assert row.cost_parts["egress"] == pytest.approx(0.18)
    assert row.budgeted_usd == pytest.approx(row.cost_usd - 0.18)
    await lifecycle.terminate(run)
    lifecycle.close()


def test_a_failed_launch_leaves_no_run_behind(aws_env: str, aws_config: Path) -> None:
    config = str(aws_config)
    for _ in range(2):
        pinned = "instance.ami_id=ami-0000dead"  # refused by the provider at launch
        done = cli(aws_env, "launch", "--config", config, "--set", pinned, check=False)
        assert done.returncode == 2 and "is not an available image" in done.stderr
    assert json.loads(cli(aws_env, "status", "--json", "--config", config).stdout) == []
    assert list((Path(os.environ["PACERID_HOME"]) / "runs").glob("*")) == []
