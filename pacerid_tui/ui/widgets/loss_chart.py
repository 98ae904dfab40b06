"""The loss as it moves: the step curve (smoothed train loss every N steps), with each epoch's
train loss, validation loss and validation accuracy as points over it, drawn with plotext.

The x axis is in epochs (step 30 of 60 in epoch 2 is 1.5), so the step curve and the epoch
points share it. The title carries the ETA from the measured step rate; `y` toggles a log
scale, where a loss that has flattened on a linear axis still shows whether it falls.

Drawing a plotext chart costs a frame of its own (~10 ms here), so new step events alone redraw
it at most every STEP_REDRAW_S; an epoch, a new run or the scale key redraw at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

from textual_plotext import PlotextPlot

from pacerid_tui.core.kernel.models import MetricEvent

STEP_REDRAW_S = 5.0
"""The step curve moves on screen this often at most: live enough, and a step event a second
no longer costs a chart frame a second."""
EPOCH_POINTS = (("train_loss", "train"), ("val_loss", "val"), ("val_acc", "val acc"))


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f" · ETA {seconds:.0f} s"
    if seconds < 5400:
        return f" · ETA {seconds / 60:.0f} min"
    return f" · ETA {seconds / 3600:.1f} h"


class ChartState(NamedTuple):
    epochs: list[MetricEvent]
    steps: list[MetricEvent]
    eta_s: float | None
    log_scale: bool


class LossChart(PlotextPlot):
    shown: ChartState | None = None
    """What is drawn now: redrawing only on change keeps frequent updates cheap."""
    log_scale = False
    drawn_at = 0.0
    """time.monotonic() of the last redraw."""
    waiting: ChartState | None = None
    """Steps that came too soon after a redraw: drawn when the timer fires."""

    def on_mount(self) -> None:
        self.show([], [], None)

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        latest = self.waiting or self.shown
        if latest is not None:
            self._draw(latest._replace(log_scale=self.log_scale))

    def show(
        self, epochs: Sequence[MetricEvent], steps: Sequence[MetricEvent], eta_s: float | None
    ) -> None:
        state = ChartState(list(epochs), list(steps), eta_s, self.log_scale)
        if state == self.shown:
            return
        shown = self.shown
        soon = time.monotonic() - self.drawn_at < STEP_REDRAW_S
        same = shown is not None and state.epochs == shown.epochs
        if soon and same and shown and (state.eta_s is None) == (shown.eta_s is None):
            if self.waiting is None:
                self.set_timer(STEP_REDRAW_S - (time.monotonic() - self.drawn_at), self._late)
            self.waiting = state  # only steps (and the ETA) moved: they can wait a little
            return
        self._draw(state)

    def _late(self) -> None:
        state, self.waiting = self.waiting, None
        if state is not None and state != self.shown:
            self._draw(state)

    def _draw(self, state: ChartState) -> None:
        epochs, steps, eta_s, _ = state
        self.shown, self.waiting = state, None
        self.drawn_at = time.monotonic()
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        scale = " (log)" if self.log_scale else ""
        plt.title(f"Loss per step, epochs as points{scale}{eta_text(eta_s)}")
        plt.xlabel("epoch")
        if self.log_scale:
            plt.yscale("log")

        def kept(xs: list[float], ys: list[float | None]) -> tuple[list[float], list[float]]:
            pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if self.log_scale:
                pairs = [(x, y) for x, y in pairs if y > 0]  # log of 0 is not drawable
            return [x for x, _ in pairs], [y for _, y in pairs]

        curve = [s for s in steps if s.epoch and s.step and s.steps]
        if curve:
            xs = [(s.epoch or 1) - 1 + (s.step or 0) / (s.steps or 1) for s in curve]
            plt.plot(*kept(xs, [s.loss for s in curve]), label="step loss", marker="braille")
        points = [e for e in epochs if e.epoch is not None]
        if points:
            xs = [float(e.epoch or 0) for e in points]
            for name, label in EPOCH_POINTS:
                values = [getattr(e, name) for e in points]
                plt.scatter(*kept(xs, values), label=f"{label} (epoch)", marker="●")
            plt.xticks(xs)
        self.refresh()
