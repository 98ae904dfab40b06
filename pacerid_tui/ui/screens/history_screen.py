"""`h`: every run side by side (the rows of `core.history`, formatted once), sortable (`s` cycles
the order), with several runs selected (space) overlaid: their validation accuracy and loss per
epoch, and the config keys in which they differ. Escape goes back."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from pacerid_tui.config import Config
from pacerid_tui.core.kernel.models import MetricEvent
from pacerid_tui.core.results.history import (
    HEADERS,
    SORT_KEYS,
    HistoryRow,
    config_differences,
    sort_rows,
)

MARK = "✓"


class HistoryScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,h,q", "dismiss(None)", "Close", id="history.close"),
        Binding("space", "pick", "Select", tooltip="Overlay this run's curve", id="history.pick"),
        Binding("s", "sort", "Sort", tooltip="Sort by the next column", id="history.sort"),
    ]

    def __init__(
        self,
        rows: list[HistoryRow],
        curves: dict[str, list[MetricEvent]],
        configs: dict[str, Config],
    ) -> None:
        super().__init__()
        self.rows = rows
        self.curves = curves
        self.configs = configs
        self.picked: list[str] = []
        self.sort_key = "created"

    def compose(self) -> ComposeResult:
        with Vertical(id="history-dialog", classes="dialog"):
            yield Static("", id="history-title")
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="history-overlay"):
                yield PlotextPlot(id="history-chart")
                yield Static("", id="history-diff", markup=False)
            yield Static("[dim]space selects runs to overlay · s sorts · escape closes[/dim]")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", *HEADERS)
        self.fill()
        self.draw()

    def fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in sort_rows(self.rows, self.sort_key):
            mark = MARK if row.run_id in self.picked else " "
            table.add_row(mark, *row.cells(), key=row.run_id)
        self.query_one("#history-title", Static).update(
            f"[b]Every run[/b], by {self.sort_key} ({len(self.rows)})"
        )

    def action_sort(self) -> None:
        keys = list(SORT_KEYS)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.fill()

    def action_pick(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows:
            return
        run_id = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        if run_id in self.picked:
            self.picked.remove(run_id)
        else:
            self.picked.append(run_id)
        mark = MARK if run_id in self.picked else " "
        table.update_cell(run_id, table.ordered_columns[0].key, mark)
        self.draw()

    def draw(self) -> None:
        plt = self.query_one(PlotextPlot).plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("Validation accuracy (val loss dotted) per epoch")
        plt.xlabel("epoch")
        for run_id in self.picked:
            curve = [e for e in self.curves.get(run_id, []) if e.epoch is not None]
            xs = [float(e.epoch or 0) for e in curve]
            name = run_id.rsplit("-", 1)[-1]  # the random tail tells runs apart
            plt.plot(xs, [e.val_acc or 0.0 for e in curve], label=f"{name} acc", marker="braille")
            plt.plot(xs, [e.val_loss or 0.0 for e in curve], label=f"{name} loss", marker="dot")
        self.query_one(PlotextPlot).refresh()
        self.query_one("#history-diff", Static).update(self.differences())

    def differences(self) -> str:
        if len(self.picked) < 2:
            return "Select two runs or more (space) to see how their configs differ."
        configs = {r: self.configs[r] for r in self.picked if r in self.configs}
        found = [(k, v) for k, v in config_differences(configs) if k not in IGNORED]
        if not found:
            return "Their configs are the same."
        lines = ["Config differences:"]
        for key, values in found:
            lines.append(key)
            lines += [f"  {r.rsplit('-', 1)[-1]}: {_text(v)}" for r, v in values.items()]
        return "\n".join(lines)


IGNORED = {"output.dir", "output.ios_models_dir"}
"""Where results land is not how a run trained."""


def _text(value: Any) -> str:
    return "—" if value is None else str(value)
