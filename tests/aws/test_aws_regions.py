"""Choosing where (README), end to end on moto in two regions behind the placement stand-in:
the issue's account launches one region over with the reason shown, and every later step asks
there; without `instance.regions` nothing changes; a region with no room gives way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config as BotoConfig
from placement_standin import AdvisorStandIn, PlacementStandIn, two_regions

from pacerid_tui import paths
from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_keypair import ensure_key_pair
from pacerid_tui.core.cloud.aws_keyprint import fingerprints
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise import orphans

REPO = Path(__file__).resolve().parents[2]
REASON = "us-east-2b · $0.158/h · score 9 · <5 % interrupted"


@pytest.fixture
def market(placement_standin: PlacementStandIn, advisor: AdvisorStandIn) -> PlacementStandIn:
    two_regions(placement_standin, advisor)
    return placement_standin


@pytest.fixture
def regions_config(aws_config: Path, advisor: AdvisorStandIn) -> Path:
    """configs/base.yaml on moto with `regions: [us-east-1, us-east-2]` (region us-east-1)."""
    raw = yaml.safe_load(aws_config.read_text())
    raw["instance"].update(regions=["us-east-1", "us-east-2"], advisor_url=advisor.url)
    path = aws_config.with_name("regions.yaml")
    path.write_text(yaml.safe_dump(raw))
    return path


def ec2_in(region: str, endpoint: str) -> Any:
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )


def live(region: str, endpoint: str) -> dict[str, str]:
    """Instance id → state of every instance in the region."""
    pages = ec2_in(region, endpoint).describe_instances()["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in pages for i in r["Instances"]}


def cli(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pacerid_tui", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AWS_ENDPOINT_URL": endpoint},
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_better_scored_zone_one_region_over_wins_and_every_step_asks_there(
    market: PlacementStandIn, regions_config: Path, aws_env: str, make_config: Any
) -> None:
    # A run in us-east-1 made the key pair there; its private key is the one file here.
    home = AwsProvider(make_config(), endpoint_url=aws_env)
    key = ensure_key_pair(home.clients.ec2, home.config, lambda _: None)
    config = str(regions_config)
    launched = cli(market.url, "launch", "--config", config)
    run_id = launched.stdout.strip()
    assert f"First: {REASON}" in launched.stderr
    assert market.launched_in == ["us-east-2b"]
    [row] = json.loads(cli(market.url, "status", "--json", "--config", config).stdout)
    assert (row["run_id"], row["state"], row["zone"]) == (run_id, "running", "us-east-2b")
    assert row["placement"].startswith(REASON)
    assert (
        f"placed by the ranking: {REASON}" in cli(market.url, "status", "--config", config).stdout
    )
    [instance_id] = live("us-east-2", aws_env)
    assert live("us-east-1", aws_env) == {}
    # The same key, its public half imported into us-east-2; a security group made there.
    [pair] = ec2_in("us-east-2", aws_env).describe_key_pairs()["KeyPairs"]
    assert pair["KeyName"] == key.name
    assert pair["KeyFingerprint"] in fingerprints(key.path.read_bytes())
    groups = ec2_in("us-east-2", aws_env).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["pacerid-ml-sg"]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    # terminate (and status after it) ask us-east-2, where the instance is
    cli(market.url, "terminate", "--config", config)
    assert live("us-east-2", aws_env) == {instance_id: "terminated"}
    [row] = json.loads(cli(market.url, "status", "--json", "--config", config).stdout)
    assert row["state"] == "terminated"


async def test_without_regions_the_launch_stays_in_the_configured_region(
    market: PlacementStandIn, advisor: AdvisorStandIn, aws_config: Path, aws_env: str
) -> None:
    lifecycle = Lifecycle()
    run = lifecycle.create_run(aws_config, load_config(aws_config))
    run = await lifecycle.launch(run)
    assert run.instance is not None
    assert (run.instance.region, run.instance.zone) == ("us-east-1", "us-east-1a")  # cheapest
    assert (run.region, run.placement) == (None, None)
    assert market.score_calls == [] and advisor.gets == 0
    assert not paths.placement_scores_file().exists()
    assert live("us-east-2", aws_env) == {}
    await lifecycle.terminate(run)
    lifecycle.close()


async def test_the_runs_region_is_used_by_refresh_and_by_a_forgetful_registry(
    market: PlacementStandIn, regions_config: Path, aws_env: str
) -> None:
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(regions_config, load_config(regions_config)))
    assert run.region == "us-east-2" and run.instance is not None
    assert run.placement is not None and run.placement.startswith(REASON)
    # A later process (no provider kept) refreshes in the run's region: still running there.
    [again] = await Lifecycle().refresh([run])
    assert again.instance is not None and again.instance.state.value == "running"
    # With the registry lost, the instance is found in the listed region and ended there.
    paths.registry_file().unlink()
    fresh = Lifecycle()
    config = load_config(regions_config)
    [found] = await orphans.orphans(fresh, config)
    assert (found.instance_id, found.region) == (run.instance.instance_id, "us-east-2")
    await orphans.terminate_instance(fresh, found.instance_id, config)
    assert live("us-east-2", aws_env) == {found.instance_id: "terminated"}
    lifecycle.close()
    fresh.close()


async def test_a_region_with_no_room_gives_way_to_the_next(
    market: PlacementStandIn, regions_config: Path, aws_env: str
) -> None:
    market.full = {"us-east-2a", "us-east-2b", "us-east-2c"}
    said: list[str] = []
    lifecycle = Lifecycle()
    lifecycle.listener.report = lambda _run_id, message: said.append(message)  # type: ignore[method-assign]
    run = await lifecycle.launch(lifecycle.create_run(regions_config, load_config(regions_config)))
    assert run.instance is not None and run.instance.zone == "us-east-1a"
    assert run.region == "us-east-1"
    assert run.placement is not None and run.placement.startswith("us-east-1a · $0.151/h · score 2")
    assert any(m.startswith("Not us-east-2: No spot capacity for") for m in said), said
    assert market.launched_in == ["us-east-1a"]
    await lifecycle.terminate(run)
    assert live("us-east-1", aws_env) == {run.instance.instance_id: "terminated"}
    lifecycle.close()
