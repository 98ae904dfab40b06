"""The host's dead-man switch: powers the machine off when nobody is watching and money runs.

Started detached by setup_host.sh, it survives the controller. On start it disarms the boot-time
switch for this boot (pacerid_tui/core/kernel/boot_switch.py, installed by the instance's user
data to run at every boot) and owns the limits from then on. Every poll (15 s;
PACERID_WATCHDOG_POLL_S) it checks, in this order:

- max runtime: the host has run `max_runtime_s`;
- budget: launched_at → now at the max price (an upper bound of the real cost) reaches the budget;
- idle: training has ended (done, failed, interrupted, or its process died) — or never started —
  and no controller heartbeat (RUN_DIR/heartbeat, touched over SSH) came for `idle_s`;
- stall (stall.py): the live trainer made no step for `stall_s`, its loss is not finite, or its
  GPU idled that long: a `stall` event told once, and with `on_stall: stop` the run ended as the
  budget bound ends it, after the trainer was asked to save and a following controller had
  time to download.

Powering off an EC2 instance launched with InstanceInitiatedShutdownBehavior=terminate ends it
(and its bill). On the local provider, "power off" stops the embedded SSH server, which stops
every process of the instance.

With `instance.interruption: stop` (watchdog.json names the host's `spot_request_id`), EC2 may
stop the host and start it again; the boot service (boot_service.sh) restarts this watchdog
at every boot. Limits then count running time only (kept in RUN_DIR/watchdog.state.json across
boots), and ending the run means: cancel the spot request, then terminate this instance, with
boto3 in the run's own Python (the Deep Learning AMIs ship it in the image env; their AWS CLI
is not on a systemd unit's PATH) and the instance role's credentials, which boto3's own chain
takes from the instance metadata over IMDSv2 (pacerid_tui/core/cloud/aws_role.py: those two
calls only). A persistent request whose instance is terminated uncancelled would launch a fresh
one. If either call fails it powers off, which in stop mode stops (never terminates) the
instance, so no relaunch can follow; the controller finishes the clean-up when it next runs.
Setup runs `--check` first: a DryRun of both calls, so a host that could not end its own run
never starts training.

Usage: python watchdog.py RUN_DIR [--check]   (settings in RUN_DIR/watchdog.json, written by
the controller)

watchdog.json is a contract between two programs that never import each other: its keys are
defined once, here (`WatchdogSettings`), and the controller writes them through its mirror
(pacerid_tui/core/remote/host_contract.py), which tests/core/test_watchdog_contract.py holds
field by field to this one. A file with a key missing or unknown is refused in one sentence:
`--check` (setup, before training) fails with it, and a watchdog that cannot read its limits
never disarms the boot switch, which then powers the host off after its grace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

if not __package__:  # run as a script on the host (setup_host.sh): the package is one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from trainer.stall import StallWatch, alive, mtime, read_json

ENDED_PHASES = ("done", "error", "interrupted")
BOOT_DIR = "/var/lib/pacerid"
"""The boot switch's folder on EC2 (PACERID_BOOT_DIR elsewhere); the same as
pacerid_tui/core/kernel/boot_switch.py's."""
API_ATTEMPTS = 4
"""Tries per AWS call (botocore's standard mode retries throttling and server errors only)."""
IMDS_ATTEMPTS = "3"
"""Tries per instance-metadata request for the role's credentials (botocore's default is one,
with a 1 s timeout: a busy host may miss it)."""


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} watchdog: {message}", flush=True)


@dataclass(frozen=True)
class WatchdogSettings:
    """watchdog.json: the limits this host enforces, and its own ids in stop mode."""

    launched_at: float | None = None
    """Epoch seconds of the instance's launch (None: the watchdog's own start)."""
    max_runtime_s: float | None = None
    idle_s: float | None = None
    """How long training may be over with no controller heartbeat (None or 0: never)."""
    budget_usd: float | None = None
    """What is left of the run's budget for this host (None or 0: no budget)."""
    spent_usd: float = 0.0
    """The run's cost on its earlier instances (already taken out of `budget_usd`)."""
    price_per_hour: float | None = None
    """An upper bound of this host's price: spot never bills above its max price."""
    spot_request_id: str | None = None
    """Stop mode only: the spot request this host cancels before terminating itself."""
    instance_id: str | None = None
    region: str | None = None
    stall_s: float | None = None
    """No training step for this long is a stall (stall.py); None: the host's own default."""
    on_stall: str = "notify"
    """What a stall does: `notify` (a stall event) or `stop` (saved, then the run ended)."""


class SettingsError(ValueError):
    """watchdog.json is unreadable or does not hold exactly WatchdogSettings' keys."""


def read_settings(path: Path) -> WatchdogSettings:
    """The settings in `path`, or SettingsError with one sentence saying what is wrong."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SettingsError(f"{path} is not readable JSON ({err}); run setup again.") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path} holds no JSON object; run setup again.")
    known = {field.name for field in fields(WatchdogSettings)}
    missing, unknown = sorted(known - raw.keys()), sorted(raw.keys() - known)
    if missing or unknown:
        raise SettingsError(
            f"{path} does not match this watchdog (missing: {', '.join(missing) or 'none'}; "
            f"unknown: {', '.join(unknown) or 'none'}); upload and set up again so that the "
            "controller and the host run the same version."
        )
    return WatchdogSettings(**raw)


def training_session() -> bool:
    """tmux session `training` exists: a trainer runs or is starting there (a resume at boot
    runs before the new process has written its status.json)."""
    try:
        found = subprocess.run(
            ["tmux", "has-session", "-t", "training"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0


def training_ended_at(run: Path, started: float) -> float | None:
    """When training stopped being alive (or the watchdog start if it never ran); None if alive."""
    if training_session():
        return None
    status = read_json(run / "output" / "status.json")
    if not status:
        return started
    if status.get("phase") in ENDED_PHASES or not alive(status.get("pid")):
        return max(float(status.get("updated_at") or 0), started)
    return None


class RunningTime:
    """Seconds this host has run since launch, stopped stretches left out: the count is saved
    each poll, so a boot after a stop goes on from it (losing at most one poll)."""

    def __init__(self, run: Path, launched: float, now: float) -> None:
        self.path = run / "watchdog.state.json"
        saved = read_json(self.path).get("running_s")
        self.base = float(saved) if isinstance(saved, int | float) else max(now - launched, 0.0)
        self.since = time.monotonic()

    def seconds(self) -> float:
        return self.base + time.monotonic() - self.since

    def save(self) -> None:
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(json.dumps({"running_s": round(self.seconds(), 1)}) + "\n")
        os.replace(partial, self.path)


def reason_to_stop(
    run: Path,
    settings: WatchdogSettings,
    started: float,
    now: float,
    running_s: float | None = None,
) -> str | None:
    """Why the run must end now, or None. `running_s`: the host's running time (default:
    wall time since launch)."""
    launched = float(settings.launched_at or started)
    running = now - launched if running_s is None else running_s
    max_runtime = settings.max_runtime_s
    if max_runtime and running >= float(max_runtime):
        return f"max runtime of {float(max_runtime):.0f} s reached"
    budget, price = settings.budget_usd, settings.price_per_hour
    if budget and price and running / 3600 * float(price) >= float(budget):
        return f"budget of ${float(budget):.2f} reached at up to ${float(price):.3f}/h"
    idle = settings.idle_s
    ended = training_ended_at(run, started)
    if idle and ended is not None:
        quiet_since = max(ended, mtime(run / "heartbeat"))
        if now - quiet_since >= float(idle):
            return f"training ended and no controller heartbeat for {float(idle):.0f} s"
    return None


def local_server_alive(pid: int, instance: str) -> bool:
    """Whether pid is still the local instance's SSH server (its environment names it)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"PACERID_LOCAL_INSTANCE={instance}".encode() in environ


def power_off() -> None:
    if os.environ.get("PACERID_POWEROFF") == "log-only":  # test hosts that are real machines
        log("PACERID_POWEROFF=log-only: not powering off")
        return
    server = os.environ.get("PACERID_SERVER_PID")
    instance = os.environ.get("PACERID_LOCAL_INSTANCE")
    if instance and server:
        if local_server_alive(int(server), instance):  # a pid can be reused: check it is ours
            os.kill(int(server), signal.SIGTERM)
        return
    for command in (["sudo", "-n", "shutdown", "-h", "now"], ["shutdown", "-h", "now"]):
        if subprocess.run(command, check=False).returncode == 0:
            return
    log("could not power off (no sudo?); please terminate the instance yourself")


def ec2_client(region: object) -> Any:
    """boto3's EC2 client with the default credential chain: on EC2 the instance profile's
    credentials over IMDSv2 (AWS_ENDPOINT_URL_EC2 and AWS_EC2_METADATA_SERVICE_ENDPOINT move the
    endpoints, as the local provider does). Imported here: only stop mode calls AWS."""
    os.environ.setdefault("AWS_METADATA_SERVICE_NUM_ATTEMPTS", IMDS_ATTEMPTS)
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": API_ATTEMPTS},
        connect_timeout=10,
        read_timeout=30,
    )
    return boto3.client("ec2", region_name=str(region) if region else None, config=config)


def code_of(err: Exception) -> str:
    """EC2's error code of a botocore ClientError ("" for any other failure)."""
    response = getattr(err, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def why(err: Exception) -> str:
    """An AWS failure in a few words: EC2's code and message, or botocore's sentence."""
    if code_of(err):
        message = str(getattr(err, "response", {})["Error"].get("Message", "")).rstrip(".")
        return f"{code_of(err)}: {message}"
    if isinstance(err, ImportError):
        return f"boto3 is not installed in this Python ({sys.executable})"
    return str(err) or type(err).__name__


def own_calls(settings: WatchdogSettings) -> list[tuple[str, str, dict[str, Any]]]:
    """The calls that end this host's run, in order: (EC2 action, boto3 method, arguments)."""
    request, instance = str(settings.spot_request_id), str(settings.instance_id)
    return [
        (
            "CancelSpotInstanceRequests",
            "cancel_spot_instance_requests",
            {"SpotInstanceRequestIds": [request]},
        ),
        ("TerminateInstances", "terminate_instances", {"InstanceIds": [instance]}),
    ]


def check_role(settings: WatchdogSettings) -> str | None:
    """None when this host may end its own run through AWS, else why not. Each call is made with
    DryRun (EC2 API reference, "DryRun": the answer is the error DryRunOperation when the caller
    has the permissions, UnauthorizedOperation otherwise), so nothing changes."""
    try:
        ec2 = ec2_client(settings.region)
    except ImportError as err:
        return why(err)
    for action, method, args in own_calls(settings):
        try:
            getattr(ec2, method)(DryRun=True, **args)
        except Exception as err:  # no credentials, a refusal, the network: all one
            if code_of(err) == "DryRunOperation":
                continue
            return f"{action} failed ({why(err)})"
        return f"{action} answered as if DryRun were not set"
    return None


def end_run(settings: WatchdogSettings) -> None:
    """Stop mode: cancel the spot request, then terminate; otherwise (or on failure) power off."""
    if settings.spot_request_id and settings.instance_id:
        try:
            ec2 = ec2_client(settings.region)
            for _action, method, args in own_calls(settings):
                getattr(ec2, method)(**args)
        except Exception as err:  # whatever failed, the way out is the same
            log(f"could not end the run through AWS ({why(err)})")
            log("powering off, which stops this instance")
        else:
            log(
                f"spot request {settings.spot_request_id} cancelled and "
                f"{settings.instance_id} terminated"
            )
            return
    power_off()


def boot_id() -> str:
    """This boot's id as the boot switch reads it: the kernel's, or the local provider's."""
    given = os.environ.get("PACERID_BOOT_ID")
    return given or Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def disarm_boot_switch(run: Path) -> None:
    """Stand the boot-time dead-man switch down for this boot
    (pacerid_tui/core/kernel/boot_switch.py): from now on this watchdog owns the limits. Its
    folder is absent on hosts not launched by us."""
    folder = Path(os.environ.get("PACERID_BOOT_DIR") or BOOT_DIR)
    if not folder.is_dir():
        return
    try:
        partial = folder / "disarmed.tmp"
        partial.write_text(f"{boot_id()}\nthe watchdog of {run.name} took over\n")
        os.replace(partial, folder / "disarmed")
    except OSError as err:
        log(f"could not disarm the boot switch ({err}); it powers off after its grace")
        return
    log("boot switch disarmed: this watchdog owns the limits now")


def check(settings: WatchdogSettings) -> int:
    """`--check`, run by setup before training: exit 1 with one sentence when this stop-mode
    host could not end its own run."""
    if not settings.spot_request_id:
        return 0  # no spot request: ending the run is a power-off
    problem = check_role(settings)
    if problem:
        print(
            f"This host cannot end its own run through AWS: {problem}. Stop mode needs boto3 in "
            "the image's Python and the instance role pacerid-ml-host; launch again, or set "
            "instance.interruption: relaunch.",
            flush=True,
        )
        return 1
    print("The host may end its own run (DryRun of both calls allowed by its role).", flush=True)
    return 0


def main(argv: list[str]) -> int:
    run = Path(argv[1]).resolve()
    started = time.time()
    try:
        settings = read_settings(run / "watchdog.json")
    except SettingsError as err:
        print(f"watchdog: {err}", flush=True)  # setup's --check shows it; no limits, no disarm
        return 1
    if argv[2:] == ["--check"]:
        return check(settings)
    poll = float(os.environ.get("PACERID_WATCHDOG_POLL_S") or 15)
    log(f"watching {run} every {poll:.1f} s: {json.dumps(asdict(settings))}")
    disarm_boot_switch(run)
    running = RunningTime(run, float(settings.launched_at or started), started)
    stalls = StallWatch(run, log)
    while True:
        try:  # read again each poll (a controller may tighten them); a bad file keeps the last
            settings = read_settings(run / "watchdog.json")
        except SettingsError as err:
            log(f"keeping the last limits: {err}")
        reason = reason_to_stop(run, settings, started, time.time(), running.seconds())
        reason = reason or stalls.check(settings.stall_s, settings.on_stall, time.time())
        running.save()
        if reason:
            log(f"ending the run: {reason}")
            (run / "output" / "poweroff.json").write_text(
                json.dumps({"reason": reason, "time": time.time()}) + "\n"
            )
            end_run(settings)
            return 0
        time.sleep(poll)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
