"""A terminate that comes while a launch is under way (x pressed while a recovery launches the
replacement, its follow cancelled): the launch is shielded, so it still completes and records
its instance; the terminate must wait for it and end that instance, or it would run unseen
(local provider; its launch runs in a thread like boto3's RunInstances)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pacerid_tui.config import load_config
from pacerid_tui.core.steps.lifecycle import Lifecycle
from tests.e2e.test_cli_local import tiny_config


async def test_a_terminate_during_a_launch_ends_what_the_launch_starts(tmp_path: Path) -> None:
    path = tiny_config(tmp_path)
    lifecycle = Lifecycle()
    run = lifecycle.create_run(path, load_config(path))
    provider = lifecycle.provider_of(run)
    launch = asyncio.ensure_future(lifecycle.launch(run))
    deadline = time.monotonic() + 60
    while not any(provider.root.glob("local-*")):  # the provider is making the instance now
        assert time.monotonic() < deadline, "the launch never started"
        await asyncio.sleep(0.01)
    launch.cancel()  # as x cancels a recovering follow
    ended = await lifecycle.terminate(run)
    assert ended.instance is not None and not ended.instance.state.is_alive
    assert provider.find_managed() == []
    lifecycle.close()
