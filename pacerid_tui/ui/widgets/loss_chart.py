"""Train loss, validation loss and validation accuracy per epoch, drawn with plotext."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from pacerid_tui.core.models import MetricEvent


class LossChart(PlotextPlot):
    shown: list[MetricEvent] | None = None
    """What is drawn now: redrawing only on change keeps step events (many a second) cheap."""

    def on_mount(self) -> None:
        self.show_epochs([])

    def show_epochs(self, epochs: list[MetricEvent]) -> None:
        if epochs == self.shown:
            return
        self.shown = list(epochs)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("Loss per epoch")
        plt.xlabel("epoch")
        points = [e for e in epochs if e.epoch is not None]
        if points:
            xs = [float(e.epoch or 0) for e in points]
            plt.plot(
                xs, [e.train_loss or 0.0 for e in points], label="train loss", marker="braille"
            )
            plt.plot(xs, [e.val_loss or 0.0 for e in points], label="val loss", marker="braille")
            plt.plot(xs, [e.val_acc or 0.0 for e in points], label="val acc", marker="braille")
            plt.xticks(xs)
        self.refresh()
