"""A step on an AWS instance that ended behind the tool's back (the console's Terminate, a spot
reclaim, another machine's `terminate`) says so within seconds, names how it ended, and leaves the
registry knowing it is not live, instead of waiting out the boot deadline of refused
connections (ssh.BOOT_DEADLINE_S, five minutes). tests/e2e/test_gone_host.py is the same story
on the local provider.

The provider is asked through DescribeInstances with an `instance-id` filter. EC2 API reference,
DescribeInstances: "If you specify filters, the output includes information for only those
instances that meet the filter criteria" (so an id that no longer matches gives an empty
`Reservations` list; the error for an id that is not valid is the `InstanceIds` parameter's),
and "Recently terminated instances might appear in the returned results. This interval is
usually less than one hour." (EC2 User Guide, "Amazon EC2 instance lifecycle": a terminated
instance stays visible for a while after it ends, then is gone.) Both answers come from moto:
`terminated` after TerminateInstances sent straight to it; the empty list after moto forgets
its account (`/moto-api/reset`), because moto lists a terminated instance forever and cannot
drop a single one.

moto's instances have made-up addresses, so the instance is reached through
`instance.ssh_proxy_command` (tests/proxy_relay.py, as in test_aws_dashboard.py), relaying to a
loopback port that refuses (tests/conftest.py `closed_port`): the host is down, as a terminated
one is. Its key is pinned, as after the run's first upload, so the step goes straight to the
connect loop. The step runs through the real program (`pacerid-tui setup`).

Before the first pin the step waits for the host's key fingerprints on its boot console
(GetConsoleOutput; `instance.host_key_wait_s`, four minutes). EC2 API reference,
GetConsoleOutput: the output is "buffered information that was posted shortly after an instance
transition state (start, stop, reboot, or terminate)": a host that ended before cloud-init
printed the fingerprints has a console without them, as moto's fixed console output is, and
will never print them, so that wait asks too ("terminated before its first upload").
"""

from __future__ import annotations

import shlex
import sys
import urllib.request
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml

from pacerid_tui import paths
from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.models import InstanceState
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.steps.registry import Registry
from tests.conftest import REPO, TakeRun, closed_port
from tests.e2e.test_cli_local import cli

BOUND_S = 90.0
"""Far under the boot deadline, with room for a shared machine: the provider is asked after
ssh.GONE_CHECK_S of refusals, and the CLI's start and the launch are not free."""


def refused_config(aws_config: Path, port: int, tmp_path: Path) -> Path:
    """configs/base.yaml on moto, its instances reached through a relay to a refused port."""
    config = yaml.safe_load(aws_config.read_text())
    relay = [sys.executable, str(REPO / "tests" / "proxy_relay.py"), str(port)]
    config["instance"]["ssh_proxy_command"] = (
        f"{shlex.join([*relay, str(tmp_path / 'asked')])} %h %p %r"
    )
    path = tmp_path / "aws-refused.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def pin_a_key(instance_id: str) -> None:
    """What the run's first upload left: the host key pinned under the instance id."""
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    known = paths.known_hosts_file()
    atomic.write_text(known, f"{instance_id} {' '.join(key.split()[:2])}\n")


@pytest.mark.parametrize(
    "ending", ["terminated", "no longer listed", "terminated before its first upload"]
)
async def test_a_step_on_an_aws_instance_that_ended_says_so_within_seconds(
    ending: str, aws_env: str, aws_config: Path, ec2: Any, tmp_path: Path, take_run: TakeRun
) -> None:
    assert BOUND_S < ssh.BOOT_DEADLINE_S and ssh.GONE_CHECK_S < BOUND_S
    with closed_port() as sock:
        config = refused_config(aws_config, sock.getsockname()[1], tmp_path)
        lifecycle, run = await take_run(config, to="launch")
        lifecycle.close()
        assert run.instance is not None and run.instance.state is InstanceState.RUNNING
        instance_id = run.instance.instance_id
        if ending != "terminated before its first upload":
            pin_a_key(instance_id)
        ec2.terminate_instances(InstanceIds=[instance_id])  # behind this machine's registry
        if ending == "no longer listed":
            reset = urllib.request.Request(f"{aws_env}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset).close()
            found = ec2.describe_instances(
                Filters=[{"Name": "instance-id", "Values": [instance_id]}]
            )
            assert found["Reservations"] == []  # EC2's answer for an id it no longer lists
        else:
            [[listed]] = [r["Instances"] for r in ec2.describe_instances()["Reservations"]]
            assert listed["State"]["Name"] == "terminated"
        assert Registry(paths.registry_file()).get(run.run_id).instance.state.is_alive  # type: ignore[union-attr]

        done = cli("setup", "--run", run.run_id, check=False, timeout=BOUND_S)  # fails past it

    assert done.returncode == 1, done.stderr
    said = done.stderr.strip().splitlines()[-1]
    reason = "no longer known to the provider" if ending == "no longer listed" else "terminated"
    assert said.startswith(f"pacerid-tui: Instance {instance_id} ended ("), done.stderr
    assert reason in said.lower(), said
    assert "Traceback" not in done.stderr
    if ending == "terminated before its first upload":  # told in the wait for fingerprints,
        assert not (tmp_path / "asked").exists()  # before any connect
    else:
        assert (tmp_path / "asked").read_text().strip(), "the relay was never asked: no refusals"
    now = Registry(paths.registry_file()).get(run.run_id).instance
    assert now is not None and not now.state.is_alive, now
