"""The prices beyond the instance itself, by region: one table, with where it comes from.

Source: AWS's public pricing pages, as published in 2024-2025 (not fetched at run time):
- EBS gp3 storage, per GB-month (https://aws.amazon.com/ebs/pricing/), billed per second on a
  30-day month (the page's own worked example divides by 86,400 s x 30 days);
- public IPv4 addresses, $0.005 per hour each while in use, since 2024-02-01
  (https://aws.amazon.com/vpc/pricing/, "Public IPv4 address");
- data transfer out to the internet, the first paid tier ($0.09/GB in most regions) after the
  account's free 100 GB a month (https://aws.amazon.com/ec2/pricing/on-demand/, "Data
  Transfer"). Account-wide, so for one run it is an upper bound.
Regions not listed use us-east-1's figures. The local provider costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2025-01"


@dataclass(frozen=True)
class RegionPrices:
    gp3_gb_month: float
    ipv4_hour: float = 0.005
    egress_gb: float = 0.09


FREE = RegionPrices(gp3_gb_month=0.0, ipv4_hour=0.0, egress_gb=0.0)

AWS: dict[str, RegionPrices] = {
    "us-east-1": RegionPrices(gp3_gb_month=0.08),
    "us-east-2": RegionPrices(gp3_gb_month=0.08),
    "us-west-2": RegionPrices(gp3_gb_month=0.08),
    "us-west-1": RegionPrices(gp3_gb_month=0.096),
    "eu-west-1": RegionPrices(gp3_gb_month=0.088),
    "eu-central-1": RegionPrices(gp3_gb_month=0.0952),
    "ap-northeast-1": RegionPrices(gp3_gb_month=0.096, egress_gb=0.114),
}


def prices_for(provider: str, region: str) -> RegionPrices:
    if provider != "aws":
        return FREE
    return AWS.get(region, AWS["us-east-1"])
