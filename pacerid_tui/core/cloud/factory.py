"""Pick the provider a config (or a stored run) asks for; AWS is imported only when used."""

from __future__ import annotations

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.base import Provider
from pacerid_tui.core.cloud.local import LocalProvider


def provider_for(instance: InstanceConfig) -> Provider:
    if instance.provider == "local":
        return LocalProvider()
    from pacerid_tui.core.cloud.aws import AwsProvider

    return AwsProvider(instance)
