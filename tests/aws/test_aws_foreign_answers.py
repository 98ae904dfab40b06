"""An answer that is not AWS's, or none at all, costs one check or fails one step in a sentence.

Two ways AWS fails to answer, both on loopback: a stand-in that answers chosen Query actions
with a proxy's HTML 500 page (aws_standin.py's `html_500`; botocore's parser raises its
ResponseParserError, which is not one of botocore's own errors), and a port nobody listens on
(botocore's EndpointConnectionError). doctor keeps its table, the one check says "cannot tell"
and why; launch and terminate fail with one sentence and leave nothing running.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_seed import Reports
from aws_standin import serve
from iam_standin import IamStandIn
from test_aws_doctor import doctor_json

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud import aws_session
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_session import NoAnswer
from pacerid_tui.core.kernel.checks import OK, WARN
from pacerid_tui.core.kernel.models import InstanceSpec
from pacerid_tui.core.steps.doctor import run_checks

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def closed_port() -> str:
    """A loopback address nothing listens on (bound once, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def one_try(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries a refused connection with backoff (seconds a call); one try is enough
    to see what a failure becomes."""
    monkeypatch.setattr(aws_session, "API_ATTEMPTS", 1)
    monkeypatch.setattr(aws_session, "OTHER_ATTEMPTS", 1)


def test_doctor_prints_its_table_when_the_simulator_answers_a_proxy_page(
    aws_config: Path, iam_standin: IamStandIn
) -> None:
    """The reported case: `pacerid-tui doctor` printed a ResponseParserError traceback."""
    iam_standin.html_500 = {"SimulatePrincipalPolicy"}
    done = doctor_json(aws_config)
    assert "Traceback" not in done.stderr and done.returncode == 0, done.stderr
    checks = {entry["check"]: entry for entry in json.loads(done.stdout)}
    role = checks["role"]
    assert role["status"] == WARN
    assert role["detail"].startswith("Cannot tell: what came back when asked to look up the ")
    assert "was not AWS's answer (a web page from a proxy, or an outage)" in role["detail"]
    assert role["fix"] == "Check the network or proxy, and retry."
    credentials = checks["credentials"]  # it asks the simulator too (docs/aws-policy.json)
    assert credentials["status"] == WARN
    assert "cannot tell whether it may call every action" in credentials["detail"]
    assert "NotAwsAnswer" in credentials["detail"]
    asked = {"role", "credentials"}
    others = {name: entry["status"] for name, entry in checks.items() if name not in asked}
    assert set(others.values()) == {OK}, others  # one answer's failure costs what asked it only


def test_doctor_with_aws_unreachable_says_cannot_tell_for_each_check(
    aws_config: Path, closed_port: str, monkeypatch: pytest.MonkeyPatch, one_try: None
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SERVICE_QUOTAS", "AWS_ENDPOINT_URL_IAM"):
        monkeypatch.setenv(name, closed_port)
    checks = run_checks(load_config(aws_config))
    aws = [check for check in checks if check.check != "kaggle"]
    for check in aws:
        assert check.status == WARN, check
        assert check.detail.startswith("Cannot tell: cannot reach AWS to "), check
        assert check.fix == "Check the network and retry."


@pytest.fixture
def proxy(aws_env: str) -> Iterator[Any]:
    with serve(aws_env) as standin:
        yield standin


def test_a_launch_answered_by_a_proxy_page_fails_in_one_sentence(
    proxy: Any, make_config: Any, reports: Reports
) -> None:
    """RunInstances answered with a page: the instance may or may not exist, so the run's tag is
    looked for (none here: the page came instead of EC2) and the launch says what happened."""
    proxy.html_500 = {"RunInstances"}
    provider = AwsProvider(make_config(interruption="relaunch"), endpoint_url=proxy.url)
    with pytest.raises(NoAnswer) as failed:
        provider.launch(InstanceSpec(run_id="r-html", provider="aws"), reports)
    assert str(failed.value).startswith("What came back when asked to launch spot g4dn.xlarge")
    assert "\n" not in str(failed.value) and "DOCTYPE" not in str(failed.value)
    assert provider.find_managed() == []


def test_a_terminate_answered_by_a_proxy_page_fails_in_one_sentence(
    proxy: Any, make_config: Any
) -> None:
    provider = AwsProvider(make_config(interruption="relaunch"), endpoint_url=proxy.url)
    instance = provider.launch(InstanceSpec(run_id="r-term", provider="aws"))
    proxy.html_500 = {"TerminateInstances"}
    with pytest.raises(NoAnswer, match=rf"asked to terminate {instance.instance_id} was not AWS"):
        provider.terminate(instance.instance_id)
    proxy.html_500 = set()
    assert provider.terminate(instance.instance_id).state.value == "terminated"


def test_launch_and_terminate_with_aws_unreachable_fail_in_one_sentence(
    aws_env: str, make_config: Any, closed_port: str, one_try: None
) -> None:
    provider = AwsProvider(make_config(), endpoint_url=closed_port)
    with pytest.raises(NoAnswer, match=r"^Cannot reach AWS to .*; check the network and retry\.$"):
        provider.launch(InstanceSpec(run_id="r-off", provider="aws"))
    with pytest.raises(NoAnswer, match=r"^Cannot reach AWS to .*; check the network and retry\.$"):
        provider.terminate("i-0123456789abcdef0")
