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
- EC2 `DescribeInstanceTypes` for the Xen GPU types moto no longer lists (p3, g3): the
  `instanceTypeSet` items of the EC2 API reference (InstanceTypeInfo: `instanceType`,
  `currentGeneration`, `bareMetal`, `hypervisor` = xen, `processorInfo`, `vCpuInfo`), merged
  with moto's answer for the other types asked; a type neither knows gets moto's
  InvalidInstanceType.
- An answer that is not AWS's: for each Query action named in `html_500` (EC2's, IAM's…), an
  HTTP 500 `text/html` page beginning `<!DOCTYPE html>`, as a corporate proxy or a load
  balancer in trouble sends (not AWS's documented error shape, which is the point; botocore's
  parser reads a page beginning `<html>` as a generic error, this one it cannot read at all).
- A region that refuses: every EC2 call signed for a region in `refuse_regions` (the region of
  the Signature Version 4 credential scope, `Credential=KEY/DATE/REGION/ec2/aws4_request`) is
  answered as EC2 answers a caller an organization's policy denies there (EC2 API reference,
  Error codes: UnauthorizedOperation, HTTP 403, "You are not authorized to perform this
  operation.").
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_seed import ERROR_XML

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

XEN_TYPES = {"p3.2xlarge": 8, "p3.8xlarge": 32, "g3.4xlarge": 16}
"""Xen GPU types (vCPUs), as DescribeInstanceTypes describes them."""

TYPE_ITEM = (
    "<item><instanceType>{name}</instanceType><currentGeneration>true</currentGeneration>"
    "<bareMetal>false</bareMetal><hypervisor>xen</hypervisor><processorInfo>"
    "<supportedArchitectures><item>x86_64</item></supportedArchitectures></processorInfo>"
    "<vCpuInfo><defaultVCpus>{vcpus}</defaultVCpus></vCpuInfo></item>"
)

TYPES_XML = """<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstanceTypesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><instanceTypeSet>{items}
</instanceTypeSet></DescribeInstanceTypesResponse>"""

PAGE_MAX = 10
"""GetParametersByPath's largest MaxResults (and its default)."""

PROXY_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>500 Internal Server Error</title></head>
<body><h1>Internal Server Error</h1><p>The proxy server could not handle the request&nbsp;.</p>
<hr><address>proxy.corp.example</address></body></html>
"""

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
        self.html_500: set[str] = set()
        """Query actions (RunInstances, SimulatePrincipalPolicy…) answered with PROXY_PAGE."""
        self.refuse_regions: set[str] = set()
        """Regions whose EC2 calls are all refused (UnauthorizedOperation)."""
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


def instance_types(form: dict[str, list[str]], moto: Moto) -> Answer | None:
    """DescribeInstanceTypes naming a Xen type: those from XEN_TYPES, the rest from moto."""
    asked = [v[0] for k, v in sorted(form.items()) if k.startswith("InstanceType.")]
    ours = [name for name in asked if name in XEN_TYPES]
    if form.get("Action") != ["DescribeInstanceTypes"] or not ours:
        return None
    items = "".join(TYPE_ITEM.format(name=name, vcpus=XEN_TYPES[name]) for name in ours)
    rest = [name for name in asked if name not in XEN_TYPES]
    if rest:
        query = {"Action": "DescribeInstanceTypes", "Version": form["Version"][0]}
        query.update({f"InstanceType.{n}": name for n, name in enumerate(rest, 1)})
        status, headers, body = moto(urllib.parse.urlencode(query).encode())
        if status != 200:
            return status, headers, body
        theirs = body.decode().partition("<instanceTypeSet>")[2].partition("</instanceTypeSet>")
        items += theirs[0]
    return 200, {"Content-Type": "text/xml;charset=UTF-8"}, TYPES_XML.format(items=items).encode()


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
            signed = self.headers["Authorization"] or ""
            scope = re.search(r"Credential=[^/]+/\d+/([\w-]+)/(\w+)/", signed)
            if scope and scope.group(2) == "ec2" and scope.group(1) in standin.refuse_regions:
                message = "You are not authorized to perform this operation."
                refused = ERROR_XML.format(code="UnauthorizedOperation", message=message)
                self.reply(403, refused.encode(), "text/xml;charset=UTF-8")
                return
            form = urllib.parse.parse_qs(body.decode())
            if (form.get("Action") or [""])[0] in standin.html_500:
                self.reply(500, PROXY_PAGE, "text/html")
                return
            own = instance_types(form, self.forward) or standin.ec2(form, body, self.forward)
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
