"""A word when a run ends: a desktop notification where one exists, and an optional webhook.

Someone watching a long run has usually looked away when it ends. The dashboard rings the bell
and shows a toast; this adds what reaches them elsewhere: `notify-send` (freedesktop) when it is
installed, else nothing (never an error), and a JSON POST to `notify.webhook_url` when the config
has one (Slack-style incoming webhooks, ntfy, a home server). Each ending is announced once: a
marker in the state folder remembers what was sent, so following a finished run again, or a
second dashboard, does not post twice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from pacerid_tui import paths
from pacerid_tui.core import atomic

WEBHOOK_TIMEOUT_S = 10.0
"""A webhook that does not answer in this long is given up (the toast has said it anyway)."""
DESKTOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Ending:
    """What the webhook receives (JSON): which run, how it ended, how good, what it cost."""

    run_id: str
    state: str
    """finished, failed, interrupted or over budget."""
    best_val_acc: float | None
    cost_usd: float
    message: str


def first_time(run_id: str, key: str) -> bool:
    """True the first time (run_id, key) is asked about, on this machine; remembers it."""
    path = paths.home() / "notices" / f"{run_id}.json"
    try:
        sent = set(json.loads(path.read_text()))
    except (OSError, ValueError):
        sent = set()
    if key in sent:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(sorted(sent | {key})))
    return True


def desktop(title: str, body: str) -> bool:
    """A desktop notification through notify-send when it exists; whether one was sent."""
    tool = shutil.which("notify-send")
    if tool is None:
        return False
    try:
        done = subprocess.run(
            [tool, "--app-name=pacerid-tui", title, body],
            capture_output=True,
            timeout=DESKTOP_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def post_webhook(url: str, ending: Ending) -> str | None:
    """POST the ending as JSON to `url`; None when it was accepted, else why not (a sentence)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(asdict(ending)).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "pacerid-tui"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as answer:
            answer.read()
    except urllib.error.HTTPError as err:
        return f"The webhook answered HTTP {err.code}; check notify.webhook_url."
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return f"The webhook could not be reached ({reason}); check notify.webhook_url."
    return None
