"""The host side of the contract: where a run lives on the host and the shell commands we send.

Paths are relative to the login home (`~/pacerid/<run-id>/…`), which SFTP and commands share on
an EC2 host and on the embedded server alike. Commands are built here, in one place, so tests
and the `ssh` command see exactly what runs on the host.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pacerid_tui.config import Config
from pacerid_tui.core.kernel.errors import PaceridError
from pacerid_tui.core.kernel.models import Instance
from pacerid_tui.core.remote.sync import Excludes, local_tree

TRAINING_SESSION = "training"
"""tmux session name, so the guide's `tmux attach -t training` works."""
LIVE_PHASES = ("starting", "training")
INTERRUPTED_EXIT = 75
"""The trainer's exit code after a spot notice or SIGTERM (checkpoint written)."""


@dataclass(frozen=True)
class HostPaths:
    run_id: str

    @staticmethod
    def results_filter(
        checkpoints: bool, epoch_checkpoints: bool, final: bool
    ) -> Callable[[str], bool]:
        """Which files of output/ a download takes: everything but the resumable checkpoints
        (`checkpoint_*.pt`, the large files) unless `checkpoints`, the per-epoch ones only when
        `epoch_checkpoints` too, and model_final.pt (the same state as the last
        checkpoint_latest.pt) only when `final`. model_best_fp16.pt, metrics, logs always come."""

        def wanted(rel: str) -> bool:
            name = Path(rel).name
            if name == "model_final.pt":
                return checkpoints and final
            if not name.startswith("checkpoint_"):
                return True
            return checkpoints and (epoch_checkpoints or not name.startswith("checkpoint_epoch_"))

        return wanted

    @property
    def root(self) -> str:
        return f"pacerid/{self.run_id}"

    @property
    def code(self) -> str:
        return f"{self.root}/code"

    @property
    def data(self) -> str:
        return f"{self.root}/data"

    @property
    def output(self) -> str:
        return f"{self.root}/output"

    @property
    def shell_root(self) -> str:
        """The root as the shell should see it (absolute, via $HOME)."""
        return f'"$HOME"/{shlex.quote(self.root)}'

    def python(self, *args: str) -> str:
        """`<run>/bin/python -m trainer …`, run from code/ (where setup left the wrapper)."""
        root = self.shell_root
        quoted = " ".join(shlex.quote(a) for a in args)
        return f"cd {root}/code && PYTHONUNBUFFERED=1 {root}/bin/python -m trainer {quoted}"

    def setup_command(self) -> str:
        return f"bash {self.shell_root}/code/trainer/setup_host.sh {self.shell_root}"

    def trainer_args(self, verb: str, *extra: str) -> list[str]:
        return [verb, "--config", "run.yaml", "--data", "../data", *extra]

    def train_command(self, resume: str = "auto") -> str:
        """Start training detached: in tmux session `training` where tmux exists, else setsid."""
        inner = self.python(
            *self.trainer_args("train", "--output", "../output", "--resume", resume)
        )
        out = f"{self.shell_root}/output"
        return (
            f"mkdir -p {out} && if command -v tmux >/dev/null 2>&1; then "
            f"tmux kill-session -t {TRAINING_SESSION} 2>/dev/null; "
            f"tmux new-session -d -s {TRAINING_SESSION} {shlex.quote(inner)}; "
            f"else setsid nohup bash -c {shlex.quote(inner)} > {out}/nohup.out 2>&1 "
            "< /dev/null & fi"
        )

    def training_state_command(self) -> str:
        """Prints status.json (or {}), then `alive` when the trainer's process still runs.

        Also touches the heartbeat the host's watchdog waits for: asking is watching.
        """
        status = f"{self.shell_root}/output/status.json"
        return (
            f"touch {self.shell_root}/heartbeat 2>/dev/null; "
            f"cat {status} 2>/dev/null || echo '{{}}'; echo; "
            f"pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' {status} 2>/dev/null); "
            '{ [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; } && echo alive; '
            f"command -v tmux >/dev/null 2>&1 && tmux has-session -t {TRAINING_SESSION} "
            "2>/dev/null && echo session; true"
        )


@dataclass(frozen=True)
class TrainingState:
    phase: str
    alive: bool
    epoch: int | None
    epochs: int | None

    @classmethod
    def parse(cls, output: str) -> TrainingState:
        first, _, rest = output.partition("\n")
        try:
            status = json.loads(first or "{}")
        except ValueError:
            status = {}
        alive = "alive" in rest.split() or "session" in rest.split()
        return cls(
            status.get("phase", "not started"), alive, status.get("epoch"), status.get("epochs")
        )


def trainer_dir() -> Path:
    """The bundled trainer package, wherever pacerid-tui is installed (not imported: no torch)."""
    spec = importlib.util.find_spec("trainer")
    if spec is None or spec.origin is None:
        raise PaceridError(
            "The bundled trainer package is missing; reinstall pacerid-tui (make venv)."
        )
    return Path(spec.origin).parent


def code_files(config_path: Path, extra_excludes: list[str]) -> dict[str, Path]:
    """What `upload` sends to code/: trainer/, the repo's configs/, and the run's config."""
    excludes = Excludes([*Excludes().patterns, *extra_excludes])
    trainer = trainer_dir()
    files = {f"trainer/{rel}": path for rel, path in local_tree(trainer, excludes).items()}
    configs = trainer.parent / "configs"
    if configs.is_dir():
        files |= {f"configs/{rel}": path for rel, path in local_tree(configs, excludes).items()}
    files["run.yaml"] = config_path
    return files


BUDGET_LEFT_FLOOR_USD = 1e-6
"""What a host is told is left of a spent budget: the watchdog reads 0 as "no budget"."""


@dataclass(frozen=True)
class WatchdogSettings:
    """watchdog.json as the controller writes it: the mirror of trainer/watchdog.py's
    `WatchdogSettings`, which defines the keys (the host reads them; the two programs never
    import each other). tests/core/test_watchdog_contract.py holds the two field by field, so a
    key added on one side only fails there."""

    launched_at: float | None
    max_runtime_s: float | None
    idle_s: float | None
    budget_usd: float | None
    spent_usd: float
    price_per_hour: float | None
    spot_request_id: str | None
    """Stop mode only (else None): the host cancels its own spot request, then terminates."""
    instance_id: str | None
    region: str | None
    stall_s: float | None
    on_stall: str

    def json(self) -> str:
        return json.dumps(asdict(self)) + "\n"


def watchdog_settings(
    config: Config, instance: Instance, spent_usd: float = 0.0
) -> WatchdogSettings:
    """What the host's dead-man switch enforces (trainer/watchdog.py reads it). A replacement
    host gets what is left of the budget after the run's earlier instances (`spent_usd`). A host
    with a spot request is told its own ids, for its cancel-then-terminate in stop mode. The
    stall watch (trainer/stall.py) gets its limit (None: the host's default, from the step
    intervals it sees) and what a stall does."""
    limits = config.instance
    left = limits.budget_usd
    if left is not None:
        left = max(left - spent_usd, BUDGET_LEFT_FLOOR_USD)
    spot = instance.spot_request_id is not None
    return WatchdogSettings(
        launched_at=instance.launched_at,
        max_runtime_s=limits.max_runtime_minutes * 60 if limits.max_runtime_minutes else None,
        idle_s=limits.idle_terminate_minutes * 60,
        budget_usd=left,
        spent_usd=spent_usd,
        # An upper bound: spot never bills above max_price.
        price_per_hour=limits.max_price,
        spot_request_id=instance.spot_request_id,
        instance_id=instance.instance_id if spot else None,
        region=instance.region if spot else None,
        stall_s=stall * 60 if (stall := config.training.stall_minutes) else None,
        on_stall=limits.on_stall,
    )
