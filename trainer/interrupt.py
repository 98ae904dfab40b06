"""Stop requests: SIGTERM/SIGINT and the EC2 spot interruption notice.

AWS gives a spot instance about two minutes' notice through the instance metadata service; a
thread polls it (IMDSv2: a session token, then GET spot/instance-action, 404 until the instance
is marked). A notice or a signal only sets a flag; the training loop looks at it between steps,
finishes the step in hand, writes a checkpoint and exits with EXIT_INTERRUPTED.

Where to poll: PACERID_IMDS_URL (a base URL such as http://127.0.0.1:8123, or `off`); when it is
unset, http://169.254.169.254 but only on EC2, so a laptop or CI box never probes that address.
PACERID_IMDS_POLL_SECONDS changes the 5-second interval AWS recommends.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

EC2_METADATA_URL = "http://169.254.169.254"
POLL_SECONDS = 5.0  # AWS's recommendation; the notice comes ~120 s ahead
REQUEST_TIMEOUT = 2.0  # the service is link-local: slower than this means it is not there
TOKEN_TTL_SECONDS = 21600
NOTICE_PATH = "/latest/meta-data/spot/instance-action"

# The metadata service is never reached through an HTTP proxy, whatever the environment says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

log = logging.getLogger(__name__)


class StopFlag:
    """Set once by whichever comes first: a signal or a spot notice; `reason` says which."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


def catch_signals(flag: StopFlag) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        flag.set(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def metadata_url() -> str | None:
    configured = os.environ.get("PACERID_IMDS_URL", "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return configured.rstrip("/")
    return EC2_METADATA_URL if on_ec2() else None


def on_ec2() -> bool:
    for path in ("/sys/class/dmi/id/board_vendor", "/sys/class/dmi/id/sys_vendor"):
        try:
            if "amazon" in Path(path).read_text().lower():
                return True
        except OSError:
            continue
    return False


def watch_spot_notice(flag: StopFlag, base_url: str) -> threading.Thread:
    """Poll `base_url` in a daemon thread until a notice arrives or the flag is set."""
    interval = float(os.environ.get("PACERID_IMDS_POLL_SECONDS", POLL_SECONDS))

    def poll() -> None:
        token: str | None = None
        while not flag.event.wait(interval):
            try:
                token = token or fetch_token(base_url)
                notice = fetch_notice(base_url, token)
            except urllib.error.HTTPError as err:
                if err.code == 401:
                    token = None  # expired session token: get a new one next round
                continue
            except (OSError, ValueError):
                continue
            if notice is not None:
                flag.set(f"spot interruption notice: {notice}")

    thread = threading.Thread(target=poll, name="spot-notice", daemon=True)
    thread.start()
    log.info("Watching for spot interruption notices at %s.", base_url)
    return thread


def fetch_token(base_url: str) -> str:
    request = urllib.request.Request(
        base_url + "/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
    )
    with OPENER.open(request, timeout=REQUEST_TIMEOUT) as response:
        return str(response.read().decode())


def fetch_notice(base_url: str, token: str) -> str | None:
    """The notice body, or None while there is none (404)."""
    request = urllib.request.Request(
        base_url + NOTICE_PATH, headers={"X-aws-ec2-metadata-token": token}
    )
    try:
        with OPENER.open(request, timeout=REQUEST_TIMEOUT) as response:
            return str(response.read().decode()).strip()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise
