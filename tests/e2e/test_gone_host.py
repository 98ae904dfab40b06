"""A step that needs the host of an instance that ended under it (its own idle power-off, a spot
reclaim, a terminate from another machine) says so within seconds, instead of waiting out the
boot deadline of refused connections (ssh.BOOT_DEADLINE_S, five minutes): while it waits for
sshd, the provider is asked whether the instance still exists (ssh.GONE_CHECK_S).

The local provider's terminate is EC2's TerminateInstances (EC2 User Guide, "Terminate Amazon
EC2 instances": the instance shuts down, and its sshd with it). Found when the stop-mode story's
`logs --follow` hung in CI while its host, idle for 30 s, ended itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.errors import InstanceGone
from pacerid_tui.core.kernel.models import InstanceState
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.steps.lifecycle import Lifecycle
from tests.conftest import TakeRun
from tests.e2e.test_cli_local import tiny_config

BOUND_S = 120.0
"""Far under the boot deadline: a step still waiting then has not asked the provider."""


async def test_a_step_on_a_host_that_ended_says_so_instead_of_waiting(
    tmp_path: Path, take_run: TakeRun
) -> None:
    assert BOUND_S < ssh.BOOT_DEADLINE_S
    lifecycle, run = await take_run(tiny_config(tmp_path), to="launch")
    lifecycle.close()
    assert run.instance is not None and run.instance.state is InstanceState.RUNNING
    LocalProvider().terminate(run.instance.instance_id)  # behind this machine's registry

    later = Lifecycle()  # the next command: its registry still says running
    assert later.registry.get(run.run_id).instance.state is InstanceState.RUNNING  # type: ignore[union-attr]
    try:
        with pytest.raises(InstanceGone, match=f"{run.instance.instance_id} ended"):
            await asyncio.wait_for(later.training_state(run), BOUND_S)
    finally:
        later.close()
