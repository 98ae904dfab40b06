"""A local instance's instance metadata: the role's credentials, over IMDSv2, as EC2 serves them.

A stop-mode host ends its own run through AWS with the instance role (trainer/watchdog.py);
on EC2 boto3's own credential chain fetches the role's temporary credentials from the instance
metadata service. The local instance's server (local_server.py) serves that path on 127.0.0.1
and tells only its own processes where, through AWS_EC2_METADATA_SERVICE_ENDPOINT, so boto3
finds credentials exactly as on EC2. Shaped from the EC2 User Guide:

- "Use the Instance Metadata Service to access instance metadata" and "Use IMDSv2": a session
  token from `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1 to 21600;
  anything else is 400), sent back on every request as `X-aws-ec2-metadata-token`; our launches
  require IMDSv2 (HttpTokens=required), so a request without a valid token is 401;
- "Retrieve security credentials from instance metadata": `iam/security-credentials/` lists the
  role's name, `iam/security-credentials/<role>` answers JSON with Code, LastUpdated, Type
  (AWS-HMAC), AccessKeyId, SecretAccessKey, Token and Expiration; an instance without a role
  (relaunch mode: no instance profile) has neither path (404).

The role is the instance folder's role.json (written at a stop-mode launch: its name and the
actions its policy allows, as aws_role.host_policy). The credentials are new at each boot
and held in memory only; local_ec2.py checks requests against them.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

ROLE_FILE = "role.json"
HOST_ROLE = {
    "name": "pacerid-ml-host",
    "actions": ["ec2:CancelSpotInstanceRequests", "ec2:TerminateInstances"],
}
"""What a local stop-mode instance's role allows: aws_role.host_policy, by action."""
MAX_TTL_S = 21600
CREDENTIALS_S = 6 * 3600
"""How long issued credentials are valid; EC2 rotates them well before they expire."""
ROOT = "/latest/meta-data/iam/security-credentials/"


@dataclass(frozen=True)
class Issued:
    access_key: str
    secret_key: str
    token: str
    expiration: float


class Metadata:
    """One instance's metadata for one boot: its role, the credentials and session tokens."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.issued = Issued(
            "ASIA" + secrets.token_hex(8).upper(),
            secrets.token_urlsafe(30),
            secrets.token_urlsafe(96),
            time.time() + CREDENTIALS_S,
        )
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def role(self) -> dict[str, Any] | None:
        """The instance profile's role as role.json says now (None: no role)."""
        try:
            raw = json.loads((self.folder / ROLE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return raw if isinstance(raw, dict) else None

    def new_token(self, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl_s
        return token

    def valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._tokens.get(token, 0) > time.monotonic()

    def get(self, path: str) -> tuple[int, str]:
        """Status and body for a GET of `path` with a valid token."""
        role = self.role()
        if role is None or not path.startswith(ROOT):
            return 404, "Not Found"
        if path == ROOT:
            return 200, str(role["name"])
        if path != ROOT + str(role["name"]):
            return 404, "Not Found"
        issued = self.issued
        return 200, json.dumps(
            {
                "Code": "Success",
                "LastUpdated": iso(issued.expiration - CREDENTIALS_S),
                "Type": "AWS-HMAC",
                "AccessKeyId": issued.access_key,
                "SecretAccessKey": issued.secret_key,
                "Token": issued.token,
                "Expiration": iso(issued.expiration),
            },
            indent=2,
        )


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def reply(
    handler: BaseHTTPRequestHandler, status: int, body: str, content_type: str = "text/plain"
) -> None:
    data = body.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
    handler.wfile.flush()


def handler_for(meta: Metadata) -> type[BaseHTTPRequestHandler]:
    class ImdsHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/latest/api/token":
                reply(self, 404, "Not Found")
                return
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL_S:
                reply(self, 400, "Bad Request")
                return
            reply(self, 200, meta.new_token(int(ttl)))

        def do_GET(self) -> None:
            if not meta.valid(self.headers.get("X-aws-ec2-metadata-token")):
                reply(self, 401, "Unauthorized")
                return
            status, body = meta.get(self.path)
            reply(self, status, body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: boto3 asks several times per call; server.log keeps the EC2 calls."""

    return ImdsHandler
