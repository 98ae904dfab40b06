"""Shared helpers for the benchmark scripts: a real OpenSSH sshd on 127.0.0.1, process meters,
percentiles and the machine line every result is printed with.

The sshd is started the way tests/conftest.py does it (own config, host key and client key in a
temporary folder, nothing from the system's sshd_config), but without importing the tests.
Both our client (asyncssh) and the OpenSSH client reach it with the same pinned host key.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(REPO))

from pacerid_tui.core.remote import ssh  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """One line: date, cores, memory, Python, and the load average when the run started."""
    cores = os.cpu_count() or 0
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {cores} cores, {mem_gib:.0f} GiB, "
        f"Python {platform.python_version()}, load average {load}"
    )


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def row(*cells: object) -> str:
    """A Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


# The host process: `rate` mode writes `count` lines at a fixed rate (line-buffered, one write
# per line, like a trainer's log); `probe` mode writes `count` single lines 1.2-2.2 s apart.
WRITER = r"""
import random, sys, time
mode, path, rate, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
pad = "x" * 40
with open(path, "a", buffering=1) as out:
    start = time.monotonic()
    seq = 0
    while seq < count:
        if mode == "probe":
            time.sleep(random.uniform(1.2, 2.2))
            out.write(f"{seq} {time.monotonic_ns()} {pad}\n")
            seq += 1
            continue
        due = min(count, int((time.monotonic() - start) * rate) + 1)
        while seq < due:
            out.write(f"{seq} {time.monotonic_ns()} {pad}\n")
            seq += 1
        time.sleep(0.0005)
"""


def start_writer(mode: str, path: Path, rate: float, count: int) -> subprocess.Popen[bytes]:
    """The host process (see WRITER): `rate` lines/s, or `probe` lines after quiet gaps."""
    return subprocess.Popen([sys.executable, "-c", WRITER, mode, str(path), str(rate), str(count)])


# -- processes ------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB, from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def kill_marked(marker: str) -> None:
    """Stop processes whose command line holds `marker` (a unique folder name of this run).

    `ssh host tail -F file` leaves its remote `tail` running until it next writes; the marker is a
    random name only this benchmark's processes carry, so nothing else is touched.
    """
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGTERM)


# -- a real OpenSSH sshd --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sshd:
    """An OpenSSH sshd on 127.0.0.1 serving this user's home, with its own keys."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    alias: str

    @property
    def key(self) -> Path:
        return self.root / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def user(self) -> str:
        return getpass.getuser()

    @property
    def home(self) -> Path:
        """Where relative remote paths land (the sshd runs commands and SFTP from here)."""
        return Path.home()

    def target(self) -> ssh.Target:
        """What our own client (pacerid_tui.core.remote.ssh) connects with."""
        return ssh.Target(
            "127.0.0.1", self.port, self.user, str(self.key), self.alias, self.known_hosts
        )

    def ssh_argv(self, *command: str) -> list[str]:
        """The OpenSSH client, same key and pinned host key, no user config, no agent."""
        argv = self.target().ssh_argv(*command)
        return [
            argv[0],
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            *argv[1:],
        ]

    def ssh_e(self) -> str:
        """The same client as one `-e` string for rsync."""
        argv = self.ssh_argv()[:-1]  # without user@host
        return " ".join(argv)

    def remote(self, path: str) -> str:
        return f"{self.user}@127.0.0.1:{path}"


def sshd_binary() -> str:
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(found):
        sys.exit("OpenSSH sshd is missing: apt-get install -y openssh-server (or `make test`).")
    return found


@contextlib.contextmanager
def sshd(*, user_rc: bool = False) -> Iterator[Sshd]:
    """Start the sshd. Sessions get HOME set to an empty folder unless user_rc: bash sources
    ~/.bashrc for every command sshd runs, and this machine's (pyenv init) adds ~0.4 s to each
    remote command, which says nothing about either tool. Commands and SFTP still start in the
    real home folder (sshd changes to the passwd home, not $HOME)."""
    root = Path(tempfile.mkdtemp(prefix="pacerid-bench-sshd-"))
    try:
        (root / "home").mkdir()
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True
            )
        os.chmod(root / "client_key", 0o400)
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        os.chmod(root / "authorized_keys", 0o600)
        alias = f"bench-sshd-{secrets.token_hex(3)}"
        kind, body = (root / "host_key.pub").read_text().split()[:2]
        (root / "known_hosts").write_text(f"{alias} {kind} {body}\n")
        port = free_port()
        (root / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile {root / 'sshd.pid'}\n"
            "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 100\nMaxSessions 50\n"
            + ("" if user_rc else f"SetEnv HOME={root / 'home'}\n")
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
                        sys.exit(f"sshd did not start: {(root / 'sshd.log').read_text()}")
                    time.sleep(0.05)
            yield Sshd(root, port, process, alias)
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def remote_dir(server: Sshd, label: str) -> Iterator[str]:
    """A fresh folder under the sshd's home (relative path), removed afterwards."""
    name = f"pacerid-bench-{label}-{secrets.token_hex(4)}"
    (server.home / name).mkdir()
    try:
        yield name
    finally:
        kill_marked(name)
        shutil.rmtree(server.home / name, ignore_errors=True)
