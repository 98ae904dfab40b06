"""One check's answer (ok, warn or fail, a sentence of detail and one of fix): the shape that
doctor's checks share with the provider modules that run them (cloud/aws_doctor.py,
aws_host_checks.py).

Kept in the kernel so that a provider's checks and the doctor that asks for them both import
it, and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from pacerid_tui.core.kernel.errors import CredentialsError, PaceridError

OK, WARN, FAIL = "ok", "warn", "fail"


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


def from_error(name: str, err: PaceridError, status: str = FAIL) -> Check:
    """A check answered by one of our error sentences ("what is wrong; what to do")."""
    text = str(err)
    detail, _, fix = text.partition("; ")
    if not fix:
        return Check(name, status, text, "See the detail.", isinstance(err, CredentialsError))
    detail = detail.rstrip(".") + "."
    return Check(name, status, detail, fix[:1].upper() + fix[1:], err.exit_code == 2)


def cannot_tell(name: str, sentence: str) -> Check:
    """A check nothing could be learnt for (AWS unreachable, a page that is not AWS's): a warn
    that says so, with the sentence's reason and its fix."""
    detail, _, fix = sentence.partition("; ")
    detail = detail[:1].lower() + detail[1:].rstrip(".")
    return Check(
        name, WARN, f"Cannot tell: {detail}.", fix[:1].upper() + fix[1:] or "See the detail."
    )
