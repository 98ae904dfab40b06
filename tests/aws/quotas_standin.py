"""A loopback Service Quotas: moto implements the service only for VPC quotas, not EC2's vCPUs.

Shaped from the Service Quotas API reference (GetServiceQuota, GetAWSDefaultServiceQuota):
JSON 1.1 over POST, the operation in `X-Amz-Target: ServiceQuotasV20190624.<Operation>`, a
request body `{"ServiceCode", "QuotaCode"}`, an answer `{"Quota": {ServiceCode, ServiceName,
QuotaArn, QuotaCode, QuotaName, Value, Unit, Adjustable, GlobalQuota}}`, and errors as HTTP 400
with `{"__type": "NoSuchResourceException", "Message": …}` (GetServiceQuota answers that for a
quota that has only its default value). Tests set `applied` (quota code → vCPUs) and `defaults`,
and `refused`: operations answered `AccessDeniedException` ("You do not have sufficient access to
perform this action.", the API reference's error for a caller without the permission).
"""

from __future__ import annotations

import json
from typing import Any

from tests.standins import LoopbackServer, StandInHandler

TARGET_PREFIX = "ServiceQuotasV20190624."
NAMES = {
    "L-3819A6DF": "All G and VT Spot Instance Requests",
    "L-DB2E81BA": "Running On-Demand G and VT instances",
    "L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
}
AWS_DEFAULTS = {"L-3819A6DF": 0.0, "L-DB2E81BA": 0.0, "L-1216C47A": 5.0}
"""A new account's values: no G/VT vCPUs at all (AWS's documented default), 5 standard."""


class QuotasStandIn(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(QuotasHandler)
        self.applied: dict[str, float] = {}
        self.defaults: dict[str, float] = dict(AWS_DEFAULTS)
        self.refused: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def reset(self, applied: dict[str, float]) -> None:
        self.applied = dict(applied)
        self.defaults = dict(AWS_DEFAULTS)
        self.refused = set()
        self.calls.clear()


class QuotasHandler(StandInHandler):
    server: QuotasStandIn
    headers_always = {"x-amzn-RequestId": "8f7724cf-496f-496e-8fe3-example"}

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
        operation = (self.headers.get("X-Amz-Target") or "").removeprefix(TARGET_PREFIX)
        code, service = body.get("QuotaCode", ""), body.get("ServiceCode", "")
        self.server.calls.append((operation, code))
        table = {
            "GetServiceQuota": self.server.applied,
            "GetAWSDefaultServiceQuota": self.server.defaults,
        }.get(operation)
        if operation in self.server.refused:
            message = "You do not have sufficient access to perform this action."
            self.answer(400, {"__type": "AccessDeniedException", "Message": message})
        elif table is None:
            self.answer(400, {"__type": "UnknownOperationException", "Message": operation})
        elif service != "ec2" or code not in table:
            self.answer(
                400,
                {
                    "__type": "NoSuchResourceException",
                    "Message": f"The request failed because the specified quota {code} "
                    "does not exist.",
                },
            )
        else:
            self.answer(
                200, {"Quota": quota(code, table[code], default=table is not self.server.applied)}
            )

    def answer(self, status: int, data: dict[str, Any]) -> None:
        self.reply(status, json.dumps(data).encode(), "application/x-amz-json-1.1")


def quota(code: str, value: float, default: bool) -> dict[str, Any]:
    account = "" if default else "123456789012"
    return {
        "ServiceCode": "ec2",
        "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
        "QuotaArn": f"arn:aws:servicequotas:us-east-1:{account}:ec2/{code}",
        "QuotaCode": code,
        "QuotaName": NAMES.get(code, code),
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }
