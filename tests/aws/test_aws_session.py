"""Credentials, endpoint and retries: what boto3's chain and botocore's retry modes do for us."""

from __future__ import annotations

from typing import Any

import pytest
from aws_seed import error_response

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.kernel.errors import CredentialsError, ProviderError


def answer_first(provider: AwsProvider, operation: str, status: int, code: str) -> list[int]:
    """Fail the first `operation` request with EC2's error, let later ones through to moto."""
    sent: list[int] = []

    def answer(request: Any, **_: Any) -> Any:
        sent.append(1)
        if len(sent) == 1:
            return error_response(request.url, status, code, f"{code} (test)")
        return None

    provider.clients.ec2.meta.events.register(f"before-send.ec2.{operation}", answer)
    return sent


def test_no_credentials_is_one_clear_sentence(
    aws_env: str, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    provider = AwsProvider(make_config(), endpoint_url=aws_env)
    with pytest.raises(CredentialsError) as caught:
        provider.find_managed()
    assert str(caught.value) == (
        "No AWS credentials found; run `aws configure` (or `aws sso login`), "
        "or set AWS_PROFILE or instance.profile to a configured profile."
    )
    assert caught.value.exit_code == 2


def test_unknown_profile_names_it(make_provider: Any) -> None:
    with pytest.raises(CredentialsError, match=r"AWS profile 'nope' is not configured"):
        make_provider(profile="nope").describe(["i-0123456789abcdef0"])


@pytest.mark.parametrize(
    ("code", "words"),
    [("RequestExpired", "have expired"), ("AuthFailure", "rejected the credentials")],
)
def test_expired_or_rejected_credentials(make_provider: Any, code: str, words: str) -> None:
    provider = make_provider()
    answer_first(provider, "DescribeInstances", 401 if code == "AuthFailure" else 400, code)
    with pytest.raises(CredentialsError, match=words):
        provider.find_managed()


def test_endpoint_comes_from_aws_endpoint_url(
    aws_env: str, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    assert AwsProvider(make_config()).zones()[:2] == ["us-east-1a", "us-east-1b"]


def test_throttling_is_retried(make_provider: Any) -> None:
    provider = make_provider()
    sent = answer_first(provider, "DescribeInstances", 400, "RequestLimitExceeded")
    assert provider.find_managed() == []
    assert len(sent) == 2


def test_client_errors_are_not_retried(make_provider: Any) -> None:
    provider = make_provider()
    sent = answer_first(provider, "DescribeInstances", 400, "InvalidParameterValue")
    with pytest.raises(ProviderError, match=r"AWS refused to describe instances: .*"):
        provider.find_managed()
    assert len(sent) == 1


def test_provider_needs_no_network_to_build(make_config: Any) -> None:
    config: InstanceConfig = make_config(profile="not-yet-checked")
    assert AwsProvider(config).name == "aws"
