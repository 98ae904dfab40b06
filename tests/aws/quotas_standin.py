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
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TARGET_PREFIX = "ServiceQuotasV20190624."
NAMES = {
    "L-3819A6DF": "All G and VT Spot Instance Requests",
    "L-DB2E81BA": "Running On-Demand G and VT instances",
    "L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
}
AWS_DEFAULTS = {"L-3819A6DF": 0.0, "L-DB2E81BA": 0.0, "L-1216C47A": 5.0}
"""A new account's values: no G/VT vCPUs at all (AWS's documented default), 5 standard."""


class QuotasStandIn(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), QuotasHandler)
        self.applied: dict[str, float] = {}
        self.defaults: dict[str, float] = dict(AWS_DEFAULTS)
        self.refused: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reset(self, applied: dict[str, float]) -> None:
        self.applied = dict(applied)
        self.defaults = dict(AWS_DEFAULTS)
        self.refused = set()
        self.calls.clear()


class QuotasHandler(BaseHTTPRequestHandler):
    server: QuotasStandIn

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
            self.reply(400, {"__type": "AccessDeniedException", "Message": message})
        elif table is None:
            self.reply(400, {"__type": "UnknownOperationException", "Message": operation})
        elif service != "ec2" or code not in table:
            self.reply(
                400,
                {
                    "__type": "NoSuchResourceException",
                    "Message": f"The request failed because the specified quota {code} "
                    "does not exist.",
                },
            )
        else:
            self.reply(
                200, {"Quota": quota(code, table[code], default=table is not self.server.applied)}
            )

    def reply(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-RequestId", "8f7724cf-496f-496e-8fe3-example")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


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


def serve() -> Iterator[QuotasStandIn]:
    server = QuotasStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
