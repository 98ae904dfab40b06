"""The apps `dashboard.py` runs inside its pseudo-terminal: the bare Textual baseline, and
pacerid-tui's app subclassed only to note times and memory. Each writes what it measures to a
JSON-lines file (`--stats`); the bare one never imports pacerid_tui.

    .venv/bin/python benchmarks/dashboard_apps.py --child bare|app --stats FILE [...]
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
from pathlib import Path
from typing import Any

LOG_BOUND = 5000
"""The bare app's Log bound: the same as the dashboard's log pane."""


class Stats:
    def __init__(self, path: str | None) -> None:
        self.out = open(path, "a") if path else None  # noqa: SIM115 - lives as long as the app

    def put(self, kind: str, **values: Any) -> None:
        if self.out is not None:
            self.out.write(json.dumps({"kind": kind, "t": time.monotonic_ns(), **values}) + "\n")
            self.out.flush()


def rss_now() -> tuple[float, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


class Sampler:
    """Every 0.1 s: the log pane's newest line → its lag; at the expected last line → memory."""

    def __init__(self, stats: Stats, expect: int | None, exit_when_done: Any) -> None:
        self.stats, self.expect, self.exit_when_done = stats, expect, exit_when_done
        self.seen: str | None = None
        self.done = False

    def sample(self, last: str | None) -> None:
        if last is None or last == self.seen:
            return
        self.seen = last
        seq_text, _, rest = last.partition(" ")
        try:
            seq = int(seq_text)
        except ValueError:
            return
        stamp = rest.split(" ", 1)[0]
        lag = (time.monotonic_ns() - int(stamp)) / 1e9 if stamp.isdigit() else None
        self.stats.put("line", seq=seq, lag=lag)
        if self.expect is not None and seq == self.expect - 1 and not self.done:
            self.done = True
            threading.Timer(1.0, self.memory).start()

    def memory(self) -> None:
        gc.collect()
        rss, peak = rss_now()
        self.stats.put("memory", rss=rss, peak=peak)
        self.exit_when_done()


def child_bare(args: argparse.Namespace) -> None:
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import Footer, Header, Log

    stats = Stats(args.stats)

    class Bare(App[None]):
        TITLE = "bare Textual log viewer"
        BINDINGS = [Binding("ctrl+r", "mark", "Refresh"), Binding("q", "quit", "Quit")]

        def __init__(self) -> None:
            super().__init__()
            self.last: str | None = None
            self.sampler = Sampler(stats, args.expect, lambda: self.call_from_thread(self.exit))

        def compose(self) -> ComposeResult:
            yield Header()
            yield Log(max_lines=LOG_BOUND)
            yield Footer()

        def on_mount(self) -> None:
            stats.put("mounted")
            if args.follow:
                threading.Thread(target=self.feed, args=(args.follow,), daemon=True).start()
            if args.follow and not args.idle:  # no sampling timer when measuring idle CPU
                self.set_interval(0.1, lambda: self.sampler.sample(self.last))

        def feed(self, path: str) -> None:
            log = self.query_one(Log)
            partial = ""
            with open(path) as source:
                while True:
                    data = source.read(1 << 20)
                    if not data:
                        time.sleep(0.05)
                        continue
                    data, partial = partial + data, ""
                    end = data.rfind("\n")
                    if end < len(data) - 1:
                        data, partial = data[: end + 1], data[end + 1 :]
                    lines = data.splitlines()
                    if lines:
                        self.call_from_thread(log.write_lines, lines)
                        self.last = lines[-1]

        def action_mark(self) -> None:
            stats.put("key")

    Bare().run()


def child_app(args: argparse.Namespace) -> None:
    from pacerid_tui.ui import app as shipped
    from pacerid_tui.ui.app import PaceridApp

    stats = Stats(args.stats)

    class Measured(PaceridApp):
        CSS_PATH = str(Path(shipped.__file__).parent / "app.tcss")  # else relative to this file

        def on_mount(self) -> None:  # runs after PaceridApp.on_mount (Textual calls both)
            stats.put("mounted")
            self.sampler = Sampler(stats, args.expect, lambda: self.call_from_thread(self.exit))
            self.set_interval(0.1, self.sample)

        def sample(self) -> None:
            """The newest streamed line (report lines such as "» …" are skipped)."""
            for view in self.runs.views.values():
                for back, line in enumerate(reversed(view.log)):
                    if back > 50:
                        break
                    if line[:1].isdigit() or line.startswith("-1 "):
                        self.sampler.sample(line)
                        return

        def action_refresh(self) -> None:
            stats.put("key")
            super().action_refresh()

    Measured(Path(args.config)).run()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["app", "bare"], required=True)
    parser.add_argument("--stats", help="JSON-lines file for what is measured")
    parser.add_argument("--follow", help="the bare app: the log file to tail")
    parser.add_argument("--expect", type=int, help="exit once this many lines were shown")
    parser.add_argument("--idle", action="store_true", help="the bare app: no sampling")
    parser.add_argument("--config", help="the app: its config")
    return parser.parse_args()


if __name__ == "__main__":
    options = parse()
    if options.child == "bare":
        child_bare(options)
    else:
        child_app(options)
