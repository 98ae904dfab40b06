"""A word when a run ends: a desktop notification where one exists, and an optional webhook.

Someone watching a long run has usually looked away when it ends. The run's supervisor tells
each ending once (`Listener.ended`, a `Notice` made here by `of_event` or `BUDGET`), a stall
the host found (`of_stall`), whether or not it ends the run, and the news while a run goes on at
once (`Listener.noticed`: its forecast passes its budget, `ahead_of_budget`); the dashboard
shows each as a toast and the bell, the CLI as a line and the bell, and both hand it to `tell`,
which adds what reaches them elsewhere: `notify-send` (freedesktop) when it is installed, else
nothing (never an error), and a JSON POST to `notify.webhook_url` when the config has one (with
a ready-made `text` and `content`, so Slack-, Mattermost- and Discord-style incoming webhooks
show it without a relay; ntfy, a home server). Each notice is announced once: a marker in the
state folder remembers what was sent, so following a finished run again, or a second dashboard,
does not post twice; a run followed by both at once is still announced once (the marker is
updated under a lock for that).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import math
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass

from pacerid_tui import paths
from pacerid_tui.core.kernel import atomic
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import MetricEvent, Notice
from pacerid_tui.core.steps.budget_rule import STOP_REASON
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.status import RunStatus

WEBHOOK_TIMEOUT_S = 10.0
"""A webhook that does not answer in this long is given up (the toast has said it anyway)."""
DESKTOP_TIMEOUT_S = 5.0
STATES = {"done": "finished", "error": "failed", "interrupted": "interrupted"}
"""The terminal metrics events, and the state an ending of each is announced as."""
OSC9_TERMINALS = ("iTerm.app", "WezTerm", "ghostty")
"""TERM_PROGRAM values of terminals that show OSC 9 as a desktop notification."""


@dataclass(frozen=True)
class Ending:
    """What the webhook receives (JSON): which run, how it ended, how good, what it cost."""

    run_id: str
    state: str
    """finished, failed, interrupted, over budget or stalled."""
    best_val_acc: float | None
    cost_usd: float
    message: str


BUDGET = Notice("over budget", f"stopped: {STOP_REASON}", "budget")
AHEAD_OF_BUDGET = "budget short"
"""The state of the notice that a running run's forecast passes its budget."""
CHAT_TEXT_LIMIT = 2000
"""Discord refuses a `content` over 2,000 characters (Slack's `text` takes far more)."""


def ahead_of_budget(row: RunStatus, budget_usd: float) -> Notice:
    """The notice that the run's forecast passes its budget (`row.budget_epoch` set): the epoch
    the budget would stop it in, and the two ways out, both for a new run (a run's config is
    frozen at launch): fewer epochs, or a budget that covers the forecast."""
    stop_epoch = row.budget_epoch or 1
    forecast = row.forecast_usd or budget_usd
    fewer = max(stop_epoch - 1, 1)
    enough = math.ceil(forecast * 110) / 100  # a tenth over the forecast: the pace wobbles
    text = (
        f"at this pace the ${budget_usd:.2f} budget runs out during epoch {stop_epoch} of "
        f"{row.epochs or '?'} (forecast ${forecast:.2f} by the last epoch), and the run will "
        f"be stopped there; to finish, start a new run with `--set training.epochs={fewer}` "
        f"or with a higher budget (`--set instance.budget_usd={enough:.2f}`)"
    )
    return Notice(AHEAD_OF_BUDGET, text, "forecast")  # once per run, whatever the pace says


def of_stall(event: MetricEvent, stop: bool, best_val_acc: float | None = None) -> Notice:
    """The notice of the host's `stall` event (trainer/stall.py): why, and what follows."""
    then = "saving, then terminating" if stop else "still running (instance.on_stall: notify)"
    return Notice(
        "stalled", f"stalled: {event.message}; {then}", f"stall@{event.time}", best_val_acc
    )


def of_event(event: MetricEvent, best_val_acc: float | None = None) -> Notice | None:
    """The notice of a terminal metrics event ("done", "error", "interrupted"), else None."""
    state = STATES.get(event.event)
    if state is None:
        return None
    text = f"training {state}" + (f": {event.message}" if event.event == "error" else "")
    return Notice(state, text, f"{event.event}@{event.time}", best_val_acc)


async def tell(
    lifecycle: Lifecycle, run_id: str, notice: Notice, terminal: Callable[[str], None]
) -> str | None:
    """The once-per-ending channels for a notice a face has shown (`announce`), with the run's
    cost as of now and its webhook: None, or one sentence on what went wrong (a webhook that
    failed, a run whose record or config is gone). Files are read in a thread."""
    try:
        run = await asyncio.to_thread(lifecycle.registry.get, run_id)
        webhook = (await asyncio.to_thread(lifecycle.config_of, run)).notify.webhook_url
        [row] = await lifecycle.statuses([run])
    except (PaceridError, OSError) as err:  # the run's own error, if any, is the news
        return f"No notice sent for {run_id}: {err}"
    best = notice.best_val_acc if notice.best_val_acc is not None else run.val_acc
    ending = Ending(run_id, notice.state, best, round(row.cost_usd, 4), notice.text)
    return await asyncio.to_thread(announce, ending, notice.key, webhook, terminal)


def first_time(run_id: str, key: str) -> bool:
    """True the first time (run_id, key) is asked about, on this machine; remembers it.

    Read, check and write hold an exclusive lock: a dashboard and a CLI following the same run
    see its end within milliseconds of each other, and only one of them may post.
    """
    path = paths.home() / "notices" / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            sent = set(json.loads(path.read_text()))
        except (OSError, ValueError):
            sent = set()
        if key in sent:
            return False
        atomic.write_text(path, json.dumps(sorted(sent | {key})))
        return True
    finally:
        os.close(lock)  # closing releases the lock


def osc9(text: str) -> str | None:
    """The OSC 9 escape that shows `text` as a desktop notification, on terminals known to."""
    if os.environ.get("TERM_PROGRAM") not in OSC9_TERMINALS:
        return None
    clean = "".join(c for c in text if c.isprintable())  # no escape can end it early
    return f"\x1b]9;{clean}\x07"


def announce(
    ending: Ending, key: str, webhook_url: str | None, terminal: Callable[[str], None]
) -> str | None:
    """The once-per-ending channels (blocking: call it from a thread): unless `key` was already
    announced for this run, a desktop notification (notify-send, else OSC 9 written through
    `terminal`) and the webhook. None, or the one sentence saying why the webhook failed."""
    if not first_time(ending.run_id, key):
        return None
    title, body = headline(ending)
    if not desktop(title, body):
        escape = osc9(f"{title}: {body}")
        if escape is not None:
            terminal(escape)
    return post_webhook(webhook_url, ending) if webhook_url else None


def headline(ending: Ending) -> tuple[str, str]:
    """The notice as a person reads it: a title and one line of body."""
    title = f"pacerid-tui: {ending.run_id} {ending.state}"
    body = ending.message + (
        f" (best val acc {ending.best_val_acc:.1%})" if ending.best_val_acc is not None else ""
    )
    return title, body


def webhook_body(ending: Ending) -> dict[str, object]:
    """The webhook's JSON: the ending's fields, and the notice ready to show as `text` (Slack,
    Mattermost) and `content` (Discord), so their incoming webhooks need no relay."""
    title, body = headline(ending)
    said = f"{title}: {body} · ${ending.cost_usd:.2f} spent"[:CHAT_TEXT_LIMIT]
    return {**asdict(ending), "text": said, "content": said}


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
        data=json.dumps(webhook_body(ending)).encode(),
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
