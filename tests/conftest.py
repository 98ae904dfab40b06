"""Shared fixtures: an isolated state folder per test, no way out to the real cloud, the two SSH
servers every remote operation is tested against (the embedded one and a real OpenSSH sshd), the
loopback stand-ins more than one folder uses, and a run taken to "training".
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.models import Instance, InstanceSpec, InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle, Listener
from tests.kaggle_standin import KaggleStandIn, kaggle_port
from tests.metadata_standin import MetadataService
from tests.standins import serving

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_leftover_instances(isolated: Path) -> Iterator[None]:
    """Whatever a test launched on the local provider is terminated after it, pass or fail."""
    yield
    provider = LocalProvider(isolated / "local")
    for instance in provider.find_managed():
        provider.terminate(instance.instance_id)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own state folder; nothing can reach AWS, IMDS or Kaggle for real."""
    home = tmp_path / "home"
    monkeypatch.setenv("PACERID_HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")  # kagglesdk asks localhost:7777
    return home


@pytest.fixture
def local_instance(isolated: Path) -> Iterator[Instance]:
    provider = LocalProvider()
    instance = provider.launch(
        InstanceSpec(run_id=f"test-{secrets.token_hex(3)}", provider="local")
    )
    yield instance
    provider.terminate(instance.instance_id)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sshd_binary() -> str:
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(found):
        pytest.fail("OpenSSH sshd is missing; `make test` installs it (scripts/system-deps.sh).")
    return found


@contextlib.contextmanager
def running_sshd(root: Path, set_env: dict[str, str]) -> Iterator[Instance]:
    """A real OpenSSH sshd on 127.0.0.1 with its own config, host key and authorized key;
    `set_env` is what every session on it gets (sshd_config's SetEnv)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True
        )
    os.chmod(root / "client_key", 0o400)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    port = free_port()
    sftp = "internal-sftp"
    env = " ".join(f"{name}={value}" for name, value in set_env.items())
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile {root / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PermitRootLogin prohibit-password\nSubsystem sftp {sftp}\nLogLevel ERROR\n"
        "MaxStartups 100\nMaxSessions 50\n" + (f"SetEnv {env}\n" if env else "")
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    with open(root / "sshd.log", "wb") as log:
        process = subprocess.Popen(
            [sshd_binary(), "-D", "-e", "-f", str(root / "sshd_config")], stderr=log
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"sshd did not start: {(root / 'sshd.log').read_text()}")
                time.sleep(0.05)
        yield Instance(
            instance_id=f"sshd-{secrets.token_hex(3)}",
            provider="sshd",
            state=InstanceState.RUNNING,
            host="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            key_path=str(root / "client_key"),
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A real OpenSSH sshd on 127.0.0.1, set up like the local provider's host: train with this
    interpreter, a private tmux server, and a watchdog that only logs (this "host" is the
    machine running the tests)."""
    root = tmp_path_factory.mktemp("sshd")
    env = {
        "PACERID_PYTHON": sys.executable,
        "PACERID_POWEROFF": "log-only",
        "TMUX_TMPDIR": str(root),
        "PYTHONUNBUFFERED": "1",
    }
    with running_sshd(root, env) as instance:
        yield instance


@pytest.fixture(params=["embedded", "openssh"])
def host(request: pytest.FixtureRequest) -> Instance:
    """Each remote-operation test runs against both servers."""
    if request.param == "embedded":
        return request.getfixturevalue("local_instance")  # type: ignore[no-any-return]
    return request.getfixturevalue("sshd")  # type: ignore[no-any-return]


@pytest.fixture
def remote_dir(host: Instance) -> Iterator[str]:
    """A fresh folder under the host's home, removed afterwards (sshd's home is the real one)."""
    name = f"pacerid-test-{secrets.token_hex(4)}"
    yield name
    if host.provider == "sshd":
        shutil.rmtree(Path.home() / name, ignore_errors=True)


@pytest.fixture
def kaggle_port_held() -> Iterator[None]:
    """Kaggle's fixed localhost:7777 is this test's: nothing else serves it meanwhile."""
    with kaggle_port():
        yield


@pytest.fixture
def kaggle(kaggle_port_held: None) -> Iterator[KaggleStandIn]:
    """The Kaggle stand-in (tests/kaggle_standin.py) on localhost:7777, empty: tests set its
    archive and read its requests."""
    with serving(KaggleStandIn()) as server:
        yield server


@pytest.fixture
def metadata_service() -> Iterator[MetadataService]:
    """The instance metadata stand-in (tests/metadata_standin.py), for a trainer of the test's."""
    with serving(MetadataService()) as server:
        yield server


@pytest.fixture
def metadata(metadata_service: MetadataService, monkeypatch: pytest.MonkeyPatch) -> MetadataService:
    """The metadata stand-in as every local instance's IMDS, polled every 0.2 s (PACERID_*
    variables reach the local host)."""
    monkeypatch.setenv("PACERID_IMDS_URL", metadata_service.url)
    monkeypatch.setenv("PACERID_IMDS_POLL_SECONDS", "0.2")
    return metadata_service


Step = Literal["launch", "upload", "setup", "data", "train"]
STEPS: tuple[Step, ...] = ("launch", "upload", "setup", "data", "train")
TakeRun = Callable[..., Awaitable[tuple[Lifecycle, Run]]]


@pytest.fixture
async def take_run() -> AsyncIterator[TakeRun]:
    """`await take_run(config_path, to="train", listener=None)`: a new run of that config taken
    through launch → upload → setup → data → train (or up to the step `to`) on its provider,
    for tests about what comes after. Returns its lifecycle, still connected, and the run as
    the registry holds it then; every lifecycle it made is closed after the test (in the test's
    event loop, which its connections belong to)."""
    made: list[Lifecycle] = []

    async def take(
        path: Path, to: Step = "train", listener: Listener | None = None
    ) -> tuple[Lifecycle, Run]:
        lifecycle = Lifecycle(listener=listener)
        made.append(lifecycle)
        run = await lifecycle.launch(lifecycle.create_run(path, load_config(path)))
        for step in STEPS[1 : STEPS.index(to) + 1]:
            await getattr(lifecycle, step)(run)
        return lifecycle, lifecycle.registry.get(run.run_id)

    yield take
    for lifecycle in made:
        lifecycle.close()
