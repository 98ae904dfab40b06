"""A local instance's EC2 endpoint: the calls a stop-mode host makes to end its own run.

On EC2 the host's watchdog (trainer/watchdog.py) calls CancelSpotInstanceRequests, then
TerminateInstances, with boto3 and the instance role's credentials from the instance metadata
(local_imds.py). The local instance's server (local_server.py) serves this endpoint on 127.0.0.1
and tells only its own processes where, through AWS_ENDPOINT_URL_EC2, so the host's boto3
serializes, signs and parses exactly as on EC2, and its calls change the local provider's state.
Shaped from the EC2 API reference:

- "Query requests for Amazon EC2": POST / with a form-encoded body, `Action=…&Version=…`, list
  members as `Name.N`; "Signing AWS API requests" (IAM user guide): Signature Version 4 with the
  role's temporary credentials and their `X-Amz-Security-Token`, checked here against what the
  instance metadata issued this boot (a wrong one: `AuthFailure`);
- CancelSpotInstanceRequests (`SpotInstanceRequestId.N`; answers `spotInstanceRequestSet` items
  in state `cancelled`; the instance keeps running) and TerminateInstances (`InstanceId.N`;
  answers `instancesSet` items, `currentState` `shutting-down` (32) and the state before; the
  instance ends after the answer, and one of a persistent request still open is replaced);
- "Error codes for the Amazon EC2 API": errors as `<Response><Errors><Error><Code>…</Code>
  <Message>…</Message></Error></Errors><RequestID>…</RequestID></Response>`, 4xx for the
  client's, 5xx for the server's; `UnauthorizedOperation` when the caller's policy does not allow
  the action (the role's actions are role.json, which a test may narrow like an administrator);
- the `DryRun` parameter: "Checks whether you have the required permissions for the action,
  without actually making the request, and provides an error response. If you have the required
  permissions, the error response is DryRunOperation. Otherwise, it is UnauthorizedOperation."
  (HTTP 412, "Request would have succeeded, but DryRun flag is set.").

Termination runs in a process of its own session without the instance's marker: terminating
kills every process that carries it, this server included (`python -m … ROOT INSTANCE_ID`).
"""

from __future__ import annotations

import hmac
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from pacerid_tui.core.cloud import local_imds
from pacerid_tui.core.cloud.local_imds import Metadata, reply

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
MARKERS = ("PACERID_LOCAL_INSTANCE", "PACERID_SERVER_PID", "PACERID_BOOT_DIR", "PACERID_BOOT_ID")
STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}
"""EC2's instance state codes (API reference, InstanceState)."""
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/ec2/aws4_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class Ec2Error(Exception):
    """An answer in EC2's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def members(params: dict[str, str], name: str) -> list[str]:
    """`Name.1`, `Name.2`, … in order; MissingParameter when there is none."""
    found = sorted(
        (int(k.split(".")[1]), v)
        for k, v in params.items()
        if re.fullmatch(rf"{re.escape(name)}\.\d+", k)
    )
    if not found:
        raise Ec2Error(400, "MissingParameter", f"The request must contain the parameter {name}")
    return [value for _, value in found]


def cancel_spot_requests(root: Path, params: dict[str, str]) -> str:
    from pacerid_tui.core.cloud.local import LocalProvider  # local → local_server → here

    provider, ids, items = LocalProvider(root), members(params, "SpotInstanceRequestId"), []
    for request_id in ids:  # all known, or nothing changes
        if provider.spot_request_state(request_id) is None:
            raise Ec2Error(
                400,
                "InvalidSpotInstanceRequestID.NotFound",
                f"The spot instance request ID '{request_id}' does not exist",
            )
    for request_id in ids:
        provider.cancel_request(request_id)
        items.append(
            f"<item><spotInstanceRequestId>{escape(request_id)}</spotInstanceRequestId>"
            "<state>cancelled</state></item>"
        )
    return f"<spotInstanceRequestSet>{''.join(items)}</spotInstanceRequestSet>"


def terminate_instances(root: Path, params: dict[str, str]) -> str:
    from pacerid_tui.core.cloud.local import LocalProvider  # local → local_server → here

    ids = members(params, "InstanceId")
    found = LocalProvider(root).describe(ids)
    items = []
    for instance_id in ids:
        if instance_id not in found:
            raise Ec2Error(
                400, "InvalidInstanceID.NotFound", f"The instance ID '{instance_id}' does not exist"
            )
        before = found[instance_id].state.value
        after = "terminated" if before == "terminated" else "shutting-down"
        items.append(
            f"<item><instanceId>{escape(instance_id)}</instanceId>"
            f"<currentState><code>{STATE_CODES[after]}</code><name>{after}</name></currentState>"
            f"<previousState><code>{STATE_CODES.get(before, 0)}</code><name>{before}</name>"
            "</previousState></item>"
        )
    return f"<instancesSet>{''.join(items)}</instancesSet>"


ACTIONS: dict[str, Callable[[Path, dict[str, str]], str]] = {
    "CancelSpotInstanceRequests": cancel_spot_requests,
    "TerminateInstances": terminate_instances,
}


def signed_by_the_role(meta: Metadata, handler: BaseHTTPRequestHandler, body: bytes) -> bool:
    """Whether the request carries a valid Signature Version 4 by this boot's credentials
    (botocore's own signer recomputes it: imported here, by the instance's server only)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    found = AUTHORIZATION.fullmatch(handler.headers.get("Authorization", ""))
    issued = meta.issued
    if (
        found is None
        or meta.role() is None
        or not hmac.compare_digest(found["key"], issued.access_key)
        or handler.headers.get("X-Amz-Security-Token") != issued.token
    ):
        return False
    headers = {name: handler.headers.get(name, "") for name in found["headers"].split(";")}
    request = AWSRequest("POST", f"http://{headers.get('host', '')}{handler.path}", headers, body)
    request.context["timestamp"] = handler.headers.get("X-Amz-Date", "")
    signer = SigV4Auth(
        Credentials(issued.access_key, issued.secret_key, issued.token), "ec2", found["region"]
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, found["signature"])


def answer(
    meta: Metadata, handler: BaseHTTPRequestHandler, body: bytes
) -> tuple[int, str, list[str]]:
    """The status and XML for one Query API request, and the instances to end once answered."""
    params = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    action = params.get("Action", "")
    request_id = str(uuid.uuid4())
    try:
        if not signed_by_the_role(meta, handler, body):
            raise Ec2Error(
                401, "AuthFailure", "AWS was not able to validate the provided access credentials"
            )
        if action not in ACTIONS:
            raise Ec2Error(
                400, "InvalidAction", f"The action {action} is not valid for this web service."
            )
        role = meta.role() or {}
        if f"ec2:{action}" not in role.get("actions", []):
            raise Ec2Error(
                403, "UnauthorizedOperation", "You are not authorized to perform this operation."
            )
        if params.get("DryRun", "").lower() == "true":
            raise Ec2Error(
                412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."
            )
        result = ACTIONS[action](meta.folder.parent, params)
    except Ec2Error as err:
        print(f"ec2: {action} → {err.code}", flush=True)
        return (
            err.status,
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{err.code}</Code><Message>{escape(err.message)}"
            f"</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
            [],
        )
    print(f"ec2: {action} {' '.join(v for k, v in sorted(params.items()) if '.' in k)}", flush=True)
    ending = members(params, "InstanceId") if action == "TerminateInstances" else []
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NAMESPACE}">'
        f"<requestId>{request_id}</requestId>{result}</{action}Response>"
    )
    return 200, xml, ending


def terminate(root: Path, ids: list[str]) -> None:
    """TerminateInstances' work, after the answer: in a process of its own session, without
    the instance's marker (terminating kills every process that carries it, this one too)."""
    env = {k: v for k, v in os.environ.items() if k not in MARKERS}
    subprocess.Popen(
        [sys.executable, "-m", "pacerid_tui.core.cloud.local_ec2", str(root), *ids],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def handler_for(meta: Metadata) -> type[BaseHTTPRequestHandler]:
    class Ec2Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, xml, ending = answer(meta, self, body)
            reply(self, status, xml, "text/xml;charset=UTF-8")
            if ending:
                terminate(meta.folder.parent, ending)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: `answer` writes one line per call to server.log."""

    return Ec2Handler


def serve(folder: Path) -> dict[str, str]:
    """Start the instance's metadata service and EC2 endpoint on 127.0.0.1, each in a daemon
    thread of this process (they end with its server, as the instance does); returns the
    environment that points boto3 at them."""
    meta = Metadata(folder)
    urls = []
    for handler in (local_imds.handler_for(meta), handler_for(meta)):
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        urls.append(f"http://127.0.0.1:{server.server_address[1]}")
    return {"AWS_EC2_METADATA_SERVICE_ENDPOINT": urls[0], "AWS_ENDPOINT_URL_EC2": urls[1]}


def main(argv: list[str]) -> None:
    from pacerid_tui.core.cloud.local import LocalProvider  # local → local_server → here

    provider = LocalProvider(Path(argv[0]))
    for instance_id in argv[1:]:
        provider.terminate_instance(instance_id)


if __name__ == "__main__":
    main(sys.argv[1:])
