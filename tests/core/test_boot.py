"""The boot switch's loop itself (core/kernel/boot_switch.py), run by /bin/sh as the instance runs
it, with the local provider's power-off (SIGTERM to the "server": here a `sleep` of ours standing
in) and a boot id of the test's choosing (PACERID_BOOT_ID, as the local provider names its
boots)."""

from __future__ import annotations

import os
import shutil
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


def arm(folder: Path, at: float, before: int = 0, boot_id: str = "boot-2") -> None:
    """What the per-boot script records: this boot, when it was armed, the earlier running s."""
    (folder / "armed").write_text(f"{boot_id}\n{int(at)}\n{before}\n")


def start_switch(
    folder: Path, server_pid: int, grace: int, max_s: int = 0, after_s: int = 0
) -> subprocess.Popen[bytes]:
    (folder / "switch.sh").write_text(boot_switch.SWITCH)
    env = {
        **os.environ,
        "PACERID_LOCAL_INSTANCE": "test",
        "PACERID_SERVER_PID": str(server_pid),
        "PACERID_BOOT_ID": "boot-2",
    }
    argv = [str(folder), str(grace), "1", str(max_s), str(after_s)]
    return subprocess.Popen(["/bin/sh", str(folder / "switch.sh"), *argv], env=env)


def test_a_heartbeat_restarts_the_grace_then_silence_powers_off(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    arm(tmp_path, time.time() - 100)  # long past its grace
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
        arm(tmp_path, time.time() - 100)
        switch = start_switch(tmp_path, stranger.pid, grace=1)
        assert switch.wait(timeout=30) == 0
        assert (tmp_path / "poweroff").exists()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_once_disarmed_in_this_boot_the_switch_stands_down(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """The watchdog's disarm may land before this boot's arming (its boot unit can run before
    cloud-init's final stage): it names the boot, so it holds."""
    arm(tmp_path, time.time() - 100)
    (tmp_path / "disarmed").write_text("boot-2\nthe watchdog of run-1 took over\n")
    switch = start_switch(tmp_path, server.pid, grace=3)
    assert switch.wait(timeout=30) == 0
    assert server.poll() is None
    assert not (tmp_path / "poweroff").exists()


def test_a_disarm_from_an_earlier_boot_is_void(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """A stop-mode host stopped before its watchdog started again: last boot's disarm on disk
    must not stand this boot's switch down."""
    arm(tmp_path, time.time())
    (tmp_path / "disarmed").write_text("boot-1\nthe watchdog of run-1 took over\n")
    start_switch(tmp_path, server.pid, grace=2)
    assert server.wait(timeout=60) == -15
    assert "no watchdog and no controller" in (tmp_path / "poweroff").read_text()


def test_max_runtime_counts_the_running_time_of_earlier_boots(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """100 s ran before this boot; a 102 s max runtime leaves two, whatever wall time passed
    while the host was stopped. Each poll saves the total for the next boot."""
    armed = time.time()
    arm(tmp_path, armed, before=100)
    start_switch(tmp_path, server.pid, grace=600, max_s=102)
    assert server.wait(timeout=60) == -15
    assert time.time() - armed >= 1  # not before the two seconds left (whole seconds)
    reason = (tmp_path / "poweroff").read_text()
    assert "max runtime of 102 s of running time reached" in reason
    assert int((tmp_path / "running_s").read_text()) >= 102


def test_after_the_watchdog_took_over_max_runtime_waits_for_it(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """Disarmed, the switch still holds max runtime, `after` seconds later: the watchdog ends a
    stop-mode run better, but a dead watchdog must not leave the host running."""
    armed = time.time()
    arm(tmp_path, armed, before=100)
    (tmp_path / "disarmed").write_text("boot-2\nthe watchdog of run-1 took over\n")
    start_switch(tmp_path, server.pid, grace=1, max_s=101, after_s=3)
    assert server.wait(timeout=60) == -15
    assert time.time() - armed >= 3  # 1 s to max runtime, 3 more for the watchdog (less 1)
    assert "max runtime" in (tmp_path / "poweroff").read_text()


def test_the_user_data_installs_the_switch_for_every_boot_and_arms_this_one(
    tmp_path: Path, server: subprocess.Popen[bytes]
) -> None:
    """User data runs once (EC2 User Guide, "Work with instance user data"); cloud-init runs
    /var/lib/cloud/scripts/per-boot/* at every boot, before the user data's script at the first
    ("Run commands when you launch an EC2 instance with user data input"; cloud.cfg's
    cloud_final_modules). The state lives on disk, not in /run; no `shutdown -h +N`."""
    script = boot_switch.user_data(0.2, max_runtime_minutes=90.5)
    assert script.startswith("#!/bin/sh\n")
    assert "shutdown -h +" not in script and "/run/pacerid" not in script
    assert 'dir="${PACERID_BOOT_DIR:-/var/lib/pacerid}"' in script
    assert 'per_boot="${PACERID_CLOUD_DIR:-/var/lib/cloud}/scripts/per-boot"' in script
    assert '"$dir/switch.sh" "$dir" 12 1 5430 120' in script  # grace, poll, max runtime, after
    folder, cloud = tmp_path / "boot", tmp_path / "cloud"
    per_boot = cloud / "scripts" / "per-boot" / "pacerid-boot-switch.sh"

    def booting(boot_id: str, *command: str) -> None:
        env = {
            **os.environ,
            "PACERID_BOOT_DIR": str(folder),
            "PACERID_CLOUD_DIR": str(cloud),
            "PACERID_LOCAL_INSTANCE": "test",
            "PACERID_SERVER_PID": str(server.pid),
            "PACERID_BOOT_ID": boot_id,
        }
        subprocess.run(command, env=env, check=True, timeout=30)
        assert (folder / "armed").read_text().splitlines()[0] == boot_id

    try:
        booting("boot-1", "/bin/sh", "-c", script)  # the first boot runs the user data
        assert os.access(per_boot, os.X_OK)
        booting("boot-1", str(per_boot))  # run again in the same boot: armed already
        booting("boot-2", str(per_boot))  # the next boot: cloud-init's per-boot pass
        deadline = time.monotonic() + 30
        while (folder / "switch.log").read_text().count("armed:") < 2:
            assert time.monotonic() < deadline, "the second boot's switch never started"
            time.sleep(0.1)
        time.sleep(1)
        assert (folder / "switch.log").read_text().count("armed:") == 2  # one a boot
    finally:
        shutil.rmtree(folder)  # a local instance's switch ends when its folder is gone
