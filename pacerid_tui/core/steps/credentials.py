"""Kaggle credentials, found where the kaggle client itself looks, handed over only via stdin.

Kaggle now issues API tokens as well as the legacy kaggle.json key. The search follows the
client's own order (kaggle's `KaggleApi.authenticate` tries a token first, then the legacy key;
kagglesdk's `get_access_token_from_env` says where a token may be): `KAGGLE_API_TOKEN` holding
the token or the path of a file with it, then `~/.kaggle/access_token` (or `.txt`), then
`KAGGLE_USERNAME` + `KAGGLE_KEY`, then `kaggle.json` in `KAGGLE_CONFIG_DIR` or `~/.kaggle`.

They travel to the host as one JSON line on the download command's stdin (`{"token": …}` or
`{"username": …, "key": …}`), so they never appear in argv, environment files, shell history,
logs or on the host's disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pacerid_tui.core.kernel.errors import CredentialsError

HOW_TO = (
    "Kaggle credentials are missing; create an API token (Kaggle → Settings → API) and put it "
    "in KAGGLE_API_TOKEN or ~/.kaggle/access_token, or set KAGGLE_USERNAME and KAGGLE_KEY, "
    "or put kaggle.json in ~/.kaggle/, or use data.source: synthetic."
)


def _token_file(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None


def _token() -> tuple[str, str] | None:
    """(token, where it was found) as kagglesdk finds it; None when there is none."""
    value = os.environ.get("KAGGLE_API_TOKEN")
    if value:
        if Path(value).exists():
            token = _token_file(Path(value))
            if token:
                return token, "the file named by KAGGLE_API_TOKEN"
        else:
            return value, "KAGGLE_API_TOKEN"
    for name in ("access_token", "access_token.txt"):
        path = Path("~/.kaggle").expanduser() / name
        token = _token_file(path)
        if token:
            return token, f"~/.kaggle/{name}"
    return None


def _legacy() -> tuple[dict[str, str], str]:
    username, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if username and key:
        return {"username": username, "key": key}, "KAGGLE_USERNAME and KAGGLE_KEY"
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
        return {"username": str(raw["username"]), "key": str(raw["key"])}, str(path)
    raise CredentialsError(f"{path} lacks 'username' or 'key'; download a new token from Kaggle.")


def _found() -> tuple[dict[str, str], str]:
    token = _token()
    if token is not None:
        return {"token": token[0]}, token[1]
    return _legacy()


def kaggle_credentials() -> dict[str, str]:
    """{"token"} or {"username", "key"}; CredentialsError saying what to do when there are none."""
    return _found()[0]


def kaggle_source() -> str:
    """Where the credentials were found (never their value), for the doctor."""
    payload, where = _found()
    kind = "an API token" if "token" in payload else "a legacy API key"
    return f"{kind} from {where}"
