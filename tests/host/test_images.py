"""The real setup script on hosts laid out like the Deep Learning AMIs, over real OpenSSH.

No PACERID_PYTHON (that is the local provider's short cut) and no network (PIP_NO_INDEX=1):
setup must find the image's own PyTorch, reuse it, and install only what is missing. The image
layouts follow AWS's DLAMI release notes (see images.py). The venv layout fails on the script
before #13 (a venv built from /opt/pytorch's python does not see its packages).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import yaml

from pacerid_tui.config import load_config
from pacerid_tui.core.kernel.errors import HostError
from pacerid_tui.core.kernel.models import Instance, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise.supervisor import Supervisor
from tests.conftest import running_sshd
from tests.e2e.test_cli_local import tiny_config
from tests.host import images
from tests.known_host import HostLifecycle


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    return tmp_path / "image"


@pytest.fixture
def image_host(tmp_path: Path, image_root: Path) -> Iterator[Instance]:
    """An sshd whose sessions see the image under image_root, as a DLAMI host sees it under /."""
    root = tmp_path / "sshd"
    env = {
        "PACERID_IMAGE_ROOT": str(image_root),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(tmp_path / "wheels"),  # what the image lacks: never the network
        "PACERID_POWEROFF": "log-only",  # this "host" is the machine running the tests
        "TMUX_TMPDIR": str(root),
        "PYTHONUNBUFFERED": "1",
    }
    with running_sshd(root, env) as instance:
        yield instance
    socket = root / f"tmux-{os.getuid()}" / "default"
    if socket.exists():
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], check=False, capture_output=True)


def one_epoch_config(tmp_path: Path) -> Path:
    path = tiny_config(tmp_path, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["data"].update(image_size=16, batch_size=8)
    raw["data"]["synthetic"].update(train_per_class=4, test_per_class=2)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
async def on_host(tmp_path: Path, image_host: Instance) -> AsyncIterator[tuple[Lifecycle, Run]]:
    """A run whose instance is the image host; its folder and watchdog go afterwards."""
    path = one_epoch_config(tmp_path)
    lifecycle = HostLifecycle(image_host)
    run = lifecycle.create_run(path, load_config(path))
    run = lifecycle.registry.update(run.run_id, instance=image_host, steps_done=["launch"])
    folder = Path.home() / "pacerid" / run.run_id
    yield lifecycle, run
    lifecycle.close()
    pid = folder / "watchdog.pid"
    if pid.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid.read_text()), signal.SIGTERM)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("layout", [images.venv_image, images.conda_image], ids=["venv", "conda"])
async def test_setup_reuses_the_image_pytorch_then_one_epoch_trains(
    layout: Callable[[Path], Path],
    tmp_path: Path,
    image_root: Path,
    on_host: tuple[Lifecycle, Run],
) -> None:
    lifecycle, run = on_host
    interpreter = layout(image_root)
    await lifecycle.upload(run)
    host_run = Path.home() / "pacerid" / run.run_id
    missing = images.tiny_wheel(tmp_path / "wheels")  # a requirement the image does not have
    with open(host_run / "code" / "trainer" / "requirements.txt", "a") as requirements:
        requirements.write(f"{missing}\n")
    await lifecycle.setup(run)
    log = (host_run / "output" / "setup.log").read_text()
    assert f"Image PyTorch interpreter: {interpreter}" in log
    assert "torch " in log and "Setup done." in log
    wrapper = (host_run / "bin" / "python").read_text()
    assert str(host_run / "venv" / "bin" / "python") in wrapper
    # Torch is the image's, seen through the .pth; only what it lacked went into the run venv.
    run_site = next((host_run / "venv").glob("lib/*/site-packages"))
    assert (run_site / f"{missing}.py").exists()
    assert not (run_site / "torch").exists() and not (run_site / "yaml").exists()
    assert not list(image_root.rglob(f"{missing}*"))
    await lifecycle.data(run)
    await lifecycle.train(run)
    assert await Supervisor(lifecycle, run.run_id).follow() == "done"
    events = [
        json.loads(line)
        for line in (host_run / "output" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1]


async def test_a_base_image_without_pytorch_is_refused_in_one_sentence(
    image_root: Path, on_host: tuple[Lifecycle, Run]
) -> None:
    lifecycle, run = on_host
    images.base_image(image_root)
    with pytest.raises(HostError, match="setup step failed"):
        await lifecycle.setup(run)
    log = (Path.home() / "pacerid" / run.run_id / "output" / "setup.log").read_text()
    [sentence] = [line for line in log.splitlines() if "No PyTorch" in line]
    assert sentence.startswith("No PyTorch on this image")
    assert "launch a Deep Learning AMI with PyTorch" in sentence
    assert not (Path.home() / "pacerid" / run.run_id / "venv").exists()  # nothing installed
