"""What a local stop-mode host reaches AWS through: its instance metadata (local_imds.py) and an
EC2 endpoint (local_ec2.py), asked here as the host's own boto3 asks them, found only through
the two variables its processes get (server.json records them).

Shaped from the EC2 User Guide, "Use IMDSv2" and "Retrieve security credentials from instance
metadata", and the EC2 API reference: "Query requests for Amazon EC2", CancelSpotInstanceRequests,
TerminateInstances, "Error codes for the Amazon EC2 API" (the error shape and codes) and the
DryRun parameter (DryRunOperation when allowed, UnauthorizedOperation when not).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.models import Instance, InstanceSpec, InstanceState


def server_of(provider: LocalProvider, instance: Instance) -> dict[str, Any]:
    return dict(json.loads((provider.root / instance.instance_id / "server.json").read_text()))


@pytest.fixture
def host(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalProvider, Instance]]:
    """A stop-mode local instance, and this process's boto3 set up as the host's: no keys, no
    config files, the metadata service and EC2 where the instance's server says."""
    provider = LocalProvider()
    instance = provider.launch(InstanceSpec(run_id="run-h", provider="local", interruption="stop"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(isolated / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(isolated / "no-aws-credentials"))
    server = server_of(provider, instance)
    for name in ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_EC2"):
        monkeypatch.setenv(name, server[name])
    yield provider, instance


def request_state(provider: LocalProvider, request_id: str) -> str:
    found = provider.spot_request_state(request_id)
    assert found is not None, f"no spot request {request_id}"
    return found[0]


def ec2() -> Any:
    """A fresh session each time: botocore keeps the credentials a session resolved."""
    return boto3.session.Session().client("ec2", region_name="local")


def error_of(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def http(url: str, method: str = "GET", **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_metadata_gives_the_roles_credentials_only_with_a_session_token(
    host: tuple[LocalProvider, Instance],
) -> None:
    provider, instance = host
    base = server_of(provider, instance)["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
    roles = f"{base}/latest/meta-data/iam/security-credentials/"
    assert http(roles)[0] == 401  # IMDSv2 required: no token, no answer
    token_url = f"{base}/latest/api/token"
    assert http(token_url, "PUT")[0] == 400  # the TTL header is required
    ttl = "X-aws-ec2-metadata-token-ttl-seconds"
    assert http(token_url, "PUT", **{ttl: "21601"})[0] == 400  # at most six hours
    status, token = http(token_url, "PUT", **{ttl: "21600"})
    assert status == 200 and token
    assert http(roles, **{"X-aws-ec2-metadata-token": token + "x"})[0] == 401
    assert http(roles, **{"X-aws-ec2-metadata-token": token}) == (200, "pacerid-ml-host")
    status, body = http(roles + "pacerid-ml-host", **{"X-aws-ec2-metadata-token": token})
    credentials = json.loads(body)
    assert status == 200 and credentials["Code"] == "Success" and credentials["Type"] == "AWS-HMAC"
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert {"SecretAccessKey", "Token", "Expiration", "LastUpdated"} <= set(credentials)

    plain = provider.launch(InstanceSpec(run_id="run-p", provider="local"))  # relaunch mode
    base = server_of(provider, plain)["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
    token = http(f"{base}/latest/api/token", "PUT", **{ttl: "60"})[1]
    found = http(
        f"{base}/latest/meta-data/iam/security-credentials/", **{"X-aws-ec2-metadata-token": token}
    )
    assert found[0] == 404  # no instance profile, no role


def test_dry_runs_say_what_the_role_allows_and_change_nothing(
    host: tuple[LocalProvider, Instance],
) -> None:
    provider, instance = host
    request = instance.spot_request_id
    assert request is not None
    cancel = lambda: ec2().cancel_spot_instance_requests(  # noqa: E731
        SpotInstanceRequestIds=[request], DryRun=True
    )
    terminate = lambda: ec2().terminate_instances(  # noqa: E731
        InstanceIds=[instance.instance_id], DryRun=True
    )
    assert error_of(cancel) == ("DryRunOperation", 412)
    assert error_of(terminate) == ("DryRunOperation", 412)
    role = provider.root / instance.instance_id / "role.json"  # an administrator narrows it
    role.write_text(json.dumps({**json.loads(role.read_text()), "actions": []}))
    assert error_of(cancel) == ("UnauthorizedOperation", 403)
    assert error_of(terminate) == ("UnauthorizedOperation", 403)
    assert request_state(provider, request) == "active"
    assert provider.describe([instance.instance_id])[instance.instance_id].state.is_alive


def test_cancel_then_terminate_ends_the_instance_and_its_request_for_good(
    host: tuple[LocalProvider, Instance],
) -> None:
    provider, instance = host
    assert instance.spot_request_id is not None
    cancelled = ec2().cancel_spot_instance_requests(
        SpotInstanceRequestIds=[instance.spot_request_id]
    )
    assert cancelled["CancelledSpotInstanceRequests"] == [
        {"SpotInstanceRequestId": instance.spot_request_id, "State": "cancelled"}
    ]
    assert request_state(provider, instance.spot_request_id) == "cancelled"
    assert error_of(lambda: ec2().terminate_instances(InstanceIds=["local-0000"])) == (
        "InvalidInstanceID.NotFound",
        400,
    )
    ended = ec2().terminate_instances(InstanceIds=[instance.instance_id])["TerminatingInstances"]
    assert ended == [
        {
            "InstanceId": instance.instance_id,
            "CurrentState": {"Code": 32, "Name": "shutting-down"},
            "PreviousState": {"Code": 16, "Name": "running"},
        }
    ]
    deadline = time.monotonic() + 30
    while provider.describe([instance.instance_id])[instance.instance_id].state.is_alive:
        assert time.monotonic() < deadline, "TerminateInstances never ended the instance"
        time.sleep(0.1)
    assert (
        provider.describe([instance.instance_id])[instance.instance_id].state
        is InstanceState.TERMINATED
    )
    assert provider.find_managed() == []  # its request was cancelled first: no replacement


def test_a_request_not_signed_with_the_roles_credentials_is_refused_in_ec2s_error_shape(
    host: tuple[LocalProvider, Instance],
) -> None:
    provider, instance = host
    url = server_of(provider, instance)["AWS_ENDPOINT_URL_EC2"]
    body = f"Action=TerminateInstances&Version=2016-11-15&InstanceId.1={instance.instance_id}"
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 401
    root = ET.fromstring(raised.value.read())
    assert root.tag == "Response" and root.find("RequestID") is not None
    assert root.findtext("Errors/Error/Code") == "AuthFailure"
    assert root.findtext("Errors/Error/Message")

    # The right key id and session token, the wrong secret: the signature gives it away.
    credentials = boto3.session.Session().get_credentials()
    assert credentials is not None
    forged = boto3.session.Session(
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key="not-the-secret",
        aws_session_token=credentials.token,
    ).client("ec2", region_name="local")
    call = lambda: forged.terminate_instances(InstanceIds=[instance.instance_id])  # noqa: E731
    assert error_of(call) == ("AuthFailure", 401)
    assert provider.describe([instance.instance_id])[instance.instance_id].state.is_alive
