"""The lifecycle's host steps against a real OpenSSH sshd, as on an EC2 Ubuntu host."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import UsageError
from pacerid_tui.core.kernel.models import Instance
from pacerid_tui.core.remote import ssh
from pacerid_tui.core.supervise.supervisor import Supervisor
from tests.e2e.test_cli_local import tiny_config
from tests.known_host import HostLifecycle


async def test_upload_setup_data_train_follow_download_over_openssh(
    sshd: Instance, tmp_path: Path
) -> None:
    path = tiny_config(tmp_path)
    lifecycle = HostLifecycle(sshd)
    run = lifecycle.create_run(path, load_config(path))
    run = lifecycle.registry.update(run.run_id, instance=sshd, steps_done=["launch"])
    try:
        first = await lifecycle.upload(run)
        assert first.files_sent == first.files_listed > 10
        assert (await lifecycle.upload(run)).bytes_sent == 0
        await lifecycle.setup(run)
        await lifecycle.data(run)
        await lifecycle.train(run)
        lifecycle.close()  # every SSH connection closed: training goes on, detached in tmux
        with pytest.raises(UsageError, match="already running"):
            await lifecycle.train(run)
        assert await Supervisor(lifecycle, run.run_id).follow() == "done"
        await lifecycle.download(run)
        results = tmp_path / "results" / run.run_id
        events = [json.loads(x) for x in (results / "metrics.jsonl").read_text().splitlines()]
        assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
        assert (results / "checkpoint_latest.pt").exists()
    finally:
        conn = await lifecycle.connection(run)
        await ssh.run(conn, f"pkill -f 'watchdog.py .*{run.run_id}'", check=False)
        lifecycle.close()
        shutil.rmtree(Path.home() / "pacerid" / run.run_id, ignore_errors=True)
