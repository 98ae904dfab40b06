"""A person at a terminal: the real program in tmux, keys typed, the screen read back."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli_local import REPO, tiny_config


class Terminal:
    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.socket = f"pacerid-test-{secrets.token_hex(3)}"
        subprocess.run(
            [
                "tmux",
                "-L",
                self.socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "170",
                "-y",
                "48",
                command,
            ],
            check=True,
            env=env,
            cwd=REPO,
        )

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "t", *keys], check=True)

    def screen(self) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "t"],
            capture_output=True,
            text=True,
        )
        return done.stdout

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.5)
        pytest.fail(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing; `make test` installs it (scripts/system-deps.sh).")
    config = tiny_config(tmp_path)
    env = {**os.environ, "TERM": "xterm-256color"}
    # The command `make run` runs, with a quick config.
    term = Terminal(f"{sys.executable} -m pacerid_tui --config {config}", env)
    yield term
    term.close()


def test_run_all_ssh_then_terminate_with_one_key(terminal: Terminal) -> None:
    terminal.wait_for("Run all", timeout=30)
    terminal.keys("r")
    screen = terminal.wait_for("Epoch 2/2", timeout=240)  # the streamed log
    screen = terminal.wait_for("run all: done", timeout=120)
    assert "2/2" in screen  # the table's epoch column
    assert "train loss" in screen  # the chart's legend
    terminal.keys("s")  # a shell on the host; the dashboard comes back when it ends
    deadline = time.monotonic() + 60
    while "on-the-host-42" not in (screen := terminal.screen()):  # keys typed before the
        assert time.monotonic() < deadline, screen  # shell reads its terminal are lost
        if "Run all" not in screen:
            terminal.keys("echo on-the-host-$((6*7)) $PWD", "Enter")
        time.sleep(2)
    assert "/workspace" in screen  # the local instance's home, not this machine's
    terminal.keys("exit", "Enter")
    terminal.wait_for("Run all", timeout=30)
    terminal.keys("x")
    screen = terminal.wait_for("terminated", timeout=60)
    terminal.keys("q")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_closing_the_terminal_of_make_run_ends_the_dashboard() -> None:
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing; `make test` installs it (scripts/system-deps.sh).")
    # -o: the suite's venv is installed; a checkout newer than its stamp would reinstall it
    # mid-test (minutes), into whatever venv .venv is.
    term = Terminal("make -o .venv/.installed run", {**os.environ, "TERM": "xterm-256color"})
    try:
        term.wait_for("Run all", timeout=60)
        pane = subprocess.run(
            ["tmux", "-L", term.socket, "display", "-p", "-t", "t", "#{pane_pid}"],
            capture_output=True,
            text=True,
            check=True,
        )
        [app] = children(int(pane.stdout))  # make's one child: the dashboard
    finally:
        term.close()  # the window closes: the terminal hangs up
    deadline = time.monotonic() + 15
    while alive(app):
        if time.monotonic() > deadline:
            os.kill(app, 9)
            pytest.fail("the dashboard outlived its terminal (Textual spins on a dead tty)")
        time.sleep(0.2)
