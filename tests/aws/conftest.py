"""Fixtures for the AWS provider tests: a real moto server, a caller-IP stand-in, fake keys.

moto reads MOTO_AMIS_PATH when it is first imported, so the server runs in a child process with
the variable set: this test process never imports moto, and other test folders see none of its
globals. The server is reset before every test. Nothing leaves 127.0.0.1: boto3 gets fake
credentials, no config files and no instance-metadata look-ups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_seed import AMIS, CALLER_IP, MOVED_IP, REGION, Reports
from aws_standin import AwsStandIn, serve
from botocore.config import Config
from iam_standin import IamStandIn
from placement_standin import AdvisorStandIn, PlacementStandIn, advisor_serving
from quotas_standin import QuotasStandIn

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.remote import host_keys
from tests.standins import LoopbackServer, StandInHandler, serving

REPO = Path(__file__).resolve().parents[2]

SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    amis = tmp_path_factory.mktemp("moto") / "amis.json"
    amis.write_text(json.dumps(AMIS))
    env = {
        **os.environ,
        "MOTO_AMIS_PATH": str(amis),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    yield f"http://127.0.0.1:{port}"
    server.stdin.close()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="session")
def quotas_server() -> Iterator[QuotasStandIn]:
    with serving(QuotasStandIn()) as server:
        yield server


@pytest.fixture
def quotas(quotas_server: QuotasStandIn) -> QuotasStandIn:
    """The Service Quotas stand-in, with room for a few GPU instances unless a test says less."""
    quotas_server.reset({"L-3819A6DF": 64.0, "L-DB2E81BA": 64.0})
    return quotas_server


@pytest.fixture
def aws_env(
    moto_url: str, quotas: QuotasStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """A fresh moto account and an environment where boto3 finds only fake credentials; every
    AWS service goes to moto (STS included), Service Quotas to its stand-in."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", quotas.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return moto_url


class CallerIpHandler(StandInHandler):
    """checkip.amazonaws.com's behaviour: the address and a newline; /fail and /junk misbehave."""

    def do_GET(self) -> None:
        if self.path == "/fail":
            self.send_error(503)
            return
        address = MOVED_IP if self.path == "/moved" else CALLER_IP  # /moved: another network
        body = b"not an address\n" if self.path == "/junk" else f"{address}\n".encode()
        self.reply(200, body)


@pytest.fixture(scope="session")
def caller_ip_url() -> Iterator[str]:
    with serving(LoopbackServer(CallerIpHandler)) as server:
        yield f"{server.url}/"


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ssh"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def make_config(key_dir: Path, caller_ip_url: str) -> Callable[..., InstanceConfig]:
    def make(**overrides: Any) -> InstanceConfig:
        values: dict[str, Any] = {
            "provider": "aws",
            "region": REGION,
            "key_path": str(key_dir / "pacerid-ml-key.pem"),
            "caller_ip_url": caller_ip_url,
        }
        values.update(overrides)
        return InstanceConfig(**values)

    return make


@pytest.fixture
def make_provider(
    aws_env: str, make_config: Callable[..., InstanceConfig]
) -> Callable[..., AwsProvider]:
    def make(**overrides: Any) -> AwsProvider:
        return AwsProvider(make_config(**overrides), endpoint_url=aws_env)

    return make


@pytest.fixture
def ec2(aws_env: str) -> Any:
    """A plain client for looking at what the provider did, the way a person would."""
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=aws_env,
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def aws_config(tmp_path: Path, aws_env: str, caller_ip_url: str, key_dir: Path) -> Path:
    """configs/base.yaml pointed at moto, the caller-IP stand-in and a temporary key folder."""
    config = yaml.safe_load((REPO / "configs" / "base.yaml").read_text())
    config["instance"].update(
        region=REGION, key_path=str(key_dir / "pacerid-ml-key.pem"), caller_ip_url=caller_ip_url
    )
    config["data"]["source"] = "synthetic"
    path = tmp_path / "aws.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def aws_standin(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStandIn]:
    """moto behind the GetConsoleOutput and SSM stand-in (aws_standin.py); the console is read
    again after 0.05 s instead of seconds, so a late fingerprint block costs no test time."""
    monkeypatch.setattr(host_keys, "FIRST_RETRY_S", 0.05)
    with serve(aws_env) as standin:
        yield standin


@pytest.fixture
def iam_standin(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[IamStandIn]:
    """IAM and STS through the policy-simulator stand-in (iam_standin.py), for the doctor's
    role check; every other IAM call still reaches moto."""
    with serve(aws_env, IamStandIn(aws_env)) as standin:
        assert isinstance(standin, IamStandIn)
        monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", standin.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", standin.url)
        yield standin


@pytest.fixture
def placement_standin(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlacementStandIn]:
    """moto behind the stand-in for placement scores, zone prices and full zones
    (placement_standin.py), in every region; every AWS call of the test goes through it."""
    with serve(aws_env, PlacementStandIn(aws_env)) as standin:
        assert isinstance(standin, PlacementStandIn)
        monkeypatch.setenv("AWS_ENDPOINT_URL", standin.url)
        yield standin


@pytest.fixture
def advisor() -> Iterator[AdvisorStandIn]:
    """The Spot Instance Advisor's public JSON on a loopback port (placement_standin.py)."""
    with advisor_serving() as server:
        yield server
