"""A loopback stand-in for the EC2 instance metadata service (IMDSv2), for the trainer's spot
notice poller.

Shaped from AWS's user guide: "Use the Instance Metadata Service to access instance metadata"
(IMDSv2: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` gives a session
token; every GET carries it in `X-aws-ec2-metadata-token`, and one without it is refused with
401) and "Spot Instance interruption notices" (`GET /latest/meta-data/spot/instance-action`
answers 404 until the instance is marked, then `{"action": …, "time": …}`). Tests set `marked`
to give the notice and read `tokenless_requests` to check that no IMDSv1 call was made.
"""

from __future__ import annotations

import json
import threading

from tests.standins import LoopbackServer, StandInHandler

TOKEN = "test-session-token"


class MetadataService(LoopbackServer):
    """The metadata service of one spot instance; `marked` is its interruption notice."""

    def __init__(self) -> None:
        super().__init__(MetadataHandler)
        self.marked = threading.Event()
        self.tokenless_requests = 0


class MetadataHandler(StandInHandler):
    server: MetadataService

    def do_PUT(self) -> None:
        if (
            self.path == "/latest/api/token"
            and self.headers["X-aws-ec2-metadata-token-ttl-seconds"]
        ):
            self.reply(200, TOKEN.encode())
        else:
            self.reply(400)

    def do_GET(self) -> None:
        if self.headers["X-aws-ec2-metadata-token"] != TOKEN:
            self.server.tokenless_requests += 1
            self.reply(401)
        elif self.path == "/latest/meta-data/spot/instance-action" and self.server.marked.is_set():
            notice = {"action": "terminate", "time": "2026-01-01T00:02:00Z"}
            self.reply(200, json.dumps(notice).encode())
        else:
            self.reply(404)
