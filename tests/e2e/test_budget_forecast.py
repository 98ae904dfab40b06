"""The cost to finish, on the local provider (issue 26, item 2): a run whose budget runs out
mid-way is told so before the budget stops it, with the epoch it will stop in, once, and the
webhook gets exactly one POST for it, its `text` and `content` ready for a chat's incoming
webhook. The stop itself comes later, as ever.

The local provider's simulated spot price (`LocalProvider.set_price`) is set once the first
epoch's pace is known, so that the money runs out about three epochs later whatever this
machine's speed: the test cannot know that speed beforehand, and a budget set at launch would
stop a fast machine's run after its end and a slow one's before its first epoch.

The supervisor follows (and has measured two epochs) before the price is set: the runway is a
few epochs of seconds, and a supervisor started after the price spent it on its own start
(connecting, reconciling) under `make test`'s three workers on 2 cores, so the run reached its
stop with no forecast told (CI, 2026-12-07).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pacerid_tui.cli.commands import Printer
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.forecast import seconds_per_epoch
from pacerid_tui.core.kernel.models import Notice, Run
from pacerid_tui.core.steps.status import PriceCache
from pacerid_tui.core.supervise import notify
from pacerid_tui.core.supervise.supervisor import Supervisor
from tests.conftest import TakeRun
from tests.core.test_notify import webhook_receiver
from tests.e2e.test_cli_local import tiny_config, with_webhook

BUDGET_USD = 1.0
EPOCHS = 100
"""Far more than the budget lasts, even on a fast machine that waits out EC2's first minute:
the stop comes a few epochs after the price is set."""
EPOCHS_OF_MONEY = 3.5
"""The money left when the price is set lasts this many epochs at the first epochs' pace."""
PACE_S = 5.0
"""Every epoch is held to this many seconds (trainer/fault_hooks.py, `pace@S`), as a GPU's
epochs are steady. Left to itself a tiny CPU epoch under three test workers on 2 cores ran from
1 s to 5 s within one run, and a forecast told once, at the pace of its moment, then named an
epoch 4 and 5 from the stop (CI, 2026-12-07: 17 named, stopped in 21; 21 named, stopped in 16).
The slowest epoch seen under that load took 4.9 s."""
EPOCHS_OFF = 2
"""How far the named epoch may be from the one the stop came in: the pace is steady, so what is
left is the supervisor's half-second polls and the moments the price and the stop come."""


class Watching(Printer):
    """The CLI's own listener (it prints each notice and hands it to `notify.tell` at once),
    remembering when the forecast's notice came and what epoch was done when the stop began."""

    def __init__(self) -> None:
        super().__init__(show_metrics=False)
        self.noticed_at: float | None = None
        self.notices: list[Notice] = []
        self.stop_began: tuple[float, int] | None = None
        self.epoch_now = 0

    def noticed(self, run_id: str, notice: Notice) -> None:
        self.noticed_at = time.monotonic()
        self.notices.append(notice)
        super().noticed(run_id, notice)

    def run_changed(self, run: Any) -> None:
        self.epoch_now = run.epoch or 0

    def alert(self, run_id: str, message: str) -> None:
        if "saving results, then terminating" in message and self.stop_began is None:
            self.stop_began = (time.monotonic(), self.epoch_now)
        super().alert(run_id, message)


def measured(run: Run) -> list[float]:
    """The epoch seconds the supervisor's follow has recorded (0.0: an epoch not measured)."""
    return [seconds for seconds in run.epoch_seconds if seconds > 0]


def budgeted(tmp_path: Path, url: str) -> Path:
    path = with_webhook(tiny_config(tmp_path, epochs=EPOCHS, interruption="relaunch"), url)
    raw = yaml.safe_load(path.read_text())
    # No max price: the host's own budget bound (budget / max price) stays out of the way.
    raw["instance"].update(budget_usd=BUDGET_USD, max_price=None)
    path.write_text(yaml.safe_dump(raw))
    return path


async def test_the_budget_running_out_is_told_once_before_the_stop_naming_its_epoch(
    tmp_path: Path, take_run: TakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACERID_TEST_FAULT", f"pace@{PACE_S}")  # reaches the local host
    watching = Watching()
    with webhook_receiver() as (url, posts):
        lifecycle, run = await take_run(budgeted(tmp_path, url), listener=watching)
        watching.endings.lifecycle = lifecycle
        assert run.instance is not None and run.instance.launched_at is not None
        supervisor = Supervisor(lifecycle, run.run_id, poll_s=0.5)

        def now_pace() -> float:
            return seconds_per_epoch(lifecycle.registry.get(run.run_id).epoch_seconds) or 0.0

        following = asyncio.create_task(supervisor.follow())
        deadline = time.monotonic() + 300
        while len(measured(lifecycle.registry.get(run.run_id))) < 2:
            assert not following.done(), following.result()
            assert time.monotonic() < deadline, "two epochs never ended"
            await asyncio.sleep(0.2)
        # EC2 bills a start's first minute whole: the money must outlast launch + 60 s, so the
        # price comes no earlier than that minus the epochs of money (what the forecast sees
        # stays EPOCHS_OF_MONEY epochs ahead of the stop, whatever the setup took), at the
        # forecast's own pace.
        while time.time() < run.instance.launched_at + 60 - EPOCHS_OF_MONEY * (pace := now_pace()):
            await asyncio.sleep(0.2)
        now = time.time()
        runs_out_at = now + EPOCHS_OF_MONEY * pace
        LocalProvider().set_price(BUDGET_USD * 3600 / (runs_out_at - now), at=now)
        # The supervisor's price history is cached for a minute (status.PRICE_TTL_S; spot
        # prices change a few times a day at most): this one changed now, as the test says.
        lifecycle.prices = PriceCache()

        assert await following == "budget"
        await watching.endings.announce(lifecycle)  # the CLI's end: the budget stop's notice

    after = lifecycle.registry.get(run.run_id)
    assert min(measured(after)[1:]) >= PACE_S - 0.5, after.epoch_seconds  # the pace held
    assert watching.stop_began is not None, "the budget never stopped the run"
    stopped_at, epochs_done = watching.stop_began
    assert epochs_done < EPOCHS, "the run finished before its budget ran out: not mid-way"
    [notice] = watching.notices
    assert watching.noticed_at is not None and watching.noticed_at < stopped_at
    named = int(re.search(rf"runs out during epoch (\d+) of {EPOCHS}", notice.text).group(1))  # type: ignore[union-attr]
    assert abs(named - (epochs_done + 1)) <= EPOCHS_OFF, (named, epochs_done, after.ended)
    assert f"--set training.epochs={named - 1}" in notice.text
    assert "--set instance.budget_usd=" in notice.text

    short = [p for p in posts if p["state"] == notify.AHEAD_OF_BUDGET]
    assert len(short) == 1, json.dumps(posts)
    assert posts.index(short[0]) < posts.index(
        next(p for p in posts if p["state"] == "over budget")
    )
    [post] = short
    assert post["message"] == notice.text
    assert post["text"] == post["content"]
    assert post["text"].startswith(f"pacerid-tui: {run.run_id} budget short: at this pace")
