"""Where the tool keeps its own state: the run registry, keys, known_hosts, local instances;
and the config it reads when none is given (the CLI and the dashboard share it).

`PACERID_HOME` overrides the platform's state folder; tests point it at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from pacerid_tui.core.kernel.errors import UsageError

DEFAULT_CONFIG = Path("configs/local.yaml")
"""The config when --config is not given: the local provider, relative to the working directory
(the repository, where `make run` starts)."""


def config_file(given: Path | str | None) -> Path:
    """The config file asked for with --config, else DEFAULT_CONFIG."""
    return Path(given) if given else DEFAULT_CONFIG


def home() -> Path:
    """The state folder, created on first use with owner-only permissions."""
    override = os.environ.get("PACERID_HOME")
    root = Path(override) if override else Path(platformdirs.user_state_dir("pacerid-tui"))
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(
            f"The state folder {root} cannot be made: a file stands in its way; point "
            "PACERID_HOME at a folder."
        ) from None
    return root


def registry_file() -> Path:
    return home() / "runs.json"


def run_config_file(run_id: str) -> Path:
    """A run's config as it was resolved at launch (frozen: steps read this, never the YAML)."""
    return home() / "runs" / run_id / "run.yaml"


def known_hosts_file() -> Path:
    """Host keys pinned per instance id (OpenSSH format, used with HostKeyAlias)."""
    return home() / "known_hosts"


def proxy_log_file() -> Path:
    """Where instance.ssh_proxy_command writes its errors."""
    return home() / "proxy.log"


def local_instances_dir() -> Path:
    """Each local instance: a folder with its keys, server log, pid file and workspace."""
    path = home() / "local"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def placement_scores_file() -> Path:
    """EC2's spot placement scores per configuration asked, kept a while (AWS limits new asks)."""
    return home() / "placement-scores.json"


def spot_advisor_file() -> Path:
    """The Spot Instance Advisor's public data as last fetched; its age is the file's."""
    return home() / "spot-advisor-data.json"
