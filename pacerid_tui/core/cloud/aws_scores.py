"""Spot placement scores per zone (EC2 GetSpotPlacementScores), each configuration asked once
an hour at most and kept under the state folder.

What AWS says (EC2 User Guide, "Spot placement score"; EC2 API reference,
GetSpotPlacementScores): a score of 1–10 per region, or per zone id with
`SingleAvailabilityZone=true`, of how likely a request for the target capacity of these
instance types is to be filled now; name at least three types, since with one or two the score
is always low; only the top 10 regions or zones come back, so one missing from the answer has
no score, never 0; and an account may ask only a limited number of new configurations (types,
regions, capacity) per 24 hours. Hence: the run's type and its fallbacks, made up to three with
larger sizes of the same family (the same GPU) where the config names fewer, said in the note;
each configuration's answer kept for SCORES_TTL_S; an older answer used, its age said, when a
new one is refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud.aws_advisor import age_text
from pacerid_tui.core.cloud.aws_session import user_error
from pacerid_tui.core.kernel import atomic

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

SCORES_TTL_S = 3600.0
"""How long an answer is reused: capacity moves within hours, and every fresh configuration
counts against the account's daily allowance."""

KEEP_S = 24 * 3600.0
"""Answers older than the allowance's window are dropped from the file."""

MIN_TYPES = 3
TARGET_CAPACITY = 1
"""One instance: a training run rents one GPU host."""

SIZES = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
"""Sizes in order, to add the next larger ones of the run's family (same GPU, more CPU)."""

_lock = threading.Lock()


def scored_types(instance_types: Sequence[str]) -> tuple[list[str], list[str]]:
    """The types to score (the run's, in order, made up to MIN_TYPES) and those added."""
    types = list(dict.fromkeys(instance_types))
    added: list[str] = []
    family, _, size = types[0].partition(".") if types else ("", "", "")
    if size in SIZES:
        for larger in SIZES[SIZES.index(size) + 1 :]:
            if len(types) >= MIN_TYPES:
                break
            if f"{family}.{larger}" not in types:
                types.append(f"{family}.{larger}")
                added.append(f"{family}.{larger}")
    return types, added


def cache_key(types: Sequence[str], regions: Sequence[str]) -> str:
    asked = {"types": sorted(types), "regions": sorted(regions), "capacity": TARGET_CAPACITY}
    return json.dumps(asked, sort_keys=True)


def read_answers(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
        return dict(raw.get("answers", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def ask(ec2: EC2Client, types: Sequence[str], regions: Sequence[str]) -> dict[str, int]:
    """Score by zone id, all pages; zones missing from the answer are missing here."""
    scores: dict[str, int] = {}
    pages = ec2.get_paginator("get_spot_placement_scores").paginate(
        InstanceTypes=list(types),
        TargetCapacity=TARGET_CAPACITY,
        TargetCapacityUnitType="units",
        SingleAvailabilityZone=True,
        RegionNames=list(regions),
    )
    for page in pages:
        for item in page.get("SpotPlacementScores", []):
            zone_id, score = item.get("AvailabilityZoneId"), item.get("Score")
            if zone_id and score is not None:
                scores[str(zone_id)] = int(score)
    return scores


def zone_scores(
    ec2: EC2Client,
    instance_types: Sequence[str],
    regions: Sequence[str],
    path: Path,
    now: float | None = None,
) -> tuple[dict[str, int], str]:
    """Score by zone id for these types and regions, and a sentence on where it came from."""
    now = time.time() if now is None else now
    types, added = scored_types(instance_types)
    named = ", ".join(types)
    if added:
        named += f" ({', '.join(added)} added: AWS scores fewer than three types low)"
    key = cache_key(types, regions)
    with _lock:
        kept = read_answers(path).get(key)
    if kept and now - float(kept["fetched_at"]) < SCORES_TTL_S:
        age = age_text(now - float(kept["fetched_at"]))
        return dict(kept["scores"]), f"Placement scores for {named}: asked {age} ago ({KEPT})."
    try:
        scores = ask(ec2, types, regions)
    except (BotoCoreError, ClientError) as err:
        why = str(user_error(err, "give spot placement scores")).rstrip(".")
        if kept:
            age = age_text(now - float(kept["fetched_at"]))
            return dict(kept["scores"]), f"Placement scores from {age} ago ({why})."
        return {}, f"No placement scores: {why}."
    with _lock:
        answers = {
            k: v
            for k, v in read_answers(path).items()
            if now - float(v.get("fetched_at", 0)) < KEEP_S
        }
        answers[key] = {"fetched_at": now, "scores": scores}
        atomic.write_text(path, json.dumps({"version": 1, "answers": answers}, indent=1) + "\n")
    return scores, f"Placement scores for {named}: asked now ({KEPT})."


KEPT = "each answer is kept an hour, as AWS allows few new ones a day"
