"""The loss as it moves: the step curve (smoothed train loss every N steps), with each epoch's
train loss, validation loss and validation accuracy as points over it, drawn with plotext.

The x axis is in epochs (step 30 of 60 in epoch 2 is 1.5), so the step curve and the epoch
points share it. The title carries the ETA from the measured step rate; `y` toggles a log
scale, where a loss that has flattened on a linear axis still shows whether it falls.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from pacerid_tui.core.models import MetricEvent

EPOCH_POINTS = (("train_loss", "train"), ("val_loss", "val"), ("val_acc", "val acc"))


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f" · ETA {seconds:.0f} s"
    if seconds < 5400:
        return f" · ETA {seconds / 60:.0f} min"
    return f" · ETA {seconds / 3600:.1f} h"


class LossChart(PlotextPlot):
    shown: tuple[object, ...] | None = None
    """What is drawn now: redrawing only on change keeps frequent updates cheap."""
    log_scale = False

    def on_mount(self) -> None:
        self.show([], [], None)

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        if self.shown is not None:
            epochs, steps, eta = self.shown[:3]
            self.shown = None
            self.show(epochs, steps, eta)  # type: ignore[arg-type]

    def show(
        self, epochs: Sequence[MetricEvent], steps: Sequence[MetricEvent], eta_s: float | None
    ) -> None:
        state = (list(epochs), list(steps), eta_s, self.log_scale)
        if state == self.shown:
            return
        self.shown = state
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
