"""EC2's vCPU quotas: which one an instance type launches under, its value, what is in use.

AWS limits running instances by vCPUs per family group and market ("All G and VT Spot Instance
Requests", "Running On-Demand G and VT instances"…), and a new account has 0 vCPUs of G/VT
spot. A launch under an exhausted quota fails with MaxSpotInstanceCountExceeded or
VcpuLimitExceeded in every zone, so the doctor reads the quota through Service Quotas before
anything is spent, and a launch refusal names the same quota and the same fix.

Only quota codes found in AWS's documentation are listed: G/VT spot and on-demand, and standard
on-demand (the Service Quotas CLI reference's example). For other families the check says it
cannot tell rather than guess a code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.core.cloud.aws_session import aws_errors, error_code, user_error

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

SPOT = "spot"
ON_DEMAND = "on-demand"
SERVICE_CODE = "ec2"


@dataclass(frozen=True)
class Quota:
    code: str
    name: str
    market: str
    families: str
    """A regular expression of the instance families (the part before the dot) it covers."""

    def covers(self, instance_type: str, market: str) -> bool:
        return (
            market == self.market and re.fullmatch(self.families, family(instance_type)) is not None
        )


QUOTAS = (
    Quota("L-3819A6DF", "All G and VT Spot Instance Requests", SPOT, r"(g|vt)\d.*"),
    Quota("L-DB2E81BA", "Running On-Demand G and VT instances", ON_DEMAND, r"(g|vt)\d.*"),
    Quota(
        "L-1216C47A",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
        ON_DEMAND,
        r"[acdhimrtz]\d.*",
    ),
)


def family(instance_type: str) -> str:
    """g4dn.xlarge → g4dn."""
    return instance_type.split(".", 1)[0].lower()


def quota_for(instance_type: str, market: str) -> Quota | None:
    """The vCPU quota this type launches under in this market; None when not known here."""
    return next((quota for quota in QUOTAS if quota.covers(instance_type, market)), None)


@dataclass(frozen=True)
class QuotaReading:
    value: float | None
    """vCPUs; None when Service Quotas knows no value at all."""
    default_because: str | None = None
    """Set when `value` is AWS's default, not the account's: why GetServiceQuota gave none
    (its error code)."""


def read_quota(quotas: Any, quota: Quota) -> QuotaReading:
    """The account's applied value (GetServiceQuota); where that fails, AWS's default
    (GetAWSDefaultServiceQuota), marked as such: it is not the account's, which may be lower
    (a new account's) or raised (Service Quotas API reference: GetServiceQuota answers
    NoSuchResourceException for a quota with no applied value)."""
    try:
        answer = quotas.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=quota.code)
        return QuotaReading(quota_value(answer))
    except ClientError as err:
        failed = err
    except BotoCoreError as err:
        raise user_error(err, f"read the quota {quota.code}") from err
    try:
        answer = quotas.get_aws_default_service_quota(
            ServiceCode=SERVICE_CODE, QuotaCode=quota.code
        )
    except ClientError as err:
        if error_code(err) == "NoSuchResourceException":
            return QuotaReading(None, error_code(failed))
        raise user_error(failed, f"read the quota {quota.code}") from failed
    except BotoCoreError as err:
        raise user_error(err, f"read the quota {quota.code}") from err
    return QuotaReading(quota_value(answer), error_code(failed))


def quota_value(answer: Any) -> float | None:
    value = answer.get("Quota", {}).get("Value")
    return None if value is None else float(value)


def vcpus_of(ec2: EC2Client, instance_types: Iterable[str]) -> dict[str, int]:
    """Default vCPUs by instance type; types EC2 does not offer here are absent."""
    wanted = sorted(set(instance_types))
    if not wanted:
        return {}
    found: dict[str, int] = {}
    with aws_errors("describe instance types"):
        try:
            answer = ec2.describe_instance_types(InstanceTypes=wanted)  # type: ignore[arg-type]
        except ClientError as err:
            if error_code(err) != "InvalidInstanceType":
                raise
            return found
    for entry in answer.get("InstanceTypes", []):
        found[str(entry["InstanceType"])] = int(entry.get("VCpuInfo", {}).get("DefaultVCpus", 0))
    return found


def vcpus_in_use(ec2: EC2Client, quota: Quota) -> int:
    """vCPUs counted against the quota now: pending and running instances of its families and
    market, plus open spot requests (they hold quota until fulfilled or cancelled)."""
    kinds: list[str] = []
    with aws_errors("describe instances"):
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    market = SPOT if raw.get("InstanceLifecycle") == "spot" else ON_DEMAND
                    if quota.covers(raw["InstanceType"], market):
                        kinds.append(raw["InstanceType"])
        if quota.market == SPOT:
            open_requests = ec2.describe_spot_instance_requests(
                Filters=[{"Name": "state", "Values": ["open"]}]
            ).get("SpotInstanceRequests", [])
            for request in open_requests:
                kind = request.get("LaunchSpecification", {}).get("InstanceType")
                if kind and quota.covers(kind, SPOT):
                    kinds.append(kind)
    sizes = vcpus_of(ec2, kinds)
    return sum(sizes.get(kind, 0) for kind in kinds)


def increase_fix(quota: Quota, desired: int, region: str) -> str:
    """The one sentence saying how to ask AWS for more."""
    return (
        f"Request {desired} vCPUs of '{quota.name}' in the Service Quotas console (AWS services "
        f"→ Amazon EC2 → {quota.name} → Request increase, region {region}), or run "
        f"`aws service-quotas request-service-quota-increase --service-code {SERVICE_CODE} "
        f"--quota-code {quota.code} --desired-value {desired} --region {region}`; "
        "approval takes minutes to days."
    )


def refusal_message(instance_type: str, market: str, region: str, vcpus: int | None) -> str:
    """What a launch refused for quota (MaxSpotInstanceCountExceeded, VcpuLimitExceeded) says."""
    quota = quota_for(instance_type, market)
    if quota is None:
        return (
            f"AWS refused {market} {instance_type} for lack of vCPU quota in {region}; raise the "
            "quota of its family in the Service Quotas console (Amazon EC2), then launch again."
        )
    desired = max(vcpus or 0, 1)
    return (
        f"AWS refused {market} {instance_type}: the quota '{quota.name}' ({quota.code}) has no "
        f"room for {desired} more vCPUs in {region}. {increase_fix(quota, desired, region)}"
    )
