"""The ranking rule (README: "Choosing where") as a pure function, on facts shaped as AWS gives
them: g4dn.xlarge spot prices per zone, GetSpotPlacementScores' 1–10 per zone id (the top 10
only), and the Spot Instance Advisor's buckets per region and type."""

from __future__ import annotations

import pytest

from pacerid_tui.config import Config, InstanceConfig
from pacerid_tui.core.kernel.placement_facts import PlacementFacts, ZoneFacts
from pacerid_tui.core.steps.placement_rank import (
    DEFAULT_RUN_HOURS,
    choice_of,
    interruption_share,
    rank,
    run_hours,
)


def zone(
    name: str, price: float | None, score: int | None, bucket: str | None = "<5%"
) -> ZoneFacts:
    return ZoneFacts(name[:-1], name, "g4dn.xlarge", price, score, bucket)


ISSUE = PlacementFacts(
    (
        zone("us-east-1a", 0.1512, 2),
        zone("us-east-1b", 0.1698, 4),
        zone("us-east-1c", 0.2104, 5),
        zone("us-east-2a", 0.1540, None),  # not in AWS's top 10
        zone("us-east-2b", 0.1580, 9),
        zone("us-east-2c", 0.1920, 7),
    ),
    advisor=True,
)


def test_the_issues_account_goes_to_the_better_scored_zone_one_region_over() -> None:
    ranked = rank(ISSUE, hours=2, recovery_minutes=20)
    assert [row.facts.zone for row in ranked] == [
        "us-east-2b",  # within 10 % of us-east-1a's expected cost, and scores 9 to its 2
        "us-east-1a",
        "us-east-2a",
        "us-east-1b",
        "us-east-2c",
        "us-east-1c",
    ]
    # By hand: "<5%" counts as 2.5 %, so 0.025 / 0.975 interruptions, each 20 min of recovery.
    assert ranked[0].expected_usd == pytest.approx(0.158 * (2 + 0.025 / 0.975 / 3))
    assert (
        ranked[0].reason == "us-east-2b · $0.158/h · score 9 · <5 % interrupted · ≈ $0.32 the run"
    )
    assert ranked[2].reason.startswith("us-east-2a · $0.154/h · no score · ")


def test_beyond_the_near_tie_the_money_decides() -> None:
    facts = PlacementFacts(
        (zone("us-east-1a", 0.150, 1), zone("us-east-2b", 0.170, 10)), advisor=True
    )
    assert [row.facts.zone for row in rank(facts, 2, 20)] == ["us-east-1a", "us-east-2b"]


def test_a_zone_missing_from_the_scores_goes_after_every_scored_one_but_is_not_zero() -> None:
    facts = PlacementFacts(
        (zone("eu-west-1a", 0.200, None), zone("eu-west-1b", 0.205, 1)), advisor=True
    )
    ranked = rank(facts, 2, 20)
    assert [row.facts.zone for row in ranked] == ["eu-west-1b", "eu-west-1a"]
    assert "no score" in ranked[1].reason and "score 0" not in ranked[1].reason


def test_without_any_score_the_expected_cost_alone_orders() -> None:
    facts = PlacementFacts(
        (zone("us-east-2a", 0.160, None), zone("us-east-1a", 0.155, None)), advisor=True
    )
    assert [row.facts.zone for row in rank(facts, 2, 20)] == ["us-east-1a", "us-east-2a"]


def test_interruptions_cost_recovery_time_at_the_zones_price() -> None:
    # Same price and score: the region reclaimed ">20%" of the time expects 1/3 interruption
    # per run (25 % → 0.25 / 0.75), a third of the 20 minutes' recovery, at its price.
    facts = PlacementFacts(
        (zone("us-west-2a", 0.20, 6, ">20%"), zone("us-east-2a", 0.20, 6, "<5%")), advisor=True
    )
    ranked = rank(facts, 1, 20)
    assert [row.facts.zone for row in ranked] == ["us-east-2a", "us-west-2a"]
    assert ranked[1].interruptions == pytest.approx(1 / 3)
    assert ranked[1].expected_usd == pytest.approx(0.20 * (1 + 1 / 3 * 20 / 60))


def test_a_short_run_feels_the_same_risk_more_than_a_long_one() -> None:
    # 5 % cheaper but reclaimed ">20%" of the time: it loses a 1 h run (an extra third of
    # 20 min is 11 % more) and wins a 10 h one (1 % more).
    facts = PlacementFacts(
        (zone("us-west-2a", 0.19, 6, ">20%"), zone("us-east-2a", 0.20, 6, "<5%")), advisor=True
    )
    assert [row.facts.zone for row in rank(facts, 1, 20)] == ["us-east-2a", "us-west-2a"]
    assert [row.facts.zone for row in rank(facts, 10, 20)] == ["us-west-2a", "us-east-2a"]


def test_without_the_advisor_no_zone_pays_for_interruptions() -> None:
    facts = PlacementFacts(
        (zone("us-west-2a", 0.19, 6, None), zone("us-east-2a", 0.20, 6, None)), advisor=False
    )
    ranked = rank(facts, 2, 20)
    assert [row.interruptions for row in ranked] == [0.0, 0.0]
    assert ranked[0].expected_usd == pytest.approx(0.38)
    assert "interrupted" not in ranked[0].reason


def test_a_pair_the_advisor_does_not_list_counts_as_its_middle_bucket() -> None:
    facts = PlacementFacts((zone("ap-south-1a", 0.10, 5, None),), advisor=True)
    [row] = rank(facts, 2, 20)
    assert row.interruptions == pytest.approx(0.125 / 0.875)


def test_zones_without_a_price_come_last_and_are_never_chosen() -> None:
    facts = PlacementFacts((zone("us-east-1e", None, 10), zone("us-east-1a", 0.30, 1)), True)
    choice = choice_of(facts, Config())
    assert [row.facts.zone for row in choice.ranked] == ["us-east-1a", "us-east-1e"]
    assert choice.ranked[1].expected_usd is None
    assert choice.regions() == ["us-east-1"]


@pytest.mark.parametrize(
    ("label", "share"),
    [("<5%", 0.025), ("5-10%", 0.075), ("10-15%", 0.125), ("15-20%", 0.175), (">20%", 0.25)],
)
def test_every_published_bucket_counts_at_its_middle(label: str, share: float) -> None:
    assert interruption_share(label) == pytest.approx(share)


def test_the_choice_lists_regions_by_their_best_zone_and_each_regions_zones_in_order() -> None:
    choice = choice_of(ISSUE, Config())
    assert choice.regions() == ["us-east-2", "us-east-1"]
    assert choice.zones_in("us-east-2") == ("us-east-2b", "us-east-2a", "us-east-2c")
    assert choice.reason_at("us-east-1", "us-east-1b") == choice.ranked[3].reason
    assert choice.reason_at("us-east-1", None) == choice.ranked[1].reason
    assert choice.reason_at("eu-west-1", None) is None
    assert choice.basis.startswith(f"Ranked by the expected cost of a {DEFAULT_RUN_HOURS:g} h run")


def test_a_max_runtime_is_the_runs_hours() -> None:
    assert run_hours(Config()) == DEFAULT_RUN_HOURS
    assert run_hours(Config(instance=InstanceConfig(max_runtime_minutes=90))) == 1.5
