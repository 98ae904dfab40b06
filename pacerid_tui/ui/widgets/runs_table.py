"""Every run the tool knows, one row each, updated in place so the cursor never jumps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import DataTable

if TYPE_CHECKING:  # the core's, imported after the dashboard's first frame
    from pacerid_tui.core.steps.status import RunStatus

COLUMNS = ("Run", "Provider", "Type", "Zone", "State", "Uptime", "Price/h", "Cost", "Epoch")
"""The status columns the dashboard shows (`status.COLUMNS`); the details show the rest."""


class RunsTable(DataTable[str]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for name in COLUMNS:  # plain labels: a str is read as markup, and rich's first markup
            self.add_column(Text(name), key=name)  # loads its emoji table, 3 ms of the start

    def on_resize(self) -> None:
        """Keep the selected run in view when the table gets shorter (breakpoints, a smaller
        terminal): DataTable scrolls to its cursor only when the cursor moves."""
        if self.row_count:
            self.move_cursor(row=self.cursor_row, animate=False)

    def watch_virtual_size(self) -> None:
        """Rows measured after the cursor moved (DataTable sizes new rows when idle, late on a
        loaded machine) would leave its scroll clamped short of the selected run."""
        if self.row_count:
            self.call_after_refresh(self.move_cursor, row=self.cursor_row, animate=False)

    def watch_show_horizontal_scrollbar(self) -> None:
        """Columns wider than the table bring a scrollbar that takes a row of its height, with
        no resize and no new virtual size: measured after the cursor scrolled, it would hide
        the selected run on a short terminal (seen under load at 80×24)."""
        if self.row_count:
            self.call_after_refresh(self.move_cursor, row=self.cursor_row, animate=False)

    def show(self, rows: list[RunStatus]) -> None:
        from pacerid_tui.core.steps.status import cells  # rows come once the core is up

        wanted = {row.run_id for row in rows}
        for key in list(self.rows):
            if key.value not in wanted:
                self.remove_row(key)
        present = {key.value for key in self.rows}
        for row in rows:
            values = cells(row, COLUMNS)
            if row.run_id not in present:
                self.add_row(*values, key=row.run_id)
                continue
            shown = self.get_row(row.run_id)
            for column, value, old in zip(COLUMNS, values, shown, strict=True):
                if value != old:  # an unchanged table costs no repaint
                    self.update_cell(row.run_id, column, value, update_width=len(value) > len(old))

    @property
    def selected_run_id(self) -> str | None:
        if not self.row_count:
            return None
        key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return key.value

    def select(self, run_id: str) -> None:
        for index, key in enumerate(self.rows):
            if key.value == run_id:
                self.move_cursor(row=index)
