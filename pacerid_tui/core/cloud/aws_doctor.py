"""The doctor's AWS checks: the account, as a launch would find it, without changing anything;
`aws_checks` runs them and the host checks (`aws_host_checks.py`: network, image, key pair,
firewall) by name.

The account's checks (credentials, permissions, instance types, quota, the stop-mode role, the
price) call only describe/get APIs and the same look-ups the launch uses (aws_quota, aws_types,
aws_prices, aws_role), so what the doctor says is what the launch will do; the role and
credentials checks also ask IAM's policy simulator (the credentials check about every action of
docs/aws-policy.json), which changes nothing. Any error becomes that check's fail or warn; one
that says nothing about the account (AWS unreachable, too slow, a server error, a page that is
not AWS's: aws_session's NoAnswer) makes that check "cannot tell", and costs no other. When the
credentials fail, the other checks are not asked (they would only repeat it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pacerid_tui.config import Config
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_host_checks import HostChecks
from pacerid_tui.core.cloud.aws_policy import missing
from pacerid_tui.core.cloud.aws_prices import current_prices, on_demand_price
from pacerid_tui.core.cloud.aws_quota import (
    ON_DEMAND,
    SPOT,
    QuotaReading,
    increase_fix,
    quota_for,
    read_quota,
    vcpus_in_use,
    vcpus_of,
)
from pacerid_tui.core.cloud.aws_role import HOST_ROLE, CannotTell, may_use
from pacerid_tui.core.cloud.aws_session import NoAnswer, aws_errors
from pacerid_tui.core.cloud.aws_types import FIX as TYPES_FIX
from pacerid_tui.core.cloud.aws_types import refusals
from pacerid_tui.core.kernel.checks import FAIL, OK, WARN, Check, cannot_tell, from_error
from pacerid_tui.core.kernel.errors import PaceridError


class AwsDoctor:
    """The account's checks of one config; `host` holds the host checks (`HostChecks`)."""

    def __init__(
        self, config: Config, provider: AwsProvider | None = None, thorough: bool = True
    ) -> None:
        self.config = config
        self.thorough = thorough
        """Also simulate docs/aws-policy.json for the caller (not before every launch: about
        thirty simulator calls)."""
        self.instance = config.instance
        self.provider = provider or AwsProvider(config.instance)
        self.ec2 = self.provider.clients.ec2
        self.host = HostChecks(self.instance, self.provider)

    def credentials(self) -> Check:
        sts = self.provider.clients.other("sts")
        with aws_errors("ask who these credentials are"):
            me = sts.get_caller_identity()
        source = self.provider.clients.credential_source()
        region = self.instance.region
        with aws_errors("describe the region"):
            regions = self.ec2.describe_regions(RegionNames=[region], AllRegions=True).get(
                "Regions", []
            )
        who = f"Account {me['Account']} as {me['Arn']} (credentials from {source})"
        if not regions:
            return Check(
                "credentials",
                FAIL,
                f"{who}; {region} is not an AWS region.",
                "Fix instance.region (for example us-east-1).",
                usage=True,
            )
        if regions[0].get("OptInStatus") == "not-opted-in":
            return Check(
                "credentials",
                FAIL,
                f"{who}; region {region} is not enabled for the account.",
                f"Enable {region} (Account → AWS Regions) or pick another instance.region.",
                usage=True,
            )
        if not self.thorough:
            return Check("credentials", OK, f"{who}; region {region} is enabled.", "")
        return self.permissions(f"{who}; region {region} is enabled", me)

    def permissions(self, said: str, me: Any) -> Check:
        """Whether the caller may call every action the tool calls: docs/aws-policy.json,
        simulated for them (aws_policy.py); the actions missing are named."""
        try:
            denied = missing(
                self.provider.clients.other("iam"),
                str(me["Arn"]),
                str(me["Account"]),
                self.instance.region,
            )
        except CannotTell as why:
            return Check(
                "credentials",
                WARN,
                f"{said}; cannot tell whether it may call every action the tool needs: {why}.",
                "Allow yourself iam:SimulatePrincipalPolicy to let doctor check "
                "(docs/aws-policy.json has it).",
            )
        if denied is None:
            return Check("credentials", OK, f"{said}; the root user may call every action.", "")
        if not denied:
            return Check("credentials", OK, f"{said}; it may call every action the tool needs.", "")
        named = ", ".join(f"{action} ({why})" for action, why in denied.items())
        return Check(
            "credentials",
            WARN,
            f"{said}; of the actions the tool calls, it may not call {named}.",
            "Ask an administrator to attach docs/aws-policy.json to you (README: What the tool "
            "may do on AWS says why each action is there).",
        )

    def instance_type(self) -> Check:
        """Every type the launch may ask for runs on Nitro and is one the PyTorch images
        support (aws_types.py), as EC2 describes it."""
        inst = self.instance
        types = list(dict.fromkeys([inst.instance_type, *inst.fallback_instance_types]))
        refused = refusals(self.ec2, types, inst.region)
        if refused:
            return Check("instance_type", FAIL, "; ".join(refused) + ".", TYPES_FIX, usage=True)
        detail = f"{', '.join(types)}: Nitro, and supported by the PyTorch Deep Learning AMI."
        return Check("instance_type", OK, detail, "")

    def quota(self) -> Check:
        inst = self.instance
        types = list(dict.fromkeys([inst.instance_type, *inst.fallback_instance_types]))
        markets: list[str] = [inst.market]
        if inst.market == SPOT and inst.on_demand_fallback:
            markets.append(ON_DEMAND)
        sizes = vcpus_of(self.ec2, types)
        quotas = self.provider.clients.other("service-quotas")
        first: tuple[str, str] | None = None  # detail and fix of the first option lacking room
        asked: dict[str, tuple[QuotaReading, int]] = {}
        unknown = ""
        for market in markets:
            for kind in types:
                quota = quota_for(kind, market)
                need = sizes.get(kind)
                if need is None:
                    unknown = unknown or f"{kind} is not offered in {inst.region}"
                    continue
                if quota is not None and quota.code not in asked:  # types share their quota
                    asked[quota.code] = (read_quota(quotas, quota), vcpus_in_use(self.ec2, quota))
                reading, used = asked[quota.code] if quota else (QuotaReading(None), 0)
                value = reading.value
                if quota is None or value is None:
                    unknown = unknown or f"no vCPU quota of {market} {kind} is known to this tool"
                    continue
                needs = f"{used} in use; {market} {kind} needs {need}"
                if reading.default_because is not None:
                    unknown = unknown or (
                        f"'{quota.name}' ({quota.code}) is {value:g} vCPUs by AWS default, not "
                        f"your account's (GetServiceQuota: {reading.default_because}); {needs}"
                    )
                    continue
                about = f"'{quota.name}' ({quota.code}) is {value:g} vCPUs, {needs}"
                if value >= used + need:
                    if first is None and not unknown:
                        return Check("quota", OK, about + ".", "")
                    lacking = first[0] if first else unknown
                    return Check(
                        "quota",
                        WARN,
                        f"{lacking}; the launch falls back to {market} {kind} ({about}).",
                        first[1] if first else "",
                    )
                first = first or (about + ".", increase_fix(quota, int(used + need), inst.region))
        if first is not None and not unknown:
            return Check("quota", FAIL, *first)
        return Check(
            "quota",
            WARN,
            (first[0] if first else f"Cannot tell: {unknown}."),
            "Check the vCPU quotas of Amazon EC2 in the Service Quotas console.",
        )

    def role(self) -> Check:
        """Whether stop mode will get its instance role, or the launch will fall back."""
        inst = self.instance
        if inst.market != SPOT:
            return Check("role", OK, NO_SPOT, "")
        if inst.interruption != "stop":
            return Check("role", OK, "Not needed: instance.interruption is relaunch.", "")
        with aws_errors("ask who these credentials are"):
            me = self.provider.clients.other("sts").get_caller_identity()
        try:
            with aws_errors(f"look up the instance role {HOST_ROLE}"):
                answer = may_use(self.provider.clients.iam, str(me["Arn"]), str(me["Account"]))
        except CannotTell as why:
            return Check(
                "role",
                WARN,
                f"Cannot tell whether stop mode gets its instance role {HOST_ROLE}: {why}; "
                f"the first launch finds out, and falls back to relaunch {FALLBACK}.",
                "Allow yourself iam:SimulatePrincipalPolicy to let doctor check, or set "
                "instance.interruption: relaunch.",
            )
        if answer is None:
            return Check("role", OK, f"The root user may create and pass {HOST_ROLE}.", "")
        if not answer.denied:
            have = "exists and may be passed to EC2" if answer.ready else "may be created"
            return Check(
                "role",
                OK,
                f"The instance role {HOST_ROLE} {have} by {answer.principal}: stop mode works.",
                "",
            )
        refused = ", ".join(f"{action} ({why})" for action, why in answer.denied.items())
        return Check(
            "role",
            WARN,
            f"Stop mode needs {refused} for {answer.principal}; runs fall back to relaunch "
            f"{FALLBACK}.",
            f"Ask an administrator to allow {', '.join(answer.denied)} on {HOST_ROLE} "
            "(README: stop mode), or to create the role and let you pass it; or set "
            "instance.interruption: relaunch.",
        )

    def price(self) -> Check:
        inst = self.instance
        cap = inst.max_runtime_minutes
        if inst.market == ON_DEMAND:
            rate = on_demand_price(inst.region, inst.instance_type)
            if rate is None:
                return Check(
                    "price", WARN, f"No on-demand price known for {inst.instance_type}.", ""
                )
            return Check(
                "price", OK, f"On-demand {inst.instance_type}: ${rate:.4f}/h{bound(rate, cap)}.", ""
            )
        prices = current_prices(self.ec2, [inst.instance_type], time.time()).get(
            inst.instance_type, {}
        )
        zones = inst.zones or list(self.host.network_found().subnets)
        prices = {zone: price for zone, price in sorted(prices.items()) if zone in zones}
        if not prices:
            return Check(
                "price",
                WARN,
                f"No spot price for {inst.instance_type} in {', '.join(zones)}.",
                "Check that the type is offered there (instance.zones, instance.region).",
            )
        listed = ", ".join(f"{zone} ${price:.4f}" for zone, price in prices.items())
        cheapest = min(prices.values())
        limit = inst.max_price
        detail = (
            f"Spot {inst.instance_type} now: {listed} (max {f'${limit:g}' if limit else 'none'}/h)"
        )
        if limit is not None and cheapest > limit:
            return Check(
                "price",
                FAIL,
                detail + ".",
                f"Raise instance.max_price to at least {cheapest:.4f}, or wait for a lower price.",
                usage=True,
            )
        return Check(
            "price", OK, f"{detail}; the run costs ≈ ${cheapest:.4f}/h{bound(cheapest, cap)}.", ""
        )


NO_SPOT = (
    "Not needed: instance.interruption applies to spot only, and instance.market is on-demand."
)
FALLBACK = "(an interrupted instance ends; only a running controller launches a replacement)"


def bound(rate: float, minutes: float | None) -> str:
    if minutes is None:
        return " (set instance.max_runtime_minutes to cap the total)"
    return f", at most ${rate * minutes / 60:.2f} over instance.max_runtime_minutes ({minutes:g})"


def no_answer(name: str, err: NoAnswer) -> Check:
    """A check AWS gave nothing to go on: a warn that says so, and why."""
    return cannot_tell(name, str(err))


def aws_checks(
    config: Config,
    names: Sequence[str],
    provider: AwsProvider | None = None,
    thorough: bool = True,
) -> list[Check]:
    doctor = AwsDoctor(config, provider, thorough)
    steps: dict[str, Callable[[], Check]] = {
        "credentials": doctor.credentials,
        "instance_type": doctor.instance_type,
        "quota": doctor.quota,
        "network": doctor.host.network,
        "image": doctor.host.image,
        "key_pair": doctor.host.key_pair,
        "firewall": doctor.host.firewall,
        "role": doctor.role,
        "price": doctor.price,
    }
    results: list[Check] = []
    blocked = False
    for name in names:
        if blocked:
            results.append(
                Check(
                    name,
                    WARN,
                    "Not checked: the credentials check failed.",
                    "Fix the credentials first.",
                )
            )
            continue
        try:
            with aws_errors(f"run the {name} check"):  # botocore's own, where a step let one by
                results.append(steps[name]())
        except NoAnswer as err:
            results.append(no_answer(name, err))
        except PaceridError as err:
            # quota and role only warn: the launch finds out, and role falls back to relaunch
            results.append(from_error(name, err, WARN if name in ("quota", "role") else FAIL))
            blocked = name == "credentials"
    return results
