"""The dashboard benchmark's parent side: a pseudo-terminal that drains an app like a terminal
emulator, the embedded host with a fake trainer, and the JSON-lines stats the children write."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import termios
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COLS, ROWS = 160, 45
FIRST_FRAME = b"Quit"
"""The Footer's last key label: on screen once the first full frame is drawn."""


class Terminal:
    """A process in a pseudo-terminal whose output is drained (and scanned) as it arrives."""

    def __init__(self, argv: list[str], env: dict[str, str], watch: bytes = FIRST_FRAME) -> None:
        self.started = time.monotonic()
        pid, fd = pty.fork()
        if pid == 0:  # the child: size the terminal, then become the program
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
            os.chdir(REPO)
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        self.watch = watch
        self.seen_at: float | None = None
        self.bytes = 0
        self.tail = b""
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)
            if self.seen_at is None:
                window = self.tail + data
                if self.watch in window:
                    self.seen_at = time.monotonic()
                self.tail = window[-64:]
            elif len(self.tail) < 4096:
                self.tail += data[:256]

    def wait_frame(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.seen_at is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no first frame after {timeout} s: {self.tail[-300:]!r}")
            time.sleep(0.002)
        return self.seen_at - self.started

    def key(self, text: str) -> int:
        stamp = time.monotonic_ns()
        os.write(self.fd, text.encode())
        return stamp

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.key("q")
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)

    def exited(self) -> bool:
        return os.waitpid(self.pid, os.WNOHANG)[0] != 0


def read_stats(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_stats(path: Path, check: Any, timeout: float, what: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        stats = read_stats(path)
        if check(stats):
            return stats
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}; got {stats[-3:]}")
        time.sleep(0.1)


FAKE_TRAINER = r"""
import json, os, sys, time
out = sys.argv[1]
status = {"phase": "training", "pid": os.getpid(), "epoch": 1, "epochs": 3}
tmp = os.path.join(out, ".status.json.tmp")
with open(tmp, "w") as f:
    json.dump(status, f)
os.replace(tmp, os.path.join(out, "status.json"))
with open(os.path.join(out, "train.log"), "a", buffering=1) as log, \
        open(os.path.join(out, "metrics.jsonl"), "a", buffering=1) as metrics:
    step = 0
    while True:
        step += 1
        loss = 1.5 / (1 + step / 50)
        log.write(f"Epoch 1/3 step {step}/400 loss {loss:.4f} lr 0.002 312.5 img/s\n")
        metrics.write(json.dumps({"event": "step", "time": time.time(), "epoch": 1,
            "epochs": 3, "step": step, "steps": 400, "loss": round(loss, 6),
            "images_per_s": 312.5}) + "\n")
        time.sleep(1.0)
"""


class Host:
    """One embedded local instance, and a registry holding exactly one run on it at a time."""

    def __init__(self, config: Path) -> None:
        from pacerid_tui import paths
        from pacerid_tui.core.cloud.local import LocalProvider
        from pacerid_tui.core.kernel.models import InstanceSpec
        from pacerid_tui.core.steps.registry import Registry

        self.config = config
        self.provider = LocalProvider()
        self.registry = Registry(paths.registry_file())
        self.instance = self.provider.launch(InstanceSpec(run_id="bench", provider="local"))
        folder = paths.local_instances_dir() / self.instance.instance_id
        self.workspace = folder / "workspace"
        self.server_pid = int(json.loads((folder / "server.json").read_text())["pid"])
        self._pin(folder)
        self.count = 0

    def _pin(self, folder: Path) -> None:
        """Pin the host key for the OpenSSH baseline (the app would pin it the same way)."""
        import asyncssh

        from pacerid_tui import paths

        key = asyncssh.read_private_key(folder / "host_key")
        kind, body = key.export_public_key("openssh").decode().split()[:2]
        paths.known_hosts_file().write_text(f"{self.instance.instance_id} {kind} {body}\n")

    def new_run(self) -> tuple[str, Path]:
        """A fresh run that has been trained (so the dashboard follows it at once)."""
        from pacerid_tui.core.kernel.models import Run

        for old in self.registry.runs():
            self.registry.remove(old.run_id)
        self.count += 1
        run_id = f"bench-{self.count}-{os.getpid()}"
        run = Run(
            run_id=run_id,
            provider="local",
            config_path=str(self.config),
            created_at=time.time(),
            instance=self.instance,
            steps_done=["launch", "upload", "setup", "data", "train"],
            epoch=1,
            epochs=3,
        )
        self.registry.save(run)
        output = self.workspace / "pacerid" / run_id / "output"
        output.mkdir(parents=True)
        return run_id, output

    def status_for(self, output: Path, pid: int) -> None:
        """A status.json saying training runs as `pid` (what the liveness check reads)."""
        (output / "status.json").write_text(
            json.dumps({"phase": "training", "pid": pid, "epoch": 1, "epochs": 3})
        )

    def ssh_argv(self, *command: str) -> list[str]:
        from pacerid_tui import paths
        from pacerid_tui.core.remote import ssh

        argv = ssh.Target.of(self.instance, paths.known_hosts_file()).ssh_argv(*command)
        return [argv[0], "-F", "/dev/null", "-o", "BatchMode=yes", *argv[1:]]

    def close(self) -> None:
        self.provider.terminate(self.instance.instance_id)


def term_env() -> dict[str, str]:
    """A user's terminal: no Textual overrides, and bytecode caches written (a shell that sets
    PYTHONDONTWRITEBYTECODE, as this machine's tool shell does, would have every start compile
    our modules while Textual's come compiled from pip: 14 ms for ui/app.py alone)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TEXTUAL") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(TERM="xterm-256color", COLORTERM="truecolor", COLUMNS=str(COLS), LINES=str(ROWS))
    return env
