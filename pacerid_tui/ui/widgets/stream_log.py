"""The log pane: Textual's `Log`, minus a layout pass of the whole screen for every write.

`Log.write_lines` grows `virtual_size`, a reactive that asks for a layout of the screen; every
widget on it is then arranged and drawn again, many times a second while a run streams. The
pane's own size comes from the CSS, never from its content, so here the new virtual size only
updates the scroll range and scrollbars (what the layout pass would have done for this widget)
and repaints the pane. A scrollbar that appears or goes still asks for a layout, as before.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Log


class StreamLog(Log):
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)
