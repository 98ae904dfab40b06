"""The CLI's shared options (--config, --run, --debug) hold before the command and after it.

Found by hand: `pacerid-tui --config X all` ran the default config, because the subcommand's
own --config (default None) overwrote the top-level one; on AWS that launches the wrong config.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pacerid_tui.__main__ import parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "mine.yaml", "--run", "r1", "--debug", "all"],
        ["all", "--config", "mine.yaml", "--run", "r1", "--debug"],
        ["--config", "mine.yaml", "all", "--run", "r1", "--debug"],
    ],
)
def test_shared_options_hold_on_either_side_of_the_command(argv: list[str]) -> None:
    found = parser().parse_args(argv)
    assert (found.command, found.config, found.run, found.debug) == (
        "all",
        Path("mine.yaml"),
        "r1",
        True,
    )


def test_without_them_the_defaults_stand() -> None:
    found = parser().parse_args(["status"])
    assert (found.config, found.run, found.debug) == (None, None, False)
