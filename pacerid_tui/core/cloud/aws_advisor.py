"""The Spot Instance Advisor's interruption buckets, from its public JSON, kept for a day.

The advisor page (aws.amazon.com/ec2/spot/instance-advisor) reads one public file,
`spot-advisor-data.json` on the `spot-bid-advisor` S3 bucket: `spot_advisor[region]["Linux"]
[type] = {"s": savings %, "r": range index}`, and `ranges[index].label` is "<5%", "5-10%",
"10-15%", "15-20%" or ">20%": the share of that type's spot instances reclaimed in the region
over the trailing month (per region and type, not per zone). It is fetched (a plain GET, no
credentials: it is public) at most once per ADVISOR_TTL_S into the state folder, atomically,
and read from there. When it cannot be fetched an older copy is used, its age said; with none
the ranking goes on without it and says so.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pacerid_tui.core.kernel import atomic

ADVISOR_TTL_S = 24 * 3600.0
"""The data covers the trailing month and moves slowly: a day-old copy is fresh enough."""

FETCH_TIMEOUT_S = 10.0
"""Seconds to connect and then to read the file (about 1.5 MB); past it, the copy here serves."""

OS = "Linux"


@dataclass(frozen=True)
class Advisor:
    buckets: dict[str, dict[str, str]] | None
    """Region → instance type → bucket label (Linux); None: no data at hand."""
    note: str
    """One sentence: where the data came from and how old it is, or why there is none."""

    def bucket(self, region: str, instance_type: str) -> str | None:
        return (self.buckets or {}).get(region, {}).get(instance_type)


def parse(raw: bytes) -> dict[str, dict[str, str]]:
    """The published JSON as region → type → label; ValueError when it is not that shape."""
    try:
        data = json.loads(raw)
        labels = [str(entry["label"]) for entry in data["ranges"]]
        found: dict[str, dict[str, str]] = {}
        for region, systems in data["spot_advisor"].items():
            types = systems.get(OS, {})
            found[region] = {kind: labels[int(stats["r"])] for kind, stats in types.items()}
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise ValueError(f"not the advisor's format ({type(err).__name__}: {err})") from None
    return found


def age_text(seconds: float) -> str:
    """`12 min`, `5 h`, `3 days`."""
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


_parsed: dict[tuple[str, float], dict[str, dict[str, str]]] = {}
_lock = threading.Lock()


def read_copy(path: Path) -> tuple[dict[str, dict[str, str]], float] | None:
    """The copy here and when it was written; None when there is none or it is unreadable.
    Parsed once per version of the file (the dashboard asks every minute)."""
    try:
        written = path.stat().st_mtime
    except OSError:
        return None
    key = (str(path), written)
    with _lock:
        if key in _parsed:
            return _parsed[key], written
    try:
        buckets = parse(path.read_bytes())
    except (OSError, ValueError):
        return None
    with _lock:
        _parsed.clear()
        _parsed[key] = buckets
    return buckets, written


def fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as answer:
        body: bytes = answer.read()
    return body


def advisor(url: str, path: Path, now: float | None = None) -> Advisor:
    """The buckets, fetched first when the copy here is older than ADVISOR_TTL_S."""
    now = time.time() if now is None else now
    copy = read_copy(path)
    if copy is not None and now - copy[1] < ADVISOR_TTL_S:
        return Advisor(copy[0], f"{SOURCE} fetched {age_text(now - copy[1])} ago (kept a day).")
    try:
        raw = fetch(url)
        buckets = parse(raw)
    except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
        why = reason(err)
        if copy is None:
            return Advisor(
                None,
                f"Without the Spot Instance Advisor's data ({url}: {why}): ranked by prices and "
                "placement scores only.",
            )
        age = age_text(now - copy[1])
        return Advisor(copy[0], f"{SOURCE} from {age} ago (fetching it again failed: {why}).")
    atomic.write_bytes(path, raw, 0o644)
    os.utime(path, (now, now))
    return Advisor(buckets, f"{SOURCE} fetched now (kept a day).")


SOURCE = "Interruptions: the Spot Instance Advisor's data"


def reason(err: Exception) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return str(err) or type(err).__name__
