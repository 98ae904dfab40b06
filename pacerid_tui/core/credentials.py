"""Kaggle credentials, found where the kaggle client itself looks, handed over only via stdin.

They travel to the host as one JSON line on the download command's stdin, so they never appear
in argv, environment files, shell history, logs or on the host's disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pacerid_tui.core.errors import CredentialsError

HOW_TO = (
    "Kaggle credentials are missing: set KAGGLE_USERNAME and KAGGLE_KEY, or put kaggle.json "
    "(Kaggle → Settings → API → Create New Token) in ~/.kaggle/, or use data.source: synthetic."
)


def kaggle_credentials() -> dict[str, str]:
    """{"username", "key"}; CredentialsError saying what to do when there are none."""
    username, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if username and key:
        return {"username": username, "key": key}
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    path = folder / "kaggle.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CredentialsError(HOW_TO) from None
    except (OSError, ValueError):
        raise CredentialsError(
            f"{path} is not valid JSON; download a new token from Kaggle."
        ) from None
    if isinstance(raw, dict) and raw.get("username") and raw.get("key"):
        return {"username": str(raw["username"]), "key": str(raw["key"])}
    raise CredentialsError(f"{path} lacks 'username' or 'key'; download a new token from Kaggle.")
