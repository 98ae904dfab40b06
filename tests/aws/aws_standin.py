"""A loopback stand-in for the two AWS answers moto cannot give; every other call goes to moto.

- EC2 `GetConsoleOutput` (EC2 API reference, GetConsoleOutput: Query API, a form-encoded POST;
  the answer is `GetConsoleOutputResponse` XML with `instanceId`, `timestamp` and a
  base64 `output`). AWS documents that without `Latest=true` the output is what was posted
  shortly after the last state transition; cloud-init prints the `BEGIN SSH HOST KEY
  FINGERPRINTS` block later. Here the block is in the answer only when `Latest=true` is asked,
  and only from that instance's third such call. moto ignores `Latest` and always answers a
  fixed kernel log. The instance id is checked by moto first, so unknown ids get EC2's error.
- SSM `GetParametersByPath` (AWS Systems Manager API reference: JSON 1.1 protocol, `POST /`
  with `X-Amz-Target: AmazonSSM.GetParametersByPath`; request `Path`, `Recursive`,
  `MaxResults` (1-10, default 10), `NextToken`; answer `Parameters` and `NextToken`; errors
  are HTTP 400 with `{"__type": …, "message": …}`). moto has no DLAMI parameters and refuses
  writes under /aws, so the public ones are served from `parameters`; `refuse` answers
  AccessDeniedException as IAM does for a user without `ssm:GetParametersByPath`.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.standins import LoopbackServer, StandInHandler, serving

EARLY_CONSOLE = """\
[    0.000000] Linux version 6.8.0-1021-aws (buildd@lcy02-amd64-021) #23-Ubuntu SMP
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.8.0-1021-aws root=PARTUUID=7a1d ro
[    3.120331] cloud-init[512]: Cloud-init v. 24.4 running 'init-local'
"""

FINGERPRINTS = """\
[   41.207114] cloud-init[1021]: Cloud-init v. 24.4 running 'modules:final'
-----BEGIN SSH HOST KEY FINGERPRINTS-----
{lines}
-----END SSH HOST KEY FINGERPRINTS-----
"""

CONSOLE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
<instanceId>{instance_id}</instanceId><timestamp>2026-12-04T01:12:41.000Z</timestamp>
<output>{output}</output></GetConsoleOutputResponse>"""

PAGE_MAX = 10
"""GetParametersByPath's largest MaxResults (and its default)."""

Answer = tuple[int, dict[str, str], bytes]
"""HTTP status, headers, body."""
Moto = Callable[[bytes], Answer]


class AwsStandIn:
    """What the tests set (fingerprints, parameters, refuse) and what was asked (calls)."""

    def __init__(self, moto_url: str) -> None:
        self.moto = urllib.parse.urlsplit(moto_url)
        self.fingerprints: list[str] = []
        """SHA256 fingerprints the console prints from the third `Latest=true` read on."""
        self.parameters: dict[str, str] = {}
        self.refuse = False
        self.console_calls: list[tuple[str, bool, bool]] = []
        """(instance id, Latest asked, fingerprints printed) per GetConsoleOutput."""
        self.ssm_calls: list[dict[str, Any]] = []
        self.url = ""

    def ec2(self, form: dict[str, list[str]], body: bytes, moto: Moto) -> Answer | None:
        """An EC2 Query API answer of the stand-in's own, or None to let moto answer.
        Subclasses (spot_standin.py) serve more; `moto(body)` asks moto itself."""
        return None

    def console(self, instance_id: str, latest: bool) -> str:
        reads = sum(1 for seen, asked, _ in self.console_calls if seen == instance_id and asked)
        shown = latest and reads >= 2 and bool(self.fingerprints)
        self.console_calls.append((instance_id, latest, shown))
        if not shown:
            return EARLY_CONSOLE
        lines = "\n".join(
            f"256 {fingerprint} root@ip-172-31-22-7 (ED25519)" for fingerprint in self.fingerprints
        )
        return EARLY_CONSOLE + FINGERPRINTS.format(lines=lines)

    def by_path(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.ssm_calls.append(request)
        if self.refuse:
            return 400, {
                "__type": "AccessDeniedException",
                "message": "User: arn:aws:iam::123456789012:user/trainer is not authorized to "
                "perform: ssm:GetParametersByPath on resource: arn:aws:ssm:us-east-1::parameter"
                f"{request.get('Path')} because no identity-based policy allows it",
            }
        path = str(request.get("Path", ""))
        size = int(request.get("MaxResults", PAGE_MAX))
        if not path.startswith("/") or not 1 <= size <= PAGE_MAX:
            return 400, {"__type": "ValidationException", "message": "Invalid Path or MaxResults"}
        prefix = path.rstrip("/") + "/"
        recursive = bool(request.get("Recursive"))
        names = sorted(
            name
            for name in self.parameters
            if name.startswith(prefix) and (recursive or "/" not in name[len(prefix) :])
        )
        start = int(request.get("NextToken") or 0)
        page = names[start : start + size]
        answer: dict[str, Any] = {
            "Parameters": [
                {
                    "Name": name,
                    "Type": "String",
                    "Value": self.parameters[name],
                    "Version": 1,
                    "LastModifiedDate": 1764806400.0,
                    "ARN": f"arn:aws:ssm:us-east-1::parameter{name}",
                    "DataType": "text",
                }
                for name in page
            ]
        }
        if start + size < len(names):
            answer["NextToken"] = str(start + size)
        return 200, answer


def handler_for(standin: AwsStandIn) -> type[StandInHandler]:
    class Handler(StandInHandler):
        headers_always = {"x-amzn-RequestId": "4a7ce2d5-5b8d-4a41-9d6b-example"}

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target = self.headers.get("X-Amz-Target", "")
            if target == "AmazonSSM.GetParametersByPath":
                status, answer = standin.by_path(json.loads(body or b"{}"))
                self.reply(status, json.dumps(answer).encode(), "application/x-amz-json-1.1")
                return
            if target.startswith("AmazonSSM."):
                unknown = {"__type": "InvalidAction", "message": f"{target} is not served here"}
                self.reply(400, json.dumps(unknown).encode(), "application/x-amz-json-1.1")
                return
            form = urllib.parse.parse_qs(body.decode())
            own = standin.ec2(form, body, self.forward)
            if own is not None:
                self.reply(own[0], own[2], own[1].get("Content-Type", "text/xml"))
                return
            status, headers, moto_body = self.forward(body)
            if form.get("Action") != ["GetConsoleOutput"] or status != 200:
                self.reply(status, moto_body, headers.get("Content-Type", "text/xml"))
                return
            instance_id = form["InstanceId"][0]
            output = standin.console(instance_id, form.get("Latest") == ["true"])
            xml = CONSOLE_XML.format(
                instance_id=instance_id, output=base64.b64encode(output.encode()).decode()
            )
            self.reply(200, xml.encode(), "text/xml;charset=UTF-8")

        def forward(self, body: bytes) -> Answer:
            connection = http.client.HTTPConnection(
                standin.moto.hostname or "127.0.0.1", standin.moto.port, timeout=60
            )
            try:
                skip = ("host", "content-length")  # the body may be one the stand-in rewrote
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                connection.request("POST", self.path, body, headers)
                answer = connection.getresponse()
                return answer.status, dict(answer.getheaders()), answer.read()
            finally:
                connection.close()

    return Handler


@contextmanager
def serve(moto_url: str, standin: AwsStandIn | None = None) -> Iterator[AwsStandIn]:
    """The stand-in (or a subclass's, spot_standin.py) on a free loopback port, in front of
    moto, for the block's duration."""
    standin = standin or AwsStandIn(moto_url)
    with serving(LoopbackServer(handler_for(standin))) as server:
        standin.url = server.url
        yield standin
