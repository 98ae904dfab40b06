"""asyncssh, imported on first use: the dashboard draws its first frame without waiting for it.

Modules here write `from pacerid_tui.core.kernel.lazy import asyncssh` instead of
`import asyncssh`; the name is a stand-in whose first attribute read imports the real module (a
plain import, so the interpreter's import lock makes it safe from any thread) and copies its
names in. Annotations cost nothing (every module uses `from __future__ import annotations`); a
module-level expression such as `asyncssh.Error` would import it at once,
so keep those inside functions.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class Deferred(ModuleType):
    """A module imported the first time one of its attributes is read."""

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later reads find the names without coming here
        return getattr(module, name)


if TYPE_CHECKING:
    import asyncssh as asyncssh
else:
    asyncssh = Deferred("asyncssh")
