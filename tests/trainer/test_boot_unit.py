"""setup_host.sh's boot unit on an EC2-shaped host (not a local instance): in stop mode the
unit file is written with sudo, then systemd reloads and enables it. `sudo` and `systemctl` are
stand-ins on PATH that record their arguments (sudo runs the rest of its command, as the
DLAMIs' passwordless sudo does); the unit folder is moved with PACERID_UNIT_DIR."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[2] / "trainer"


def recorder(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{folder}/calls"\n{body}\n')
    path.chmod(0o755)


def setup(tmp_path: Path, stop_mode: bool) -> tuple[subprocess.CompletedProcess[str], Path]:
    run, fakes, units = tmp_path / "run", tmp_path / "fakes", tmp_path / "units"
    shutil.copytree(TRAINER, run / "code" / "trainer")
    shutil.copyfile(TRAINER.parent / "configs" / "local.yaml", run / "code" / "run.yaml")
    fakes.mkdir()
    units.mkdir()
    recorder(fakes, "sudo", '[ "$1" = -n ] && shift; exec "$@"')
    recorder(fakes, "systemctl", "exit 0")
    if stop_mode:
        (run / "resume.sh").write_text("# the command `t` sends (core/steps/stop_mode.py)\n")
    env = {k: v for k, v in os.environ.items() if k != "PACERID_LOCAL_INSTANCE"}
    env.update(
        PATH=f"{fakes}:{env['PATH']}", PACERID_PYTHON=sys.executable, PACERID_UNIT_DIR=str(units)
    )
    done = subprocess.run(
        ["bash", str(run / "code" / "trainer" / "setup_host.sh"), str(run)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, tmp_path


def test_stop_mode_writes_and_enables_the_boot_unit(tmp_path: Path) -> None:
    done, root = setup(tmp_path, stop_mode=True)
    assert done.returncode == 0, done.stdout + done.stderr
    unit = (root / "units" / "pacerid-resume.service").read_text()
    run = root / "run"
    [exec_start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert shlex.split(exec_start.removeprefix("ExecStart=")) == [
        "/bin/bash",
        str(run / "code" / "trainer" / "boot_service.sh"),
        str(run),
    ]
    assert "Type=oneshot" in unit and "RemainAfterExit=yes" in unit
    assert f"User={subprocess.getoutput('id -un')}" in unit
    assert "After=network-online.target" in unit and "WantedBy=multi-user.target" in unit
    calls = (root / "fakes" / "calls").read_text().splitlines()
    assert calls == [
        f"sudo -n tee {root / 'units' / 'pacerid-resume.service'}",
        "sudo -n systemctl daemon-reload",
        "systemctl daemon-reload",
        "sudo -n systemctl enable pacerid-resume.service",
        "systemctl enable pacerid-resume.service",
    ]


def test_relaunch_mode_installs_no_boot_unit(tmp_path: Path) -> None:
    done, root = setup(tmp_path, stop_mode=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((root / "units").iterdir()) == []
    assert not (root / "fakes" / "calls").exists()
