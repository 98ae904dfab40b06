"""Conditions a test asks of the trainer, through one environment variable: PACERID_TEST_FAULT.

The stall watch (trainer/stall.py) must be tested against a trainer that really hangs or really
goes NaN, on the local provider, over SSH, as a user's would; the first two hooks make one. The
third gives the budget forecast's story a GPU's steady epochs. Only tests set the variable
(PACERID_* variables reach a local host's processes); unset, nothing here does anything.

- `hang@N`: from epoch N+1 on, asking the data loader for a batch never returns, as a loader
  stuck on a dead network disk does (the stop flag is not looked at: a hung loader never sees
  it either).
- `nan@N`: from epoch N+1 on, every step's loss is NaN, as after a diverging learning rate.
- `pace@S`: every epoch lasts at least S seconds (it waits out the rest before it closes), so
  its wall time is steady as a GPU's epochs are, where a test's tiny CPU epochs on a shared
  machine ran from 1 s to 5 s within one run (the budget forecast's story names an epoch by
  the pace of its moment).
"""

from __future__ import annotations

import os
import time

VARIABLE = "PACERID_TEST_FAULT"


def fault(epoch: int) -> str | None:
    """ "hang" or "nan" when the test's fault applies to 0-based `epoch`, else None."""
    kind, _, after = os.environ.get(VARIABLE, "").partition("@")
    if kind in ("hang", "nan") and after.isdigit() and epoch >= int(after):
        return kind
    return None


def hang() -> None:
    """Never return (a sleep, so the hung trainer costs no CPU)."""
    while True:
        time.sleep(1.0)


def steady(started: float) -> None:
    """Under `pace@S`, wait until S seconds have passed since `started` (time.monotonic)."""
    kind, _, seconds = os.environ.get(VARIABLE, "").partition("@")
    if kind == "pace":
        time.sleep(max(0.0, float(seconds) - (time.monotonic() - started)))
