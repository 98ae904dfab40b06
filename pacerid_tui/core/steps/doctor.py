"""`doctor`: what would stop a run, found before a cent is spent.

Each check reads (never writes) and answers ok, warn or fail with one sentence of detail and one
of fix. A fail is something that would block the run (no vCPU quota, no VPC, no credentials); a
warn is worth knowing but does not block. The local provider needs none of the AWS checks.

`preflight` runs the blocking subset (quick: STS, Service Quotas and a few describe calls, and
one call asking Kaggle about the credentials and the dataset) before any launch, and remembers
a config that passed for the rest of the process, so the dashboard's launches and `all`'s
recoveries ask once. A config that failed is asked again: the user may have fixed the account
meanwhile; changed Kaggle credentials are asked about anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pacerid_tui import paths
from pacerid_tui.config import Config, InstanceConfig
from pacerid_tui.core.kernel.checks import FAIL, OK, WARN, Check, cannot_tell, from_error
from pacerid_tui.core.kernel.errors import CredentialsError, PaceridError
from pacerid_tui.core.kernel.models import EVERY_REGION
from pacerid_tui.core.steps import leftovers, placement_rank
from pacerid_tui.core.steps.credentials import kaggle_credentials, kaggle_source
from pacerid_tui.core.steps.placement_rank import placed
from pacerid_tui.core.steps.registry import Registry

if TYPE_CHECKING:
    from pacerid_tui.core.cloud.aws import AwsProvider
    from pacerid_tui.core.cloud.base import Provider

NAMES = (
    "credentials",
    "instance_type",
    "quota",
    "network",
    "image",
    "key_pair",
    "firewall",
    "role",
    "price",
    "leftovers",
    "kaggle",
)
BLOCKING = ("credentials", "instance_type", "quota", "network", "kaggle")
"""Run before every launch: each would stop it, and each answers in well under a second."""
NOT_NEEDED = "Not needed: the local provider runs on this machine at no cost."


class PreflightError(PaceridError):
    """A blocking check failed before the launch; the message is its detail and fix."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def kaggle_check(config: Config) -> Check:
    if config.data.source != "kaggle":
        return Check("kaggle", OK, f"Not needed: data.source is {config.data.source}.", "")
    try:
        where = kaggle_source()
        credentials = kaggle_credentials()
    except CredentialsError as err:
        return from_error("kaggle", err)
    return ask_kaggle(config.data.dataset, credentials, where)


KAGGLE_TIMEOUT_S = 10.0
"""How long the kaggle check waits to connect, and then for Kaggle's answer."""
REFUSED_FIX = (
    "Create a new API token (Kaggle → Settings → API) and put it in KAGGLE_API_TOKEN or "
    "~/.kaggle/access_token, or correct KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json."
)


def ask_kaggle(dataset: str, credentials: dict[str, str], where: str) -> Check:
    """Kaggle's own answer, to these credentials, on whether `dataset` is there for them.

    One GetDataset call through kagglesdk's KaggleClient, which honours KAGGLE_API_ENVIRONMENT
    (kaggle's `KaggleApi.authenticate` checks a token against production whatever it says); the
    `kaggle` package is not imported, as it prints a banner. A token goes as Bearer, a legacy
    key as HTTP Basic, as trainer/download.py hands them over. No answer is a warn: doctor must
    work offline, and the data step is what needs Kaggle.
    """
    owner, _, rest = dataset.partition("/")
    slug = rest.split("/")[0]
    if not owner or not slug:
        fix = "Write data.dataset as owner/name, e.g. jamesphoward/pacemakers."
        return Check("kaggle", FAIL, f"data.dataset = {dataset!r} is not owner/name.", fix, True)
    found = f"{where[:1].upper()}{where[1:]}"
    try:
        import requests
        from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest
        from kagglesdk.kaggle_env import get_endpoint, get_env
    except ImportError:
        fix = "Install the kaggle package (pip install kaggle) to let doctor ask Kaggle."
        return Check("kaggle", WARN, f"{found} found; kagglesdk is not installed here.", fix)
    request = ApiGetDatasetRequest()
    request.owner_slug, request.dataset_slug = owner, slug
    try:
        with kaggle_session(credentials) as client:
            client.datasets.dataset_api_client.get_dataset(request)
    except requests.HTTPError as err:
        status = getattr(err.response, "status_code", None)
        if status == 401:
            detail = f"Kaggle refused these credentials (HTTP 401): {where}."
            return Check("kaggle", FAIL, detail, REFUSED_FIX, True)
        if status in (403, 404):
            detail = f"Dataset {dataset} not found or not accessible (HTTP {status})."
            fix = (
                "Check data.dataset (owner/name, as in the dataset's Kaggle URL), or use the "
                "credentials of an account that can see it."
            )
            return Check("kaggle", FAIL, detail, fix, True)
        detail = f"Kaggle answered HTTP {status} for {dataset}; {where} not confirmed."
        return Check("kaggle", WARN, detail, "Run doctor again later.")
    except requests.RequestException as err:
        detail = (
            f"Could not reach Kaggle at {get_endpoint(get_env())} (network): {_reason(err)}; "
            f"{where} found but not confirmed."
        )
        fix = "Check the connection (or proxy) and run doctor again; the data step needs Kaggle."
        return Check("kaggle", WARN, detail, fix)
    except Exception as err:  # kagglesdk raises plain Exception, e.g. for its environment
        text = str(err)
        for secret in credentials.values():
            text = text.replace(secret, "***")
        return Check("kaggle", WARN, f"Could not ask Kaggle: {text}", "See the detail.")
    detail = f"{found} accepted by Kaggle; dataset {dataset} reachable."
    return Check("kaggle", OK, detail + " They reach the host only over SSH stdin.", "")


@contextlib.contextmanager
def kaggle_session(credentials: dict[str, str]) -> Iterator[Any]:
    """kagglesdk's KaggleClient with these credentials (a token as Bearer, a legacy key as HTTP
    Basic, as trainer/download.py hands them over), every request bounded in time."""
    import requests
    from kagglesdk import KaggleClient

    if "token" in credentials:
        auth = {"api_token": credentials["token"]}
    else:
        auth = {"username": credentials["username"], "password": credentials["key"]}
    with KaggleClient(**auth) as client:
        # kagglesdk sets no timeout of its own: every request of its session gets ours.
        client.http_client()._session.mount("http://", _bounded(requests))
        client.http_client()._session.mount("https://", _bounded(requests))
        yield client


def _bounded(requests: Any) -> Any:
    """A requests transport adapter that gives every request KAGGLE_TIMEOUT_S."""

    class Bounded(requests.adapters.HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = KAGGLE_TIMEOUT_S
            return super().send(request, **kwargs)

    return Bounded()


def _reason(err: Exception) -> str:
    """The socket's own words ("Connection refused", a timeout), not requests' long chain."""
    if isinstance(err, TimeoutError) or "timeout" in type(err).__name__.lower():
        return f"no answer within {KAGGLE_TIMEOUT_S:g} s"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(err))
    return found.group(1).strip() if found else type(err).__name__


def run_checks(
    config: Config,
    names: Sequence[str] = NAMES,
    provider: Provider | None = None,
    thorough: bool = True,
) -> list[Check]:
    """The named checks, in NAMES order; `provider` (an AwsProvider) reuses its clients.
    `thorough` also simulates the user's policy in the credentials check (preflight skips it)."""
    wanted = [name for name in NAMES if name in names]
    cloud = [name for name in wanted if name not in ("leftovers", "kaggle")]
    if config.instance.provider == "local":
        checks = [Check(name, OK, NOT_NEEDED, "") for name in cloud]
    else:
        from pacerid_tui.core.cloud.aws import AwsProvider  # boto3 only when needed
        from pacerid_tui.core.cloud.aws_doctor import aws_checks

        aws = provider if isinstance(provider, AwsProvider) else None
        if config.instance.regions is not None and config.instance.market == "spot":
            checks = regional_checks(config, cloud, aws, thorough)
        else:
            checks = aws_checks(config, cloud, aws, thorough)
    if "leftovers" in wanted:
        refused = [c for c in checks if c.check.startswith("credentials") and c.status == FAIL]
        checks.append(
            Check("leftovers", WARN, "Not checked: the credentials check failed.", "")
            if refused
            else leftovers_check(config, provider)
        )
    if "kaggle" in wanted:
        checks.append(kaggle_check(config))
    return checks


def leftovers_check(config: Config, provider: Provider | None = None) -> Check:
    """What of ours no run uses, everywhere the providers look (core/steps/leftovers.py):
    a warn when it costs money or a region cannot be read."""
    from pacerid_tui.core.cloud.factory import provider_for

    def make(instance: InstanceConfig) -> Provider:
        mine = provider is not None and instance == config.instance
        return provider if mine and provider is not None else provider_for(instance)

    try:
        found = leftovers.inventory(
            leftovers.providers(config, make), Registry(paths.registry_file()).runs()
        )
    except PaceridError as err:
        return from_error("leftovers", err, WARN)
    nowhere = [u for u in found.unreadable if u.region == EVERY_REGION]
    if nowhere and not found.found:
        return cannot_tell("leftovers", nowhere[0].reason)
    cannot = "; ".join(f"cannot tell for {u.region}: {u.reason}" for u in found.unreadable)
    sweep_fix = "List them with `pacerid-tui sweep`; `pacerid-tui sweep --yes` removes them."
    if found.unreadable:
        return Check("leftovers", WARN, f"{leftovers.summary(found)} {cannot}", sweep_fix)
    if leftovers.billing(found):
        return Check("leftovers", WARN, leftovers.summary(found), sweep_fix)
    if not found.leftovers and config.instance.provider == "local":
        return Check("leftovers", OK, NOT_NEEDED, "")
    return Check("leftovers", OK, leftovers.summary(found), sweep_fix if found.leftovers else "")


REGIONAL = ("credentials", "quota", "network", "image", "key_pair", "firewall", "price")
"""The checks whose answer depends on the region: asked in each candidate region."""


def regional_checks(
    config: Config,
    names: Sequence[str],
    provider: AwsProvider | None = None,
    thorough: bool = True,
) -> list[Check]:
    """With `instance.regions`: the ranking (`where`), then the named checks in each ranked
    region, side by side, named `quota (us-east-2)`; the role (IAM is global) once."""
    from pacerid_tui.core.cloud.aws import AwsProvider
    from pacerid_tui.core.cloud.aws_doctor import aws_checks

    try:
        choice = placement_rank.choose(provider or AwsProvider(config.instance), config)
    except PaceridError as err:
        return [from_error("where", err), *aws_checks(config, names, provider, thorough)]
    assert choice is not None, "a spot config with regions has a choice"
    scored = any(row.facts.score is not None for row in choice.ranked)
    detail = f"{'; '.join(choice.lines(3))}. {choice.basis}"
    fixes = [] if scored else ["allow yourself ec2:GetSpotPlacementScores"]
    if not choice.advisor:
        fixes.append(f"let this machine reach {config.instance.advisor_url}")
    fix = f"To rank on every signal, {' and '.join(fixes)}." if fixes else ""
    checks = [Check("where", WARN if fixes else OK, detail, fix)]
    regions = choice.regions()

    def in_region(index: int, region: str) -> list[Check]:
        wanted = [n for n in names if n in REGIONAL or (index == 0 and n not in REGIONAL)]
        here = aws_checks(
            placed(config, region),
            wanted,
            AwsProvider(config.instance.in_region(region)),
            thorough,
        )
        return [
            replace(c, check=f"{c.check} ({region})") if c.check in REGIONAL else c for c in here
        ]

    with ThreadPoolExecutor(4) as pool:
        for found in pool.map(in_region, range(len(regions)), regions):
            checks += found
    return checks


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing fails, 1 when something would block a run."""
    return 1 if any(check.status == FAIL for check in checks) else 0


_passed: set[str] = set()
_lock = threading.Lock()


def preflight(config: Config, provider: Provider | None = None) -> None:
    """Refuse (PreflightError with the fix) when a blocking check fails; cached once passed."""
    key = _cache_key(config)
    with _lock:
        if key in _passed:
            return
    failed = [
        check
        for check in run_checks(config, BLOCKING, provider, thorough=False)
        if check.status == FAIL
    ]
    if failed:
        first = failed[0]
        raise PreflightError(
            f"{first.check} check failed: {first.detail} {first.fix}".strip(),
            2 if first.usage else 1,
        )
    with _lock:
        _passed.add(key)


def _cache_key(config: Config) -> str:
    """What a pass depends on: the instance, the data and (as a digest) the Kaggle credentials,
    so changed or removed credentials are asked about again."""
    key = config.instance.model_dump_json() + config.data.source + config.data.dataset
    if config.data.source == "kaggle":
        try:
            found = json.dumps(kaggle_credentials(), sort_keys=True).encode()
        except CredentialsError:
            return key + " none"
        key += " " + hashlib.sha256(found).hexdigest()
    return key
