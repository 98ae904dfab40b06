"""What the ranking needs to know about each candidate zone, read from AWS (the Placements
capability of base.py; the rule itself is core/steps/placement_rank.py).

For `instance.regions` (a list, or `auto`: the regions DescribeRegions lists as enabled,
opt-in-not-required or opted-in, whose DescribeInstanceTypeOfferings lists the run's type):
each region's zones (DescribeAvailabilityZones: the names prices come by and the ids scores
come by), the spot price in force now in each (aws_prices), one GetSpotPlacementScores call
for every region at once (aws_scores) and the Spot Instance Advisor's bucket (aws_advisor).
Regions are read side by side, each region's clients built once per process. A region that
cannot be read is left out with a sentence; when none can, the first error is the user's.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from pacerid_tui import paths
from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_advisor import advisor
from pacerid_tui.core.cloud.aws_prices import current_prices
from pacerid_tui.core.cloud.aws_scores import zone_scores
from pacerid_tui.core.cloud.aws_session import AwsClients, aws_errors
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.placement_facts import PlacementFacts, ZoneFacts

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

ENABLED = ["opt-in-not-required", "opted-in"]
"""DescribeRegions' OptInStatus of a region the account may use."""

PARALLEL_REGIONS = 8
"""Regions read at once: `auto` lists about 17; each costs two or three short calls."""


class RegionClients:
    """The clients of every region asked (built as the provider's are, aws_session.py), and what
    does not change while we run: each region's zones, and which regions offer a type."""

    def __init__(self, profile: str | None, endpoint_url: str | None) -> None:
        self.profile = profile
        self.endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._clients: dict[str, AwsClients] = {}
        self._zones: dict[str, dict[str, str]] = {}
        self._offered: dict[str, list[str]] = {}

    def ec2(self, region: str) -> EC2Client:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = AwsClients(region, self.profile, self.endpoint_url)
        return self._clients[region].ec2

    def zones(self, region: str) -> dict[str, str]:
        """Zone name → zone id, availability zones only (no local or wavelength zones)."""
        if region not in self._zones:
            with aws_errors(f"list the zones of {region}"):
                answer = self.ec2(region).describe_availability_zones(
                    Filters=[{"Name": "state", "Values": ["available"]}]
                )
            self._zones[region] = {
                zone["ZoneName"]: zone.get("ZoneId", "")
                for zone in answer.get("AvailabilityZones", [])
                if zone.get("ZoneType", "availability-zone") == "availability-zone"
            }
        return self._zones[region]

    def offering(self, home: str, instance_type: str) -> list[str]:
        """`auto`: the enabled regions that offer the type, asked once per process."""
        if instance_type not in self._offered:
            with aws_errors("list the enabled regions"):
                answer = self.ec2(home).describe_regions(
                    Filters=[{"Name": "opt-in-status", "Values": ENABLED}]
                )
            enabled = sorted(
                region["RegionName"]
                for region in answer.get("Regions", [])
                if region.get("OptInStatus", ENABLED[0]) in ENABLED
            )
            with ThreadPoolExecutor(PARALLEL_REGIONS) as pool:
                offers = list(pool.map(lambda r: self._offers(r, instance_type), enabled))
            offered = [region for region, yes in zip(enabled, offers, strict=True) if yes]
            self._offered[instance_type] = offered
        return self._offered[instance_type]

    def _offers(self, region: str, instance_type: str) -> bool:
        try:
            with aws_errors(f"list the instance types of {region}"):
                answer = self.ec2(region).describe_instance_type_offerings(
                    LocationType="region",
                    Filters=[{"Name": "instance-type", "Values": [instance_type]}],
                )
        except PaceridError:  # a region we may not ask is a region we cannot use
            return False
        return bool(answer.get("InstanceTypeOfferings"))


def region_clients(profile: str | None, endpoint_url: str | None) -> RegionClients:
    """One per profile and endpoint for the whole process. Without an endpoint of ours, boto3
    takes one from AWS_ENDPOINT_URL(_EC2) when it builds a client, so those are part of the key."""
    overrides = (os.environ.get("AWS_ENDPOINT_URL_EC2"), os.environ.get("AWS_ENDPOINT_URL"))
    return _region_clients(profile, endpoint_url, overrides)


@functools.cache
def _region_clients(
    profile: str | None, endpoint_url: str | None, _overrides: tuple[str | None, ...]
) -> RegionClients:
    return RegionClients(profile, endpoint_url)


def candidate_regions(config: InstanceConfig, clients: RegionClients) -> list[str]:
    if config.regions == "auto":
        return clients.offering(config.region, config.instance_type)
    return list(config.regions or [config.region])


def region_zones(
    config: InstanceConfig, clients: RegionClients, region: str, now: float
) -> list[ZoneFacts]:
    """One region's zones (those of instance.zones there, else all) with their price now."""
    names = clients.zones(region)
    wanted = [zone for zone in config.zones if zone in names] or sorted(names)
    kind = config.instance_type
    prices = current_prices(clients.ec2(region), [kind], now).get(kind, {})
    return [
        ZoneFacts(region, zone, kind, prices.get(zone), zone_id=names[zone] or None)
        for zone in wanted
    ]


def placement_facts(
    config: InstanceConfig, endpoint_url: str | None, now: float | None = None
) -> PlacementFacts:
    """Every candidate zone's price, score and bucket, and how each was come by. Blocking."""
    now = time.time() if now is None else now
    clients = region_clients(config.profile, endpoint_url)
    regions = candidate_regions(config, clients)
    read: dict[str, list[ZoneFacts] | PaceridError] = {}

    def one(region: str) -> None:
        try:
            read[region] = region_zones(config, clients, region, now)
        except PaceridError as err:
            read[region] = err

    with ThreadPoolExecutor(min(PARALLEL_REGIONS, max(len(regions), 1))) as pool:
        list(pool.map(one, regions))
    errors = [(region, found) for region, found in read.items() if isinstance(found, Exception)]
    if regions and len(errors) == len(regions):
        raise errors[0][1]
    notes = [f"{region} left out: {err}" for region, err in errors]
    usable = [region for region in regions if not isinstance(read[region], Exception)]
    types = [config.instance_type, *config.fallback_instance_types]
    scores, said = zone_scores(
        clients.ec2(config.region), types, usable, paths.placement_scores_file(), now
    )
    found = advisor(config.advisor_url, paths.spot_advisor_file(), now)
    zones = [
        replace(
            zone,
            score=scores.get(zone.zone_id or ""),
            interrupted=found.bucket(zone.region, zone.instance_type),
        )
        for region in usable
        for zone in cast("list[ZoneFacts]", read[region])
    ]
    return PlacementFacts(tuple(zones), found.buckets is not None, (said, found.note, *notes))
