"""Loopback stand-ins for what the ranking reads (README: "Choosing where") that moto lacks.

In front of moto (aws_standin.py's proxy), for any region (moto tells regions apart by the
request's signature, which the proxy passes on):

- EC2 `GetSpotPlacementScores`, which moto does not implement. Shaped from the EC2 API
  reference page GetSpotPlacementScores: a Query API POST with `InstanceType.N` (or
  `InstanceRequirementsWithMetadata`), `TargetCapacity` (required), `TargetCapacityUnitType`,
  `SingleAvailabilityZone`, `RegionName.N`, `MaxResults` (10–1000) and `NextToken`; the answer
  `GetSpotPlacementScoresResponse` holds `spotPlacementScoreSet` items with `region`,
  `availabilityZoneId` (zone scores only) and `score`. As the EC2 User Guide's "Spot placement
  score" says: only the top 10 regions or zones come back, and with one or two instance types
  the score is always low (here 1). `refuse_scores` answers UnauthorizedOperation (HTTP 403),
  as EC2 does for a caller without `ec2:GetSpotPlacementScores`.
- `DescribeSpotPriceHistory`: moto answers every zone with one constant price (0.00001); moto
  still answers (so the zones and types offered are moto's, region by region) and each item's
  `spotPrice` becomes the price the test set for its zone.
- `RunInstances` in a zone of `full`: EC2's `InsufficientInstanceCapacity` (HTTP 500; EC2 API
  reference, Error codes), as a spot market with no room answers.

And, on a port of its own, the Spot Instance Advisor's public `spot-advisor-data.json` in its
published shape: `global_rate`, `instance_types` (type → emr, cores, ram_gb), `ranges` (index,
label, dots, max: the labels "<5%", "5-10%", "10-15%", "15-20%", ">20%"), and `spot_advisor`
(region → "Linux"/"Windows" → type → {"s": savings %, "r": range index}). `down` answers
503 as S3 does when it cannot serve.
"""

from __future__ import annotations

import contextlib
import json
import re
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aws_seed import ERROR_XML
from aws_standin import Answer, AwsStandIn, Moto

from tests.standins import serving

XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
XML = {"Content-Type": "text/xml;charset=UTF-8"}
TOP = 10
"""GetSpotPlacementScores answers the top 10 regions or zones only."""


def error(status: int, code: str, message: str) -> Answer:
    return status, XML, ERROR_XML.format(code=code, message=message).encode()


def numbered(form: dict[str, list[str]], name: str) -> list[str]:
    """`Name.1`, `Name.2`, … of a Query API request, in order."""
    found = [
        (int(key.rsplit(".", 1)[1]), value[0])
        for key, value in form.items()
        if re.fullmatch(rf"{name}\.\d+", key)
    ]
    return [value for _, value in sorted(found)]


class PlacementStandIn(AwsStandIn):
    def __init__(self, moto_url: str) -> None:
        super().__init__(moto_url)
        self.zone_scores: dict[tuple[str, str], int] = {}
        """(region, zone id) → score, for SingleAvailabilityZone=true."""
        self.prices: dict[str, float] = {}
        """Zone name → the spot price DescribeSpotPriceHistory says for every type there."""
        self.full: set[str] = set()
        self.refuse_scores = False
        self.score_calls: list[dict[str, Any]] = []
        self.launched_in: list[str] = []
        """The zone of every RunInstances moto answered."""

    def ec2(self, form: dict[str, list[str]], body: bytes, moto: Moto) -> Answer | None:
        action = (form.get("Action") or [""])[0]
        if action == "GetSpotPlacementScores":
            return self.scores(form)
        if action == "DescribeSpotPriceHistory":
            return self.priced(moto(body))
        if action == "RunInstances":
            zone = (form.get("Placement.AvailabilityZone") or [""])[0]
            if zone in self.full:
                return error(
                    500,
                    "InsufficientInstanceCapacity",
                    "We currently do not have sufficient capacity in the Availability Zone you "
                    "requested. Our system will be working on provisioning additional capacity.",
                )
            answer = moto(body)
            if answer[0] == 200:
                self.launched_in.append(zone)
            return answer
        return None

    def scores(self, form: dict[str, list[str]]) -> Answer:
        if self.refuse_scores:
            return error(
                403, "UnauthorizedOperation", "You are not authorized to perform this operation."
            )
        types = numbered(form, "InstanceType")
        regions = numbered(form, "RegionName")
        capacity = (form.get("TargetCapacity") or [""])[0]
        if not capacity:
            return error(
                400, "MissingParameter", "The request must contain the parameter TargetCapacity"
            )
        if not types and not any(k.startswith("InstanceRequirementsWithMetadata") for k in form):
            return error(
                400,
                "InvalidParameterCombination",
                "Specify InstanceTypes or InstanceRequirementsWithMetadata.",
            )
        size = int((form.get("MaxResults") or ["1000"])[0])
        if not 10 <= size <= 1000:
            return error(400, "InvalidParameterValue", "MaxResults must be from 10 to 1000.")
        single = (form.get("SingleAvailabilityZone") or ["false"])[0] == "true"
        self.score_calls.append(
            {
                "types": types,
                "regions": regions,
                "capacity": int(capacity),
                "single_az": single,
                "unit": (form.get("TargetCapacityUnitType") or [""])[0],
            }
        )
        scored = sorted(
            (
                (score, region, zone_id)
                for (region, zone_id), score in self.zone_scores.items()
                if region in regions
            ),
            reverse=True,
        )[:TOP]
        low = len(set(types)) < 3  # "always low" with one or two types
        items = "".join(
            f"<item><region>{region}</region>"
            + (f"<availabilityZoneId>{zone_id}</availabilityZoneId>" if single else "")
            + f"<score>{1 if low else score}</score></item>"
            for score, region, zone_id in scored
        )
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><GetSpotPlacementScoresResponse '
            f'xmlns="{XMLNS}"><requestId>2b3c4d5e-example</requestId>'
            f"<spotPlacementScoreSet>{items}</spotPlacementScoreSet>"
            "</GetSpotPlacementScoresResponse>"
        )
        return 200, XML, body.encode()

    def priced(self, answer: Answer) -> Answer:
        if answer[0] != 200:
            return answer
        root = ET.fromstring(answer[2])
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for item in root.iter(f"{ns}item"):
            zone = item.findtext(f"{ns}availabilityZone")
            price = item.find(f"{ns}spotPrice")
            if zone in self.prices and price is not None:
                price.text = f"{self.prices[zone]:.6f}"
        return 200, XML, ET.tostring(root, encoding="utf-8", xml_declaration=True)


RANGES = [
    {"index": 0, "label": "<5%", "dots": 0, "max": 5},
    {"index": 1, "label": "5-10%", "dots": 1, "max": 11},
    {"index": 2, "label": "10-15%", "dots": 2, "max": 16},
    {"index": 3, "label": "15-20%", "dots": 3, "max": 22},
    {"index": 4, "label": ">20%", "dots": 4, "max": 100},
]


def advisor_json(buckets: dict[str, dict[str, int]]) -> bytes:
    """The published file for region → type → range index (savings made up, as the ranking
    does not read them)."""
    return json.dumps(
        {
            "global_rate": "<10%",
            "instance_types": {
                "g4dn.xlarge": {"emr": True, "cores": 4, "ram_gb": 16.0},
                "g4dn.2xlarge": {"emr": True, "cores": 8, "ram_gb": 32.0},
                "g5.xlarge": {"emr": True, "cores": 4, "ram_gb": 16.0},
            },
            "ranges": RANGES,
            "spot_advisor": {
                region: {
                    "Linux": {kind: {"s": 70, "r": index} for kind, index in types.items()},
                    "Windows": {kind: {"s": 55, "r": 4} for kind in types},
                }
                for region, types in buckets.items()
            },
        }
    ).encode()


S3_SLOW_DOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
S3_NO_SUCH_KEY = (
    b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
)


class AdvisorStandIn(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), AdvisorHandler)
        self.buckets: dict[str, dict[str, int]] = {}
        """Region → instance type → range index."""
        self.down = False
        self.gets = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/spot-advisor-data.json"


class AdvisorHandler(BaseHTTPRequestHandler):
    server: AdvisorStandIn

    def do_GET(self) -> None:
        self.server.gets += 1
        if self.server.down:
            body, status, kind = S3_SLOW_DOWN, 503, "application/xml"
        elif self.path != "/spot-advisor-data.json":
            body, status, kind = S3_NO_SUCH_KEY, 404, "application/xml"
        else:
            body, status, kind = advisor_json(self.server.buckets), 200, "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


def advisor_serving() -> contextlib.AbstractContextManager[AdvisorStandIn]:
    return serving(AdvisorStandIn())


PRICES = {
    "us-east-1a": 0.1512,
    "us-east-1b": 0.1698,
    "us-east-1c": 0.2104,
    "us-east-1d": 0.2250,
    "us-east-1f": 0.1880,
    "us-east-2a": 0.1540,
    "us-east-2b": 0.1580,
    "us-east-2c": 0.1920,
}
"""g4dn.xlarge spot prices of the kind AWS shows: us-east-1a is the cheapest anywhere, and
us-east-2b only the second cheapest of us-east-2."""

ZONE_SCORES = {
    ("us-east-1", "use1-az6"): 2,  # us-east-1a in moto's account
    ("us-east-1", "use1-az1"): 4,  # us-east-1b
    ("us-east-1", "use1-az2"): 5,  # us-east-1c
    ("us-east-2", "use2-az2"): 9,  # us-east-2b
    ("us-east-2", "use2-az3"): 7,  # us-east-2c; us-east-2a is not in the answer
}


def two_regions(standin: PlacementStandIn, advisor: AdvisorStandIn) -> None:
    """The issue's account: us-east-1's cheapest zone scores 2, us-east-2's second-cheapest
    scores 9, both regions "<5%" interrupted for g4dn.xlarge."""
    standin.prices = dict(PRICES)
    standin.zone_scores = dict(ZONE_SCORES)
    advisor.buckets = {
        "us-east-1": {"g4dn.xlarge": 0, "g5.xlarge": 1},
        "us-east-2": {"g4dn.xlarge": 0, "g5.xlarge": 0},
    }
