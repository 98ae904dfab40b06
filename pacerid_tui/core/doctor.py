"""`doctor`: what would stop a run, found before a cent is spent.

Each check reads (never writes) and answers ok, warn or fail with one sentence of detail and one
of fix. A fail is something that would block the run (no vCPU quota, no VPC, no credentials); a
warn is worth knowing but does not block. The local provider needs none of the AWS checks.

`preflight` runs the blocking subset (quick: STS, Service Quotas and a few describe calls)
before any launch, and remembers a config that passed for the rest of the process, so the
dashboard's launches and `all`'s recoveries ask AWS once. A config that failed is asked again:
the user may have fixed the account meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pacerid_tui.config import Config
from pacerid_tui.core.credentials import kaggle_source
from pacerid_tui.core.errors import CredentialsError, PaceridError

if TYPE_CHECKING:
    from pacerid_tui.core.cloud.base import Provider

OK, WARN, FAIL = "ok", "warn", "fail"
NAMES = ("credentials", "quota", "network", "image", "key_pair", "firewall", "price", "kaggle")
BLOCKING = ("credentials", "quota", "network", "kaggle")
"""Run before every launch: each would stop it, and each answers in well under a second."""
NOT_NEEDED = "Not needed: the local provider runs on this machine at no cost."


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str
    fix: str
    usage: bool = False
    """A fail the user fixes in their setup (credentials, config): exit code 2 when it blocks."""

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


class PreflightError(PaceridError):
    """A blocking check failed before the launch; the message is its detail and fix."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def from_error(name: str, err: PaceridError, status: str = FAIL) -> Check:
    """A check answered by one of our error sentences ("what is wrong; what to do")."""
    text = str(err)
    detail, _, fix = text.partition("; ")
    if not fix:
        return Check(name, status, text, "See the detail.", isinstance(err, CredentialsError))
    detail = detail.rstrip(".") + "."
    return Check(name, status, detail, fix[:1].upper() + fix[1:], err.exit_code == 2)


def kaggle_check(config: Config) -> Check:
    if config.data.source != "kaggle":
        return Check("kaggle", OK, f"Not needed: data.source is {config.data.source}.", "")
    try:
        where = kaggle_source()
    except CredentialsError as err:
        return from_error("kaggle", err)
    return Check(
        "kaggle",
        OK,
        f"Kaggle credentials found ({where}); they reach the host only over SSH stdin.",
        "",
    )


def run_checks(
    config: Config, names: Sequence[str] = NAMES, provider: Provider | None = None
) -> list[Check]:
    """The named checks, in NAMES order; `provider` (an AwsProvider) reuses its clients."""
    wanted = [name for name in NAMES if name in names]
    cloud = [name for name in wanted if name != "kaggle"]
    if config.instance.provider == "local":
        checks = [Check(name, OK, NOT_NEEDED, "") for name in cloud]
    else:
        from pacerid_tui.core.cloud.aws import AwsProvider  # boto3 only when needed
        from pacerid_tui.core.cloud.aws_doctor import aws_checks

        aws = provider if isinstance(provider, AwsProvider) else None
        checks = aws_checks(config, cloud, aws)
    if "kaggle" in wanted:
        checks.append(kaggle_check(config))
    return checks


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing fails, 1 when something would block a run."""
    return 1 if any(check.status == FAIL for check in checks) else 0


_passed: set[str] = set()
_lock = threading.Lock()


def preflight(config: Config, provider: Provider | None = None) -> None:
    """Refuse (PreflightError with the fix) when a blocking check fails; cached once passed."""
    key = config.instance.model_dump_json() + config.data.source
    with _lock:
        if key in _passed:
            return
    failed = [check for check in run_checks(config, BLOCKING, provider) if check.status == FAIL]
    if failed:
        first = failed[0]
        raise PreflightError(
            f"{first.check} check failed: {first.detail} {first.fix}".strip(),
            2 if first.usage else 1,
        )
    with _lock:
        _passed.add(key)
