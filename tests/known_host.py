"""A lifecycle whose provider knows a host the tests started themselves (a real OpenSSH sshd)
as the run's running instance, as EC2 knows its own: the supervisor asks the provider before it
follows, and an instance its provider does not know is gone."""

from __future__ import annotations

from collections.abc import Sequence

from pacerid_tui.core.cloud.base import Provider
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.models import Instance, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle


class KnownHost(LocalProvider):
    """The local provider, but describing the given host as a running instance of its own."""

    def __init__(self, instance: Instance) -> None:
        super().__init__()
        self.instance = instance

    def describe(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        return {i: self.instance for i in instance_ids if i == self.instance.instance_id}


class HostLifecycle(Lifecycle):
    """Every run of this lifecycle lives on `instance`."""

    def __init__(self, instance: Instance) -> None:
        super().__init__()
        self.host = KnownHost(instance)

    def provider_of(self, run: Run) -> Provider:
        return self.host
