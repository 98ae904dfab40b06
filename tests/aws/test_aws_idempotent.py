"""A launch whose RunInstances answer is lost still makes exactly one instance.

A loopback proxy in front of moto plays the network and EC2's idempotency rule, which moto
lacks (its `client-token` filter is unimplemented and it ignores ClientToken). From the EC2 API
reference ("Ensuring idempotency"): a RunInstances call with a ClientToken already used returns
the reservation of the first call and starts nothing new. The proxy lets moto create the
instance, then closes the connection without answering, as a dropped response would.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from aws_seed import Reports

from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.base import RUN_ID_TAG
from pacerid_tui.core.kernel.models import InstanceSpec
from tests.standins import LoopbackServer, StandInHandler, serving


class LossyEc2(LoopbackServer):
    def __init__(self, moto_url: str, drops: int) -> None:
        super().__init__(LossyHandler)
        self.moto_url = moto_url
        self.drops = drops
        """How many RunInstances answers to lose."""
        self.answers: dict[str, bytes] = {}
        """ClientToken → the answer of the first call that carried it."""
        self.run_calls: list[str] = []
        self.forwarded = 0
        self.lock = threading.Lock()


class LossyHandler(StandInHandler):
    server: LossyEc2

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"] or 0))
        fields = parse_qs(body.decode())
        if fields.get("Action") != ["RunInstances"]:
            self.reply(*self.ask_moto(body))
            return
        token = fields.get("ClientToken", [""])[0]
        with self.server.lock:
            self.server.run_calls.append(token)
            known = self.server.answers.get(token) if token else None
            if known is None:
                self.server.forwarded += 1
                status, known, kind = self.ask_moto(body)
                if status != 200:
                    self.reply(status, known, kind)
                    return
                if token:
                    self.server.answers[token] = known
            lose = self.server.drops > 0
            self.server.drops -= 1
        if lose:
            self.close_connection = True  # the instance exists; its answer never arrives
            return
        self.reply(200, known, "text/xml")

    def ask_moto(self, body: bytes) -> tuple[int, bytes, str]:
        request = urllib.request.Request(self.server.moto_url + "/", data=body, method="POST")
        for name, value in self.headers.items():  # SSM's X-Amz-Target too, not only EC2's
            if name.lower() not in ("host", "content-length", "connection"):
                request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Content-Type", "")


@pytest.fixture
def lossy(aws_env: str, request: pytest.FixtureRequest) -> Iterator[LossyEc2]:
    with serving(LossyEc2(aws_env, drops=request.param)) as server:
        yield server


def run_instances(ec2: Any, run_id: str) -> list[str]:
    found = ec2.describe_instances(Filters=[{"Name": f"tag:{RUN_ID_TAG}", "Values": [run_id]}])
    return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]


@pytest.mark.parametrize("lossy", [1], indirect=True)
def test_a_lost_answer_is_asked_again_with_the_same_token(
    lossy: LossyEc2, make_config: Any, ec2: Any, reports: Reports
) -> None:
    provider = AwsProvider(make_config(zones=["us-east-1a"]), endpoint_url=lossy.url)
    instance = provider.launch(InstanceSpec(run_id="run-lost-once", provider="aws"), reports)
    assert run_instances(ec2, "run-lost-once") == [instance.instance_id]
    assert len(lossy.run_calls) == 2 and lossy.run_calls[0] == lossy.run_calls[1] != ""
    assert lossy.forwarded == 1
    assert any("asking again with the same token" in line for line in reports)


@pytest.mark.parametrize("lossy", [99], indirect=True)
def test_an_attempt_given_up_finds_the_instance_by_its_run_tag(
    lossy: LossyEc2, make_config: Any, ec2: Any, reports: Reports
) -> None:
    """Every answer is lost: before moving to the next zone, the run's instance is looked for."""
    config = make_config(zones=["us-east-1a", "us-east-1b"])
    provider = AwsProvider(config, endpoint_url=lossy.url)
    instance = provider.launch(InstanceSpec(run_id="run-lost-always", provider="aws"), reports)
    assert run_instances(ec2, "run-lost-always") == [instance.instance_id]
    assert lossy.forwarded == 1 and len(set(lossy.run_calls)) == 1
