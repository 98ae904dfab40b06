"""boto3 clients for the AWS provider, and the one place AWS failures become user sentences.

Every client is built here, and each gets one botocore hook (`after-call-error`) so that what a
call raises is always botocore's own kind, a ClientError or a BotoCoreError: an answer that is
not the service's XML or JSON (a proxy's or an outage's web page) makes botocore's parser raise
its ResponseParserError, which is neither, and which no handler of ours would catch; the hook
turns it into NotAwsAnswer. `user_error` then turns any of them into one sentence, and NoAnswer
marks those that say nothing about the account (unreachable, too slow, a server error, a page
that is not AWS's): a doctor check that meets one cannot tell, and says why.

Two EC2 clients share a session: `ec2` retries throttling and server errors with backoff (the
standard retry mode; it never retries a client error such as a bad parameter), while `launch` is
fail-fast, because EC2 answers a full zone with a 5xx `InsufficientInstanceCapacity` that a retry
would only repeat — the next zone or instance type is the useful retry (see aws_launch.py).
boto3 clients are thread-safe once built; building them is not, hence the lock.

Every client is built in `AwsClients._client`, so that is where `PACERID_AWS_CALL_LOG` is
honoured: each AWS action the tool calls is appended to that file as IAM names it
(`ec2:RunInstances`), which is what docs/aws-policy.json must allow (the test suite checks it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)

from pacerid_tui.core.kernel.errors import CredentialsError, PaceridError, ProviderError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

API_ATTEMPTS = 5
"""Total tries for ordinary calls: rides out a few seconds of throttling (standard mode backs off
exponentially with jitter, up to 20 s a wait) without hanging a status refresh for minutes."""

LAUNCH_ATTEMPTS = 1
"""run_instances is tried once: a capacity error moves on to the next zone or type at once."""

OTHER_ATTEMPTS = 2
"""STS and Service Quotas are asked by the pre-launch checks, which must stay quick: one retry."""

CONNECT_TIMEOUT_S = 10
"""Seconds to open a connection; a dead network should fail within one status refresh."""

READ_TIMEOUT_S = 30
"""Seconds to wait for an answer; EC2 answers describe calls in well under a second."""

EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
REJECTED_CODES = frozenset(
    {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
)

NO_CREDENTIALS = (
    "No AWS credentials found; run `aws configure` (or `aws sso login`), "
    "or set AWS_PROFILE or instance.profile to a configured profile."
)
EXPIRED = "The AWS credentials have expired; refresh them (for SSO: `aws sso login`) and retry."
REJECTED = (
    "AWS rejected the credentials; check them with `aws sts get-caller-identity` "
    "and fix them with `aws configure`."
)


class NotAwsAnswer(BotoCoreError):
    """An answer botocore could not read as the service's own (raised by `foreign_answer`)."""

    fmt = "The answer to {operation} was not AWS's: {reason}"


class NoAnswer(ProviderError):
    """AWS gave nothing to go on: it could not be reached, did not answer in time, failed on
    its side (HTTP 5xx), or what came back was not AWS's answer. It says nothing about the
    account or the config, so a check that meets it cannot tell."""


def foreign_answer(exception: Exception, event_name: str = "", **_: Any) -> None:
    """botocore's `after-call-error` hook on every client of ours: anything a call raises that
    is not botocore's own kind (its parser's ResponseParserError for an HTML page, above all)
    is raised again as NotAwsAnswer, so every `except BotoCoreError` and `aws_errors` covers
    it. Raising from the hook replaces the call's exception (botocore emits the event inside
    its `except` block and re-raises only when the handlers return)."""
    if isinstance(exception, BotoCoreError | ClientError):
        return
    reason = (str(exception).splitlines() or [type(exception).__name__])[0][:200]
    operation = event_name.rsplit(".", 1)[-1] or "an AWS call"
    raise NotAwsAnswer(operation=operation, reason=reason) from exception


CALL_LOG_ENV = "PACERID_AWS_CALL_LOG"
"""A file to append each AWS action to, one `service:Action` a line (unset: nothing is kept)."""


def record_call(model: Any, **_: Any) -> None:
    """botocore's before-call event: the action as IAM names it, whose prefix is the service's
    signing name (servicequotas for service-quotas). One short O_APPEND write per line, so
    threads and processes sharing the file never interleave."""
    path = os.environ.get(CALL_LOG_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{model.service_model.signing_name}:{model.name}\n")
    except OSError as err:
        raise UsageError(
            f"Cannot append to {CALL_LOG_ENV}={path} ({err.strerror or err}); point it at a "
            "writable file, or unset it."
        ) from err


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def error_message(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message", "")).rstrip(".")


def user_error(err: Exception, action: str) -> PaceridError:
    """The one sentence a user sees when AWS fails while we `action` (e.g. "launch an instance")."""
    if isinstance(err, PaceridError):
        return err
    if isinstance(err, ProfileNotFound):
        profile = err.kwargs.get("profile", "?")
        return CredentialsError(
            f"AWS profile '{profile}' is not configured; add it with "
            f"`aws configure --profile {profile}` or fix instance.profile."
        )
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(NO_CREDENTIALS)
    if isinstance(err, SSOError | TokenRetrievalError):
        return CredentialsError(EXPIRED)
    if isinstance(err, NoRegionError):
        return CredentialsError("No AWS region set; set instance.region in the config.")
    if isinstance(err, ClientError):
        code = error_code(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code.isdigit():  # botocore's name for an error page it could not read as AWS's
            return NoAnswer(
                f"AWS answered HTTP {code} with a page that is not AWS's when asked to {action} "
                "(a proxy, or an outage); check the network or proxy, and retry."
            )
        if code in EXPIRED_CODES:
            return CredentialsError(EXPIRED)
        if code in REJECTED_CODES:
            return CredentialsError(REJECTED)
        if code == "UnauthorizedOperation":
            return ProviderError(
                f"These AWS credentials may not {action}; grant the EC2 permission to the user."
            )
        if status >= 500:
            return NoAnswer(
                f"AWS failed on its side to {action}: {error_message(err)} ({code}); "
                "retry in a minute."
            )
        return ProviderError(f"AWS refused to {action}: {error_message(err)} ({code}).")
    if isinstance(err, NotAwsAnswer):
        return NoAnswer(
            f"What came back when asked to {action} was not AWS's answer (a web page from a "
            "proxy, or an outage); check the network or proxy, and retry."
        )
    if isinstance(err, ReadTimeoutError):
        return NoAnswer(f"AWS did not answer in time to {action}; check the network and retry.")
    if isinstance(err, ConnectionError | HTTPClientError):
        return NoAnswer(f"Cannot reach AWS to {action}; check the network and retry.")
    return ProviderError(f"AWS call failed while trying to {action}: {err}.")


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn any botocore failure inside the block into a PaceridError sentence."""
    try:
        yield
    except (BotoCoreError, ClientError) as err:
        raise user_error(err, action) from err


class AwsClients:
    """The session and EC2 (and SSM) clients for one region and profile, built on first use."""

    def __init__(self, region: str, profile: str | None, endpoint_url: str | None) -> None:
        self.region = region
        self.profile = profile
        self.endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._ec2: EC2Client | None = None
        self._launch: EC2Client | None = None
        self._ssm: Any = None
        self._iam: Any = None
        self._others: dict[str, Any] = {}

    def for_region(self, region: str) -> AwsClients:
        """Clients of another region on this session, under the same lock: botocore loads each
        service's model once per session, so a sweep of every region (aws_leftovers.py) builds
        its clients in milliseconds instead of a second each."""
        twin = AwsClients(region, self.profile, self.endpoint_url)
        with self._lock:
            twin._session = self._built_session()
        twin._lock = self._lock
        return twin

    def _built_session(self) -> boto3.Session:
        with aws_errors("open a session"):
            if self._session is None:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            return self._session

    def _client(self, attempts: int, service: str = "ec2") -> Any:
        session = self._built_session()
        with aws_errors("open a session"):
            config = Config(
                retries={"mode": "standard", "total_max_attempts": attempts},
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
            )
            options: dict[str, Any] = {"config": config, "region_name": self.region}
            if self.endpoint_url and service in ("ec2", "ssm", "iam"):  # sts, quotas: boto3's own
                options["endpoint_url"] = self.endpoint_url
            client = session.client(service, **options)  # type: ignore[call-overload]
            client.meta.events.register("after-call-error", foreign_answer)
            client.meta.events.register("before-call", record_call)
            return client

    def other(self, service: str) -> Any:
        """A client of another service (sts, service-quotas) on the same session; its endpoint
        comes from boto3's own settings (AWS_ENDPOINT_URL_<SERVICE>), never from ours."""
        with self._lock:
            if service not in self._others:
                self._others[service] = self._client(OTHER_ATTEMPTS, service)
            return self._others[service]

    def credential_source(self) -> str:
        """Where boto3 found the credentials: env, shared-credentials-file, sso, assume-role…"""
        self.ec2  # noqa: B018 -- builds the session
        assert self._session is not None
        with aws_errors("read the credentials"):
            found = self._session.get_credentials()
        return getattr(found, "method", None) or "none"

    @property
    def ec2(self) -> EC2Client:
        """For everything but run_instances: retries throttling and server errors."""
        with self._lock:
            if self._ec2 is None:
                self._ec2 = self._client(API_ATTEMPTS)
            return self._ec2

    @property
    def launch(self) -> EC2Client:
        """For run_instances only: one try, so capacity errors fail over at once."""
        with self._lock:
            if self._launch is None:
                self._launch = self._client(LAUNCH_ATTEMPTS)
            return self._launch

    @property
    def ssm(self) -> Any:
        """For AWS's public image parameters (aws_ami.py); retries like `ec2`."""
        with self._lock:
            if self._ssm is None:
                self._ssm = self._client(API_ATTEMPTS, "ssm")
            return self._ssm

    @property
    def iam(self) -> Any:
        """For the instance role of stop mode (aws_role.py); retries like `ec2`."""
        with self._lock:
            if self._iam is None:
                self._iam = self._client(API_ATTEMPTS, "iam")
            return self._iam
