"""Each provider has exactly the optional capabilities it should, with the protocols' signatures.

The capabilities (cloud/base.py) are `runtime_checkable` protocols: the dashboard and the steps
ask `isinstance`, which only checks that the method exists. These tests also compare each
method's signature with the protocol's, so a renamed parameter or a dropped default fails here
and not on a user's first reconnect. Providers are built as the app builds them (`provider_for`);
building the AWS one makes no call (its clients are made on first use).
"""

from __future__ import annotations

import inspect

import pytest

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.base import (
    CallerAccess,
    HostKeyFingerprints,
    SpotRequests,
    SshExposure,
    ZonePrices,
)
from pacerid_tui.core.cloud.factory import provider_for
from pacerid_tui.core.steps.zone_market import ZoneQuotes, ssh_warning, zone_prices

CAPABILITIES = (HostKeyFingerprints, SpotRequests, ZonePrices, SshExposure, CallerAccess)
EXPECTED = {
    "aws": {HostKeyFingerprints, SpotRequests, ZonePrices, SshExposure, CallerAccess},
    # The local host's key is made on this machine and it listens on loopback only.
    "local": {SpotRequests, ZonePrices},
}


def members(protocol: type) -> list[str]:
    return [name for name in vars(protocol) if not name.startswith("_")]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_provider_has_exactly_its_capabilities(name: str) -> None:
    provider = provider_for(InstanceConfig(provider=name))  # type: ignore[arg-type]
    found = {capability for capability in CAPABILITIES if isinstance(provider, capability)}
    assert {c.__name__ for c in found} == {c.__name__ for c in EXPECTED[name]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capability_methods_have_the_protocols_signatures(name: str) -> None:
    provider = provider_for(InstanceConfig(provider=name))  # type: ignore[arg-type]
    for capability in EXPECTED[name]:
        for member in members(capability):
            wanted = inspect.signature(getattr(capability, member))
            have = inspect.signature(getattr(type(provider), member))
            assert have == wanted, f"{type(provider).__name__}.{member}{have} != {wanted}"


def test_zone_prices_reach_the_ui_through_the_core() -> None:
    """The launch form's quotes and the market panel's prices ask the same capability."""
    local = InstanceConfig(provider="local")
    assert ZoneQuotes().now(local) == {"local": 0.0}
    assert zone_prices(provider_for(local)) == {"local": 0.0}


def test_ssh_exposure_is_asked_only_of_providers_that_can_expose_it() -> None:
    world = InstanceConfig(provider="aws", ssh_cidr="0.0.0.0/0")
    warning = ssh_warning(provider_for(world))
    assert warning is not None and "0.0.0.0/0" in warning
    assert (
        ssh_warning(provider_for(InstanceConfig(provider="aws", ssh_cidr="203.0.113.7/32"))) is None
    )
    assert ssh_warning(provider_for(InstanceConfig(provider="local"))) is None
