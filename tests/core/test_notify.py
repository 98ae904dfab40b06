"""The ways a run's end is told: once per ending, never an error where a channel is missing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pacerid_tui.core import notify

ENDING = notify.Ending("pacerid-local-1", "finished", 0.8, 0.0, "training finished")


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
