"""The boot switch's loop itself (core/kernel/boot_switch.py), run by /bin/sh as the instance
runs it, with the local provider's power-off (SIGTERM to the "server": here a `sleep` of ours
standing in)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacerid_tui.core.kernel import boot_switch


@pytest.fixture
def server() -> Iterator[subprocess.Popen[bytes]]:
    """What the switch powers off: a process of ours that carries the instance's id in its
    environment, as the local provider's server does; killed by pid afterwards."""
    process = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, "PACERID_LOCAL_INSTANCE": "test"}
    )
    yield process
    process.kill()
    process.wait()


def start_switch(folder: Path, server_pid: int, grace: int) -> subprocess.Popen[bytes]:
    (folder / "switch.sh").write_text(boot_switch.SWITCH)
    env = {**os.environ, "PACERID_LOCAL_INSTANCE": "test", "PACERID_SERVER_PID": str(server_pid)}
    return subprocess.Popen(
        ["/bin/sh", str(folder / "switch.sh"), str(folder), str(grace), "1"], env=env
    )


def test_a_heartbeat_restarts_the_grace_then_silence_powers_off(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    (tmp_path / "armed").write_text(f"{int(time.time()) - 100}\n")  # long past its grace
    (tmp_path / "heartbeat").touch()
    touched = time.time()
    switch = start_switch(tmp_path, server.pid, grace=3)
    assert server.wait(timeout=60) == -15  # SIGTERM: the local "power off"
    # Not before the heartbeat's grace was over (whole seconds: at least grace - 1).
    assert time.time() - touched >= 2
    assert switch.wait(timeout=30) == 0
    assert "no watchdog and no controller for 3 s" in (tmp_path / "poweroff").read_text()


def test_a_pid_that_is_no_longer_the_server_is_left_alone(tmp_path: Path) -> None:
    """Pids are reused: after its grace the switch ends a process only if it is still this
    instance's server (its environment says so), never whatever now holds that pid."""
    stranger = subprocess.Popen(["sleep", "600"])
    try:
        (tmp_path / "armed").write_text(f"{int(time.time()) - 100}\n")
        switch = start_switch(tmp_path, stranger.pid, grace=1)
        assert switch.wait(timeout=30) == 0
        assert (tmp_path / "poweroff").exists()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_once_disarmed_the_switch_stands_down(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    (tmp_path / "armed").write_text(f"{int(time.time()) - 100}\n")
    (tmp_path / "disarmed").write_text("the watchdog of run-1 took over\n")
    switch = start_switch(tmp_path, server.pid, grace=3)
    assert switch.wait(timeout=30) == 0
    assert server.poll() is None
    assert not (tmp_path / "poweroff").exists()


def test_the_user_data_arms_the_switch_and_keeps_the_max_runtime_timer() -> None:
    script = boot_switch.user_data(0.2, max_runtime_minutes=90.5)
    assert script.startswith("#!/bin/sh\n")
    assert '"$dir/switch.sh" "$dir" 12 1' in script  # 0.2 min = 12 s, polled every second
    assert script.endswith("shutdown -h +91 'pacerid: instance.max_runtime_minutes reached'\n")
    assert "shutdown" not in boot_switch.user_data(30).split("PACERID_SWITCH\n")[-1]
    done = subprocess.run(["/bin/sh", "-n"], input=script, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
