"""Instance types the run cannot use are refused by doctor and at launch, naming those it can.

EC2's DescribeInstanceTypes says each type's hypervisor: moto serves it for the types it lists,
and aws_standin.py serves the Xen GPU types moto no longer lists (p3, g3), shaped from the EC2
API reference. The supported families are the PyTorch DLAMI release notes' (aws_types.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_standin import AwsStandIn, serve
from test_aws_doctor import ec2_calls, writes

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.kernel.checks import FAIL, OK
from pacerid_tui.core.kernel.errors import ConfigError
from pacerid_tui.core.kernel.models import InstanceSpec
from pacerid_tui.core.steps.doctor import PreflightError, run_checks
from pacerid_tui.core.steps.lifecycle import Lifecycle

SUPPORTED = (
    "supported families: g4dn.*, g5.*, g6.*, gr6.*, g6e.*, p4d.*, p4de.*, p5.*, p5e.*, p5en.*, "
    "p6-b200.*."
)


@pytest.fixture
def ec2_standin(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStandIn]:
    """EC2 (and STS) through the stand-in, which knows the Xen types; the rest is moto's."""
    with serve(aws_env) as standin:
        monkeypatch.setenv("AWS_ENDPOINT_URL", standin.url)
        yield standin


def with_types(config: Path, kind: str, *fallbacks: str) -> Path:
    raw = yaml.safe_load(config.read_text())
    raw["instance"].update(instance_type=kind, fallback_instance_types=list(fallbacks))
    config.write_text(yaml.safe_dump(raw))
    return config


async def test_a_xen_type_fails_the_doctor_and_the_launch_writes_nothing(
    aws_config: Path, ec2_standin: AwsStandIn
) -> None:
    config = with_types(aws_config, "p3.2xlarge")
    [check] = run_checks(load_config(config), ["instance_type"])
    assert check.status == FAIL and check.usage
    assert check.detail == (
        "p3.2xlarge runs on the Xen hypervisor, not Nitro (no spot notice on the host, no "
        "verified host keys) and is not on the PyTorch Deep Learning AMI's list."
    )
    assert check.fix.endswith(SUPPORTED)

    lifecycle = Lifecycle()
    run = lifecycle.create_run(config, load_config(config))
    calls = ec2_calls(lifecycle.provider_for_config(load_config(config).instance))
    with pytest.raises(PreflightError, match=r"^instance_type check failed: p3\.2xlarge runs"):
        await lifecycle.launch(run)
    assert "DescribeInstanceTypes" in calls and writes(calls) == []
    lifecycle.close()


def test_the_provider_refuses_a_type_before_creating_anything(
    make_config: Any, ec2_standin: AwsStandIn
) -> None:
    """Whoever calls the launch: an arm64 Graviton type (Nitro, but not on the PyTorch x86_64
    images' list), and a supported type whose fallback is a Xen one."""
    for kind, fallbacks, refused in (
        ("g5g.xlarge", [], "g5g.xlarge is not on the PyTorch Deep Learning AMI's list"),
        ("g4dn.xlarge", ["g3.4xlarge"], "g3.4xlarge runs on the Xen hypervisor, not Nitro"),
    ):
        config = make_config(instance_type=kind, fallback_instance_types=fallbacks)
        provider = AwsProvider(config, endpoint_url=ec2_standin.url)
        calls = ec2_calls(provider)
        with pytest.raises(ConfigError) as caught:
            provider.launch(InstanceSpec(run_id="r-types", provider="aws"))
        assert str(caught.value).startswith(refused)
        assert str(caught.value).endswith(SUPPORTED)
        assert calls == ["DescribeInstanceTypes"]  # nothing else, nothing written


def test_supported_nitro_types_pass_and_an_unknown_one_is_named(
    aws_config: Path, ec2_standin: AwsStandIn
) -> None:
    config = with_types(aws_config, "g4dn.xlarge", "g5.xlarge", "p4d.24xlarge")
    [check] = run_checks(load_config(config), ["instance_type"])
    assert check.status == OK, check
    assert check.detail == (
        "g4dn.xlarge, g5.xlarge, p4d.24xlarge: Nitro, and supported by the PyTorch Deep "
        "Learning AMI."
    )
    config = with_types(aws_config, "g4dn.xlarge", "g4dn.huge")
    [check] = run_checks(load_config(config), ["instance_type"])
    assert check.status == FAIL
    assert check.detail == "EC2 does not offer g4dn.huge in us-east-1."
