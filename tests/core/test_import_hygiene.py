"""The core never imports the UI libraries; the dashboard starts without torch or SSH libraries."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pacerid_tui.core


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def imported_after(statement: str) -> set[str]:
    return {name.split(".")[0] for name in modules_after(statement)}


def test_core_modules_import_neither_textual_nor_rich() -> None:
    names = [m.name for m in pkgutil.walk_packages(pacerid_tui.core.__path__, "pacerid_tui.core.")]
    assert "pacerid_tui.core.steps.lifecycle" in names
    loaded = imported_after("; ".join(f"import {name}" for name in names))
    assert not {"textual", "rich"} & loaded


def test_the_dashboard_starts_without_torch_or_coremltools() -> None:
    loaded = imported_after("import pacerid_tui.__main__, pacerid_tui.ui.entry")
    assert "textual" in loaded
    assert not {"torch", "coremltools", "torchvision"} & loaded
    assert not {"asyncssh", "boto3"} & loaded  # imported when a run is first reached


def test_the_dashboard_draws_its_first_frame_before_importing_the_core() -> None:
    """`python -m pacerid_tui` imports Textual, the widgets and the kernel's plain types before
    its first frame; the config (pydantic, yaml), the lifecycle, the providers, SSH and the
    supervisor come after it, in a thread (ui/app.py, `start_core`)."""
    loaded = modules_after("import pacerid_tui.__main__, pacerid_tui.ui.entry")
    assert "textual.widgets._footer" in loaded
    assert not {"pydantic", "yaml", "http.server", "tarfile"} & loaded
    late = ("config", "core.steps.lifecycle", "core.remote", "core.supervise.supervisor", "ui.runs")
    assert not {name for name in loaded if name.startswith(tuple(f"pacerid_tui.{m}" for m in late))}


def test_a_deferred_module_imports_once_on_first_use_from_any_thread() -> None:
    code = (
        "import sys; from concurrent.futures import ThreadPoolExecutor; "
        "from pacerid_tui.core.kernel.lazy import asyncssh; "
        "before = 'asyncssh' in sys.modules; "
        "found = set(ThreadPoolExecutor(8).map(lambda _: asyncssh.connect, range(64))); "
        "import asyncssh as real; "
        "print(before, found == {real.connect}, isinstance(real.Error('x', 'y'), asyncssh.Error))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_the_trainer_never_imports_pacerid_tui() -> None:
    code = (
        "import sys, pkgutil, importlib, trainer; "
        "[importlib.import_module(m.name) for m in pkgutil.iter_modules(trainer.__path__, "
        "'trainer.') if m.name != 'trainer.__main__']; "
        "print(any(n.startswith('pacerid_tui') for n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
