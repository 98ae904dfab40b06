"""The ways a run's end is told: once per ending, never an error where a channel is missing.

The webhook receiver is a loopback HTTP server reading our own JSON (no third-party format)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pacerid_tui.core.kernel.models import MetricEvent
from pacerid_tui.core.supervise import notify
from tests.standins import LoopbackServer, StandInHandler, serving

ENDING = notify.Ending("pacerid-local-1", "finished", 0.8, 0.0, "training finished")


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1: (its URL, the JSON bodies POSTed to it, in order)."""
    posts: list[dict[str, Any]] = []

    class Handler(StandInHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)  # no body, so no Content-Length (RFC 9110)
            self.end_headers()

    with serving(LoopbackServer(Handler)) as server:
        yield f"{server.url}/hook", posts


SAID = "pacerid-tui: pacerid-local-1 finished: training finished (best val acc 80.0%) · $0.00 spent"


def test_each_ending_is_first_only_once() -> None:
    assert notify.first_time("run-a", "done@1.0")
    assert not notify.first_time("run-a", "done@1.0")
    assert notify.first_time("run-a", "done@2.0")  # a resumed run's later end is news
    assert notify.first_time("run-b", "done@1.0")


def test_without_notify_send_no_desktop_notice_and_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert notify.desktop("title", "body") is False


def test_a_webhook_nobody_answers_is_one_sentence() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: the connection is refused
        problem = notify.post_webhook(f"http://127.0.0.1:{port}/hook", ENDING)
    assert problem is not None and problem.endswith("check notify.webhook_url.")


def test_an_ending_is_posted_once_however_often_it_is_announced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no notify-send: the webhook is what is left
    monkeypatch.delenv("TERM_PROGRAM", raising=False)  # and no OSC 9
    done = MetricEvent.from_dict({"event": "done", "epoch": 2, "time": 1_700_000_000.5})
    notice = notify.of_event(done)
    assert notice == notify.Notice("finished", "training finished", "done@1700000000.5")
    assert notify.of_event(MetricEvent.from_dict({"event": "epoch", "epoch": 1})) is None
    written: list[str] = []
    with webhook_receiver() as (url, posts):
        for _ in range(3):  # the CLI, a dashboard, the CLI again on the finished run
            assert notify.announce(ENDING, notice.key, url, written.append) is None
        assert posts == [
            {
                "run_id": "pacerid-local-1",
                "state": "finished",
                "best_val_acc": 0.8,
                "cost_usd": 0.0,
                "message": "training finished",
                # ready for Slack and Mattermost (text) and Discord (content) as it comes
                "text": SAID,
                "content": SAID,
            }
        ]
        notify.announce(ENDING, notify.BUDGET.key, url, written.append)  # another ending
        assert len(posts) == 2
    assert written == []


def test_osc9_only_where_the_terminal_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM_PROGRAM", "WezTerm")
    assert notify.osc9("run a\x1b]: finished") == "\x1b]9;run a]: finished\x07"
    monkeypatch.setenv("TERM_PROGRAM", "Apple_Terminal")
    assert notify.osc9("run a: finished") is None


def test_two_followers_seeing_one_end_at_once_announce_it_once() -> None:
    """A dashboard and `all` tail the same metrics file: both see the end within milliseconds."""
    start = threading.Barrier(12)
    firsts: list[bool] = []

    def follower() -> None:
        start.wait()
        firsts.append(notify.first_time("run-race", "done@5.0"))

    threads = [threading.Thread(target=follower) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(firsts) == [False] * 11 + [True]
