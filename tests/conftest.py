"""Shared fixtures: an isolated state folder per test, no way out to the real cloud, the two SSH
servers every remote operation is tested against (the embedded one and a real OpenSSH sshd), the
loopback stand-ins more than one folder uses, and a run taken to "training".

Every test owns what it starts, so the suite runs in parallel (pytest-xdist, `make test`): its
own state folder (PACERID_HOME) and tmux server folder (TMUX_TMPDIR) under a fresh temporary
folder, ports the kernel picks, and an sshd per worker (session fixtures are per worker). The
one port nobody can choose, Kaggle's localhost:7777, is locked and its tests sent to one worker.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.models import Instance, InstanceSpec, InstanceState, Run
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.steps.run_listener import Listener
from tests.kaggle_standin import KaggleStandIn, kaggle_port
from tests.metadata_standin import MetadataService
from tests.standins import serving

REPO = Path(__file__).resolve().parent.parent

KAGGLE_WORKER = "kaggle-port-7777"
"""The xdist group of every test that holds Kaggle's fixed port: one worker runs them all."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that hold Kaggle's fixed port run on one worker (`--dist loadgroup`), one after the
    other, instead of each worker waiting on the port's lock in turn."""
    for item in items:
        if "kaggle_port_held" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(KAGGLE_WORKER))


@pytest.fixture(autouse=True)
def no_leftover_instances(isolated: Path) -> Iterator[None]:
    """Whatever a test launched on the local provider is terminated after it, pass or fail."""
    yield
    provider = LocalProvider(isolated / "local")
    for instance in provider.find_managed():
        provider.terminate(instance.instance_id)


POLICY = REPO / "docs" / "aws-policy.json"


def not_in_the_policy(called: list[str]) -> list[str]:
    """The AWS actions called (`service:Action`) that docs/aws-policy.json does not allow."""
    from pacerid_tui.core.cloud.aws_policy import ALWAYS_ALLOWED

    allowed = {
        action
        for statement in json.loads(POLICY.read_text())["Statement"]
        for action in statement["Action"]
    }
    return sorted(set(called) - allowed - ALWAYS_ALLOWED)


@pytest.fixture(autouse=True)
def aws_calls_in_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every AWS action the tool calls during a test must be in docs/aws-policy.json.

    Each client the tool builds appends its calls to PACERID_AWS_CALL_LOG (aws_session.py), and
    the CLI's subprocesses inherit the variable; the file is the test's own, so the check holds
    under pytest-xdist. A call the policy lacks fails the test at teardown, naming it.
    """
    log = tmp_path / "aws-calls.log"
    monkeypatch.setenv("PACERID_AWS_CALL_LOG", str(log))
    yield log
    called = log.read_text().split() if log.exists() else []
    missing = not_in_the_policy(called)
    if missing:
        pytest.fail(
            f"The tool called {', '.join(missing)}, which docs/aws-policy.json does not allow; "
            "add each to pacerid_tui/core/cloud/aws_policy.py (and its README line), then "
            "regenerate the file (tests/aws/test_aws_policy.py says how)."
        )


TRAINER_THREADS = "1"
"""Torch threads per trainer a test starts. Several train at once (xdist workers, and other
suites on a shared machine) on few cores, and torch's default, a thread per core, makes their
OpenMP threads spin against each other: two tiny epochs took 118-135 s (37-44 s of CPU) with two
threads and 21 s (6 s of CPU) with one, on 2 cores under a load of 10."""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own state folder and tmux server folder, and nothing can reach AWS,
    IMDS or Kaggle for real. Both folders sit in a short temporary folder of the test's, not in
    tmp_path: a local instance's tmux socket lies deep in the state folder, and a socket's path
    may hold 107 bytes (tmp_path under an xdist worker is too deep for it)."""
    root = Path(tempfile.mkdtemp(prefix="pacerid-test-"))
    home, tmux = root / "home", root / "tmux"
    monkeypatch.setenv("PACERID_HOME", str(home))
    monkeypatch.setenv("TMUX_TMPDIR", str(tmux))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")  # kagglesdk asks localhost:7777
    for name in ("COLUMNS", "LINES"):  # an xdist worker's are 80x24: a program in a terminal
        monkeypatch.delenv(name, raising=False)  # (tests/e2e/test_tmux.py) takes the terminal's
    monkeypatch.setenv("OMP_NUM_THREADS", TRAINER_THREADS)  # reaches local hosts and trainers
    yield home
    end_tmux_servers(tmux)
    shutil.rmtree(root, ignore_errors=True)


def end_tmux_servers(folder: Path) -> None:
    """Kill every tmux server whose socket is under `folder` (tmux-UID/NAME)."""
    if shutil.which("tmux"):
        for socket_path in folder.glob("tmux-*/*"):
            subprocess.run(["tmux", "-S", str(socket_path), "kill-server"], capture_output=True)


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


@contextlib.contextmanager
def closed_port() -> Iterator[socket.socket]:
    """A loopback port held bound but not listening: a connect to it is refused, and no other
    test or worker can take it meanwhile (a port only found free could be). Listening on the
    socket opens it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def sshd_binary() -> str:
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(found):
        pytest.fail("OpenSSH sshd is missing; `make test` installs it (scripts/system-deps.sh).")
    return found


SSHD_START_S = 10
SSHD_TRIES = 5
"""sshd cannot bind port 0: a port found free may be taken by another worker before sshd binds
it, so a start that fails on a port in use is tried again on another."""


@contextlib.contextmanager
def running_sshd(root: Path, set_env: dict[str, str]) -> Iterator[Instance]:
    """A real OpenSSH sshd on 127.0.0.1 with its own config, host key and authorized key;
    `set_env` is what every session on it gets (sshd_config's SetEnv). Its tmux servers (a
    TMUX_TMPDIR in `set_env`) end with it."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True
        )
    os.chmod(root / "client_key", 0o400)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    process, port = start_sshd(root, {"OMP_NUM_THREADS": TRAINER_THREADS, **set_env})
    try:
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
        if "TMUX_TMPDIR" in set_env:
            end_tmux_servers(Path(set_env["TMUX_TMPDIR"]))


def start_sshd(root: Path, set_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """sshd listening, and its port. Ready once it wrote its pid file, which sshd does only
    after it bound its port (a connect could reach whoever else holds that port)."""
    env = " ".join(f"{name}={value}" for name, value in set_env.items())
    for _ in range(SSHD_TRIES):
        port = free_port()
        (root / "sshd.pid").unlink(missing_ok=True)
        (root / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile {root / 'sshd.pid'}\n"
            "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 100\nMaxSessions 50\n"
            + (f"SetEnv {env}\n" if env else "")
        )
        with open(root / "sshd.log", "wb") as log:
            process = subprocess.Popen(
                [sshd_binary(), "-D", "-e", "-f", str(root / "sshd_config")], stderr=log
            )
        deadline = time.monotonic() + SSHD_START_S
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError):
                if (root / "sshd.pid").read_text().strip():
                    return process, port
            time.sleep(0.02)
        if process.poll() is None:
            process.kill()
            process.wait()
        if "Address already in use" not in (root / "sshd.log").read_text():
            break
    pytest.fail(f"sshd did not start: {(root / 'sshd.log').read_text()}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A real OpenSSH sshd on 127.0.0.1, set up like the local provider's host: train with this
    interpreter, a private tmux server, and a watchdog that only logs (this "host" is the
    machine running the tests)."""
    root = tmp_path_factory.mktemp("sshd")
    env = {
        "PACERID_PYTHON": sys.executable,
        "PACERID_POWEROFF": "log-only",
        "AWS_EC2_METADATA_DISABLED": "true",  # boto3 on this "host" never asks 169.254.169.254
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
