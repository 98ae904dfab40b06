"""What the ranking reads from AWS, in two regions of moto: zone prices, placement scores by
zone id (the stand-in answers GetSpotPlacementScores as the EC2 API reference shapes it), the
advisor's buckets (its public JSON on loopback), each cached as AWS's limits ask, and doctor in
each candidate region."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from placement_standin import AdvisorStandIn, PlacementStandIn, two_regions

from pacerid_tui import paths
from pacerid_tui.config import InstanceConfig, load_config
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_placement import placement_facts
from pacerid_tui.core.cloud.aws_scores import SCORES_TTL_S
from pacerid_tui.core.kernel.checks import OK, WARN
from pacerid_tui.core.steps.doctor import run_checks

BOTH = ["us-east-1", "us-east-2"]


@pytest.fixture
def market(placement_standin: PlacementStandIn, advisor: AdvisorStandIn) -> PlacementStandIn:
    two_regions(placement_standin, advisor)
    return placement_standin


def provider(
    make_config: Callable[..., InstanceConfig], standin: PlacementStandIn, **more: Any
) -> AwsProvider:
    return AwsProvider(make_config(**more), endpoint_url=standin.url)


def test_every_zone_of_both_regions_with_its_price_score_and_bucket(
    market: PlacementStandIn, advisor: AdvisorStandIn, make_config: Any
) -> None:
    aws = provider(
        make_config,
        market,
        regions=BOTH,
        advisor_url=advisor.url,
        fallback_instance_types=["g5.xlarge", "g4dn.2xlarge"],
    )
    facts = aws.placement_facts()
    by_zone = {zone.zone: zone for zone in facts.zones}
    # moto's zones of the two regions that offer g4dn.xlarge, the prices the stand-in set
    assert set(by_zone) == {
        "us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f",
        "us-east-2a", "us-east-2b", "us-east-2c",
    }  # fmt: skip
    assert by_zone["us-east-2b"].price == pytest.approx(0.158)
    assert by_zone["us-east-1e"].price is None  # moto offers no g4dn there: no price, not 0
    # scores come by zone id (us-east-2b is use2-az2 in moto's account); us-east-2a was not in
    # the answer, so it has none
    assert (by_zone["us-east-2b"].zone_id, by_zone["us-east-2b"].score) == ("use2-az2", 9)
    assert by_zone["us-east-1a"].score == 2 and by_zone["us-east-2a"].score is None
    assert {zone.interrupted for zone in facts.zones} == {"<5%"} and facts.advisor
    [asked] = market.score_calls
    assert asked == {
        "types": ["g4dn.xlarge", "g5.xlarge", "g4dn.2xlarge"],
        "regions": BOTH,
        "capacity": 1,
        "single_az": True,
        "unit": "units",
    }
    assert advisor.gets == 1


def test_one_type_is_made_up_to_three_of_its_family_and_the_note_says_so(
    market: PlacementStandIn, advisor: AdvisorStandIn, make_config: Any
) -> None:
    facts = provider(make_config, market, regions=BOTH, advisor_url=advisor.url).placement_facts()
    [asked] = market.score_calls
    assert asked["types"] == ["g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge"]
    assert any("g4dn.2xlarge, g4dn.4xlarge added" in note for note in facts.notes)
    # three types, so not the "always low" answer of one or two
    assert max(zone.score or 0 for zone in facts.zones) == 9


def test_scores_are_asked_once_an_hour_per_configuration(
    market: PlacementStandIn, advisor: AdvisorStandIn, make_config: Any
) -> None:
    aws = provider(make_config, market, regions=BOTH, advisor_url=advisor.url)
    aws.placement_facts()
    again = aws.placement_facts()
    assert len(market.score_calls) == 1
    assert any(
        re.search(r"asked \d+ min ago \(each answer is kept an hour", n) for n in again.notes
    )
    cached = json.loads(paths.placement_scores_file().read_text())["answers"]
    assert len(cached) == 1
    # another configuration (one region) is asked; after an hour the first is asked again
    provider(make_config, market, regions=["us-east-2"], advisor_url=advisor.url).placement_facts()
    assert [call["regions"] for call in market.score_calls] == [BOTH, ["us-east-2"]]
    later = time.time() + SCORES_TTL_S + 1
    placement_facts(aws.config, market.url, now=later)
    assert [call["regions"] for call in market.score_calls] == [BOTH, ["us-east-2"], BOTH]


def test_refused_scores_use_the_last_answer_with_its_age_or_go_without(
    market: PlacementStandIn, advisor: AdvisorStandIn, make_config: Any
) -> None:
    config = make_config(regions=BOTH, advisor_url=advisor.url)
    market.refuse_scores = True
    facts = placement_facts(config, market.url)
    assert all(zone.score is None for zone in facts.zones)
    assert any(note.startswith("No placement scores: These AWS credentials may not give spot")
               for note in facts.notes)  # fmt: skip
    market.refuse_scores = False
    placement_facts(config, market.url)  # asked and kept
    market.refuse_scores = True
    stale = placement_facts(config, market.url, now=time.time() + 2 * SCORES_TTL_S)
    assert {zone.zone: zone.score for zone in stale.zones}["us-east-2b"] == 9
    assert any(note.startswith("Placement scores from 2 h ago") for note in stale.notes)


def test_the_advisors_data_is_kept_a_day_and_its_age_shown(
    market: PlacementStandIn, advisor: AdvisorStandIn, make_config: Any
) -> None:
    config = make_config(regions=BOTH, advisor_url=advisor.url)
    placement_facts(config, market.url)
    placement_facts(config, market.url)
    assert advisor.gets == 1
    assert paths.spot_advisor_file().exists()
    advisor.down = True
    tomorrow = placement_facts(config, market.url, now=time.time() + 30 * 3600)
    assert advisor.gets == 2 and tomorrow.advisor
    assert any("from 30 h ago (fetching it again failed: HTTP 503)" in n for n in tomorrow.notes)


def test_without_the_advisor_the_ranking_says_it_used_prices_and_scores_only(
    market: PlacementStandIn, advisor: AdvisorStandIn, make_config: Any
) -> None:
    advisor.down = True
    facts = provider(make_config, market, regions=BOTH, advisor_url=advisor.url).placement_facts()
    assert not facts.advisor and all(zone.interrupted is None for zone in facts.zones)
    assert any("ranked by prices and placement scores only" in note for note in facts.notes)


def test_auto_is_every_enabled_region_that_offers_the_type(
    market: PlacementStandIn, advisor: AdvisorStandIn, make_config: Any
) -> None:
    facts = provider(make_config, market, regions="auto", advisor_url=advisor.url).placement_facts()
    regions = {zone.region for zone in facts.zones}
    assert {"us-east-1", "us-east-2", "eu-west-1"} <= regions
    assert "ap-east-1" not in regions  # moto's account has not opted in to Hong Kong
    [asked] = market.score_calls
    assert set(asked["regions"]) == regions


def test_doctor_ranks_and_checks_each_candidate_region(
    market: PlacementStandIn, advisor: AdvisorStandIn, aws_config: Path, iam_standin: Any
) -> None:
    raw = yaml.safe_load(aws_config.read_text())
    raw["instance"].update(regions=BOTH, advisor_url=advisor.url)
    aws_config.write_text(yaml.safe_dump(raw))
    checks = {check.check: check for check in run_checks(load_config(aws_config))}
    where = checks["where"]
    assert where.status == OK, where
    assert where.detail.startswith("1. us-east-2b · $0.158/h · score 9 · <5 % interrupted")
    for region in BOTH:
        for name in ("credentials", "quota", "network", "image", "key_pair", "firewall", "price"):
            assert checks[f"{name} ({region})"].status in (OK, WARN), checks[f"{name} ({region})"]
    assert "us-east-2" in checks["credentials (us-east-2)"].detail
    assert "role" in checks and "kaggle" in checks
    market.refuse_scores = True
    paths.placement_scores_file().unlink()
    refused = {c.check: c for c in run_checks(load_config(aws_config), ["quota"])}
    assert refused["where"].status == WARN and "GetSpotPlacementScores" in refused["where"].fix
