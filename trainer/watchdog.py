"""The host's dead-man switch: powers the machine off when nobody is watching and money runs.

Started detached by setup_host.sh, it needs nothing but the standard library and survives the
controller. On start it disarms the boot-time switch armed by the instance's user data
(pacerid_tui/core/boot.py) and owns the limits from then on. Every `poll_s` it checks, in this
order:

- max runtime: the host has been up `max_runtime_s`;
- budget: launched_at → now at the max price (an upper bound of the real cost) reaches the budget;
- idle: training has ended (done, failed, interrupted, or its process died) — or never started —
  and no controller heartbeat (RUN_DIR/heartbeat, touched over SSH) came for `idle_s`.

Powering off an EC2 instance launched with InstanceInitiatedShutdownBehavior=terminate ends it
(and its bill). On the local provider, "power off" stops the embedded SSH server, which stops
every process of the instance.

Usage: python watchdog.py RUN_DIR   (settings in RUN_DIR/watchdog.json, written by the controller)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENDED_PHASES = ("done", "error", "interrupted")
BOOT_DIR = "/run/pacerid"
"""The boot switch's folder on EC2 (PACERID_BOOT_DIR elsewhere); the same as core/boot.py's."""


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} watchdog: {message}", flush=True)


def read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def training_ended_at(run: Path, started: float) -> float | None:
    """When training stopped being alive (or the watchdog start if it never ran); None if alive."""
    status = read_json(run / "output" / "status.json")
    if not status:
        return started
    if status.get("phase") in ENDED_PHASES or not alive(status.get("pid")):
        return max(float(status.get("updated_at") or 0), started)
    return None


def reason_to_stop(run: Path, settings: dict[str, Any], started: float, now: float) -> str | None:
    launched = float(settings.get("launched_at") or started)
    max_runtime = settings.get("max_runtime_s")
    if max_runtime and now - launched >= float(max_runtime):
        return f"max runtime of {float(max_runtime):.0f} s reached"
    budget, price = settings.get("budget_usd"), settings.get("price_per_hour")
    if budget and price and (now - launched) / 3600 * float(price) >= float(budget):
        return f"budget of ${float(budget):.2f} reached at up to ${float(price):.3f}/h"
    idle = settings.get("idle_s")
    ended = training_ended_at(run, started)
    if idle and ended is not None:
        quiet_since = max(ended, mtime(run / "heartbeat"))
        if now - quiet_since >= float(idle):
            return f"training ended and no controller heartbeat for {float(idle):.0f} s"
    return None


def power_off() -> None:
    if os.environ.get("PACERID_POWEROFF") == "log-only":  # test hosts that are real machines
        log("PACERID_POWEROFF=log-only: not powering off")
        return
    server = os.environ.get("PACERID_SERVER_PID")
    if os.environ.get("PACERID_LOCAL_INSTANCE") and server:
        os.kill(int(server), signal.SIGTERM)
        return
    for command in (["sudo", "-n", "shutdown", "-h", "now"], ["shutdown", "-h", "now"]):
        if subprocess.run(command, check=False).returncode == 0:
            return
    log("could not power off (no sudo?); please terminate the instance yourself")


def disarm_boot_switch(run: Path) -> None:
    """Stand the boot-time dead-man switch down (pacerid_tui/core/boot.py): from now on this
    watchdog owns the limits. Its folder is absent on hosts not launched by us."""
    folder = Path(os.environ.get("PACERID_BOOT_DIR") or BOOT_DIR)
    if not folder.is_dir():
        return
    try:
        (folder / "disarmed").write_text(f"the watchdog of {run.name} took over\n")
    except OSError as err:
        log(f"could not disarm the boot switch ({err}); it powers off after its grace")
        return
    log("boot switch disarmed: this watchdog owns the limits now")


def main(argv: list[str]) -> int:
    run = Path(argv[1]).resolve()
    started = time.time()
    settings = read_json(run / "watchdog.json")
    poll = float(os.environ.get("PACERID_WATCHDOG_POLL_S") or settings.get("poll_s") or 15)
    log(f"watching {run} every {poll:.1f} s: {json.dumps(settings)}")
    disarm_boot_switch(run)
    while True:
        settings = read_json(run / "watchdog.json") or settings
        reason = reason_to_stop(run, settings, started, time.time())
        if reason:
            log(f"powering off: {reason}")
            (run / "output" / "poweroff.json").write_text(
                json.dumps({"reason": reason, "time": time.time()}) + "\n"
            )
            power_off()
            return 0
        time.sleep(poll)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
