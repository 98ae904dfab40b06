"""The log pane keeps Log's scrolling while its growth skips the screen's layout pass."""

from __future__ import annotations

import os
import subprocess
import sys

from textual.app import App, ComposeResult

from pacerid_tui.ui.widgets.stream_log import StreamLog


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StreamLog(max_lines=500)


async def test_new_lines_scroll_to_the_end_and_bound_the_memory() -> None:
    app = LogApp()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(StreamLog)
        log.write_lines([f"line {n}" for n in range(50)])
        await pilot.pause()
        assert log.show_vertical_scrollbar
        assert log.max_scroll_y == 50 - log.scrollable_content_region.height
        assert log.scroll_y == log.max_scroll_y  # following the end
        assert log.vertical_scrollbar.window_virtual_size == 50
        log.auto_scroll = False
        log.scroll_home(animate=False, immediate=True)
        log.write_lines([f"more {n}" for n in range(600)])
        await pilot.pause()
        assert log.line_count == 500 and log.lines[-1] == "more 599"
        assert log.max_scroll_y == 500 - log.scrollable_content_region.height
        assert log.scroll_y == 0  # paused: the reader's place is kept
        assert log.vertical_scrollbar.window_virtual_size == 500  # the thumb knows the length


def test_a_bad_refresh_interval_is_one_sentence_and_exit_2() -> None:
    for value in ("soon", "0.05", "nan"):
        done = subprocess.run(
            [sys.executable, "-m", "pacerid_tui"],
            env={**os.environ, "PACERID_REFRESH_S": value},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"pacerid-tui: PACERID_REFRESH_S={value!r} is not a number of seconds ≥ 0.2; "
            "set it to e.g. 5."
        )
