"""What the dashboard holds for one run, in one place: its log, its training and host samples,
its market, and which of its workers run now.

The dashboard's runs (`ui/runs.py`) keep one `RunView` per run they have heard of (`views`,
made on first use by `Runs.view`); the App, its actions and its panels read and write a run's
state through it. The table's rows stay apart (`Runs.rows`): replaced whole at every refresh.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pacerid_tui.ui.widgets.host_panel import SPARK_WIDTH

if TYPE_CHECKING:  # the App imports this module before its first frame, the core after it
    from pacerid_tui.config import Config
    from pacerid_tui.core.kernel.host_records import SystemSample
    from pacerid_tui.core.supervise.supervisor import Supervisor
    from pacerid_tui.ui.market import Market
    from pacerid_tui.ui.training import Training

LOG_LINES_PER_RUN = 5000
"""Log lines kept per run: bounded memory however long a run streams."""
SAMPLES_KEPT = SPARK_WIDTH
"""Host samples kept per run: what the sparklines show (the verdict needs fewer)."""


@dataclass(eq=False)
class RunView:
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES_PER_RUN))
    """Log lines (host output, and `» ` sentences from the core), newest last."""
    activity: str = ""
    """The latest sentence about the run, shown last in its details."""
    training: Training | None = None
    """Its metrics, streamed or read back from its results; None until either came."""
    samples: deque[SystemSample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    """The host's latest samples, for the host panel."""
    market: Market | None = None
    market_asked: tuple[float, str | None] | None = None
    """When its market was last asked for, and for which of its instances."""
    results_asked: bool = False
    """Its downloaded metrics were looked for (a run trained before this dashboard started)."""
    config: Config | None = None
    """Its frozen config, read once."""
    busy: str | None = None
    """The step running now (one at a time per run), by name."""
    following: bool = False
    """A follow or a run all streams its training now."""
    watching: bool = False
    """Its supervisor's watch worker runs now (one per live run)."""
    supervisor: Supervisor | None = None
    """The run's one supervisor, once made: its watch, follow and run all share it."""

    def recovering(self) -> bool:
        """Its follow (`t`, `f`) is moving it to a replacement instance now."""
        return self.following and self.supervisor is not None and self.supervisor.recovering

    def busy_with(self) -> str | None:
        """What the run is busy with: its step, or a recovery its follow runs (then only `x`
        may act on it, as during a step)."""
        return self.busy or ("recovery" if self.recovering() else None)
