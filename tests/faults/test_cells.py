"""The fault matrix's diagonal in `make test`: one cell per phase and one per fault
(tests/faults/cells.py says what a cell does and what must hold; `make faults` runs them all).

Each cell injects its fault into a run on the local provider, whose spot request follows EC2's
documented states (core/cloud/local.py names the pages), and fails when an instance of the run
is neither terminated nor guarded once the bound after the fault has passed, when something is
left running after the run ends, or when the finished run's results miss an epoch or hold one
twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.cells import ENV, FAULTS, PHASES, run_cell

DIAGONAL = [
    ("launch-pending", "controller-killed"),
    ("launched", "terminate-fails-once"),
    ("upload", "ssh-drop"),
    ("setup", "controller-asleep"),
    ("data", "request-expiry"),
    ("epoch-1", "interrupt-stop"),
    ("epoch-2", "host-reboot"),
    ("finished", "interrupt-relaunch"),
    ("download", "controller-killed"),
]


def test_the_diagonal_covers_every_phase_and_every_fault() -> None:
    assert {phase for phase, _ in DIAGONAL} == set(PHASES)
    assert {fault for _, fault in DIAGONAL} == set(FAULTS)


@pytest.mark.parametrize(("phase", "fault"), DIAGONAL, ids=[f"{p}×{f}" for p, f in DIAGONAL])
async def test_a_cell_holds(
    phase: str, fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    outcome = await run_cell(phase, fault, tmp_path)
    assert outcome.verdict == "holds", outcome.row()
