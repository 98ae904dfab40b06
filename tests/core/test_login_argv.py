"""The system `ssh` command line, one for the CLI's `ssh` and the dashboard's s key
(`Connections.login_argv`): refused, in one sentence, while the run has no live instance or its
host key is not pinned under the instance id; otherwise set up from the registry's instance and
the run's frozen config. The argv itself is run against a real sshd in tests/core/test_ssh.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacerid_tui import paths
from pacerid_tui.config import Config
from pacerid_tui.core.kernel.errors import UsageError
from pacerid_tui.core.kernel.models import Instance, InstanceState
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.registry import Registry

PROXY = "ssh -W %h:%p bastion"


def test_the_ssh_command_line_needs_a_live_pinned_host(tmp_path: Path) -> None:
    lifecycle = Lifecycle(Registry(tmp_path / "runs.json"))
    config = Config.model_validate(
        {"data": {"source": "synthetic"}, "instance": {"ssh_proxy_command": PROXY}}
    )
    run = lifecycle.create_run(tmp_path / "run.yaml", config)
    with pytest.raises(UsageError, match="has no running instance"):
        lifecycle.connections.login_argv(run)

    instance = Instance(
        "local-1234", "local", InstanceState.RUNNING, "127.0.0.1", 2222, "me", "~/key.pem"
    )
    run = lifecycle.update(run, instance=instance)
    with pytest.raises(UsageError, match="local-1234 is not pinned yet"):
        lifecycle.connections.login_argv(run)
    paths.known_hosts_file().write_text("another-host ssh-ed25519 AAAA\n")
    with pytest.raises(UsageError, match="not pinned yet"):  # another host's key is no pin
        lifecycle.connections.login_argv(run)

    paths.known_hosts_file().write_text("local-1234 ssh-ed25519 AAAA\n")
    argv = lifecycle.connections.login_argv(run, "echo", "hi")
    assert argv[0] == "ssh" and argv[-3:] == ["me@127.0.0.1", "echo", "hi"]
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == str(Path("~/key.pem").expanduser())
    assert "HostKeyAlias=local-1234" in argv and "StrictHostKeyChecking=yes" in argv
    assert f"ProxyCommand={PROXY}" in argv  # from the run's frozen config

    ended = lifecycle.update(
        run, instance=Instance("local-1234", "local", InstanceState.TERMINATED)
    )
    with pytest.raises(UsageError, match="has no running instance"):
        lifecycle.connections.login_argv(ended)
