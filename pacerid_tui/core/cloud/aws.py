"""The AWS provider: EC2 spot instances on the newest Deep Learning AMI, driven by `instance:`.

This class only sequences the steps; each lives in a small aws_* module: clients and error
sentences (aws_session), usable types (aws_types), image (aws_ami), key pair (aws_keypair),
security group (aws_firewall), the launch plan and request (aws_launch), the host role
(aws_role), ending what a failed launch started (aws_unlaunched), prices (aws_prices) and
reading instances (aws_instances). Calls block; async callers use `asyncio.to_thread`. Every
instance is tagged at launch and every query filters on the tags, so nothing depends on local
state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws_ami import DEFAULT_USER, find_image, root_volume_gb
from pacerid_tui.core.cloud.aws_firewall import allowed_cidr, ensure_security_group, ssh_warning
from pacerid_tui.core.cloud.aws_instances import ALIVE_STATES, host_key_fingerprints, to_instance
from pacerid_tui.core.cloud.aws_keypair import ensure_key_pair
from pacerid_tui.core.cloud.aws_launch import (
    ON_DEMAND,
    SPOT,
    Attempt,
    describe_attempt,
    launch_first_available,
    plan_attempts,
    run_request,
)
from pacerid_tui.core.cloud.aws_leftovers import GLOBAL, find_leftovers
from pacerid_tui.core.cloud.aws_network import find_network, usable_zones
from pacerid_tui.core.cloud.aws_placement import placement_facts
from pacerid_tui.core.cloud.aws_prices import current_prices, on_demand_price, spot_history
from pacerid_tui.core.cloud.aws_quota import vcpus_of
from pacerid_tui.core.cloud.aws_role import (
    HOST_ROLE,
    HostProfile,
    PassRoleRefused,
    RoleLaunch,
    caller_of,
    ensure_host_profile,
    fallback_warning,
)
from pacerid_tui.core.cloud.aws_session import AwsClients, aws_errors, error_code, user_error
from pacerid_tui.core.cloud.aws_sweep import sweep_iam, sweep_region
from pacerid_tui.core.cloud.aws_types import FIX as TYPES_FIX
from pacerid_tui.core.cloud.aws_types import refusals
from pacerid_tui.core.cloud.aws_unlaunched import end_unlaunched, tag_own_or_end
from pacerid_tui.core.cloud.base import MANAGED_TAG, RUN_ID_TAG, Report, quiet
from pacerid_tui.core.kernel.errors import ConfigError, PaceridError, ProviderError
from pacerid_tui.core.kernel.models import (
    Instance,
    InstanceSpec,
    InstanceState,
    Inventory,
    Leftover,
    PricePoint,
    Swept,
)
from pacerid_tui.core.kernel.placement_facts import PlacementFacts

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

POLL_INTERVAL_S = 5.0
"""Seconds between state checks while waiting: EC2 moves in steps of seconds, and faster
polling would spend the account's DescribeInstances rate limit for nothing."""

RUNNING_TIMEOUT_S = 600
"""A g4dn instance is usually running within a minute; after ten it is not coming."""

TERMINATE_TIMEOUT_S = 300
"""Terminating takes 30–90 s; five minutes covers a slow shutdown of a busy instance."""


class AwsProvider:
    """The Provider protocol on EC2 (see base.py), plus live zone prices and the
    HostKeyFingerprints and Sweepable capabilities."""

    name = "aws"

    def __init__(self, config: InstanceConfig, *, endpoint_url: str | None = None) -> None:
        self.config = config
        self.clients = AwsClients(config.region, config.profile, endpoint_url)
        self._let_in: str | None = None
        """The range this process last opened SSH to."""
        self._regions: dict[str, AwsClients] = {config.region: self.clients}
        """Clients of the other regions `leftovers` and `sweep` visit, built once each."""
        self._regions_lock = threading.Lock()

    def launch(self, spec: InstanceSpec, report: Report = quiet) -> Instance:
        """Types, image, key, firewall, then the first zone/type/market with room; waits for
        running. Types EC2 runs on Xen, or the PyTorch images do not support, are refused
        before anything is created (aws_types.py)."""
        config = self.config
        ec2 = self.clients.ec2
        types = [config.instance_type, *config.fallback_instance_types]
        unusable = refusals(ec2, types, config.region)  # before anything is created
        if unusable:
            raise ConfigError(f"{'; '.join(unusable)}. {TYPES_FIX}")
        image = find_image(ec2, self.clients.ssm, config.region, config.ami_id, report)
        volume_gb = root_volume_gb(image, config.root_volume_gb)  # refused here, before any write
        report(
            f"Image: {image.name} ({image.image_id}); login {config.ssh_user or image.user}, "
            f"root volume {volume_gb} GB."
        )
        network = find_network(ec2, config)  # before anything is created: no VPC, no launch
        key = ensure_key_pair(ec2, config, report)
        warning = ssh_warning(config)
        if warning:
            report(f"Warning: {warning}")
        cidr = allowed_cidr(config)
        group_id = ensure_security_group(ec2, config, cidr, report, vpc_id=network.vpc_id)
        self._let_in = cidr
        wants_spot = config.market == SPOT
        prices = current_prices(ec2, types, time.time()) if wants_spot else {}
        zones, skipped = usable_zones(network, config.zones or self.zones())
        if skipped:
            report(f"Skipping {', '.join(skipped)}: no subnet of VPC {network.vpc_id} there.")
        if not zones:
            raise ConfigError(
                f"None of the zones {', '.join(skipped)} has a subnet of VPC {network.vpc_id}; "
                "set instance.subnet_id or instance.zones to where one is."
            )
        plan = plan_attempts(
            types, zones, prices, config.market, config.on_demand_fallback, spec.zones
        )
        stop = wants_spot and config.interruption == "stop"
        caller = caller_of(self.clients.other("sts")) if stop else None
        profile = ensure_host_profile(self.clients.iam, caller, report) if caller else None

        def first_available(profile: HostProfile | None) -> tuple[Mapping[str, Any], Attempt]:
            arn = profile.arn if profile else None
            client: Any = self.clients.launch
            if profile is not None:
                client = RoleLaunch(client, report, settle=profile.created)

            def request_for(attempt: Attempt) -> dict[str, Any]:
                request = run_request(attempt, image, key.name, group_id, config, spec.run_id, arn)
                request["SubnetId"] = network.subnets[attempt.zone]
                return request

            return launch_first_available(
                cast("EC2Client", client),
                plan,
                request_for,
                config.max_price,
                report,
                run_id=spec.run_id,
                region=config.region,
                vcpus=self._vcpus(types),
                find_existing=lambda: self._run_instance(spec.run_id),
            )

        try:
            raw, attempt = first_available(profile)
        except PassRoleRefused as refused:  # nothing was launched: EC2 refused the request
            report(fallback_warning(f"pass the instance role {HOST_ROLE} to EC2", refused.code))
            profile = None
            raw, attempt = first_available(None)
        instance_id = raw["InstanceId"]
        report(f"Launched {instance_id}: {describe_attempt(attempt)}.")
        if caller is not None and profile is not None and attempt.market == SPOT:
            tag_own_or_end(self, caller, instance_id, raw.get("SpotInstanceRequestId"), report)
        if wants_spot and attempt.market == ON_DEMAND:
            report("Warning: no spot capacity anywhere; this instance is billed on-demand.")
        running = self._wait(instance_id, InstanceState.RUNNING, RUNNING_TIMEOUT_S, report)
        if running is not None and running.state is not InstanceState.RUNNING:
            raise ProviderError(end_unlaunched(self, running, spec.run_id, report))
        if running is None:
            self.terminate(instance_id, report)
            raise ProviderError(
                f"Instance {instance_id} was not running after {RUNNING_TIMEOUT_S} s, so it was "
                "terminated; launch again (or try another zone with instance.zones)."
            )
        report(f"{instance_id} is running at {running.host}.")
        return running

    def describe(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        """The current state of these instances in one call; ids EC2 no longer knows are absent."""
        ids = list(dict.fromkeys(instance_ids))
        if not ids:
            return {}
        found = self._instances([{"Name": "instance-id", "Values": ids}])
        return {instance.instance_id: instance for instance in found}

    def terminate(self, instance_id: str, report: Report = quiet) -> Instance:
        """Cancel its spot request, terminate, and wait until EC2 says `terminated`; an unknown
        id counts as done.

        The request goes first: a persistent request (`instance.interruption: stop`) reopens
        when its instance is terminated and EC2 launches a fresh one, while cancelling never
        terminates the instance (EC2 user guide, "Spot Instance requests"). Every caller (`x`,
        `terminate`, the budget stop, adopt→terminate) comes through here.
        """
        report(f"Terminating {instance_id}…")
        try:
            self._cancel_request(instance_id, report)
            self.clients.ec2.terminate_instances(InstanceIds=[instance_id])
        except ClientError as err:
            if error_code(err) != "InvalidInstanceID.NotFound":
                raise user_error(err, f"terminate {instance_id}") from err
            report(f"{instance_id} no longer exists; nothing is billing.")
            return self._gone(instance_id)
        except BotoCoreError as err:
            raise user_error(err, f"terminate {instance_id}") from err
        ended = self._wait(instance_id, InstanceState.TERMINATED, TERMINATE_TIMEOUT_S, report)
        if ended is None:
            raise ProviderError(
                f"{instance_id} is still shutting down after {TERMINATE_TIMEOUT_S} s; "
                "AWS is ending it, check again with `status`."
            )
        report(f"{instance_id} is terminated; billing has stopped.")
        return ended

    def _cancel_request(self, instance_id: str, report: Report) -> None:
        instance = self.describe([instance_id]).get(instance_id)
        request_id = instance.spot_request_id if instance else None
        if request_id is None:
            return
        try:
            self.clients.ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[request_id])
        except ClientError as err:
            if error_code(err) != "InvalidSpotInstanceRequestID.NotFound":
                raise
        report(f"Spot request {request_id} cancelled, so EC2 cannot launch it again.")

    def spot_request_state(self, request_id: str) -> tuple[str, float | None, str] | None:
        """The SpotRequests capability of base.py: the request's state, ValidUntil and status
        code."""
        try:
            answer = self.clients.ec2.describe_spot_instance_requests(
                SpotInstanceRequestIds=[request_id]
            )
        except ClientError as err:
            if error_code(err) == "InvalidSpotInstanceRequestID.NotFound":
                return None
            raise user_error(err, f"describe spot request {request_id}") from err
        except BotoCoreError as err:
            raise user_error(err, f"describe spot request {request_id}") from err
        for request in answer.get("SpotInstanceRequests", []):
            until = request.get("ValidUntil")
            status = str(request.get("Status", {}).get("Code", ""))
            return str(request.get("State")), until.timestamp() if until else None, status
        return None

    def price_history(self, instance: Instance, start: float, end: float) -> list[PricePoint]:
        """Spot steps of the instance's zone over [start, end]; on-demand: one flat point.

        Empty when the price is unknown (an on-demand type missing from the bundled table).
        """
        if instance.market == ON_DEMAND:
            rate = on_demand_price(instance.region, instance.instance_type)
            return [] if rate is None else [PricePoint(start, rate, instance.zone or "")]
        if instance.zone is None:
            return []
        return spot_history(self.clients.ec2, instance.instance_type, instance.zone, start, end)

    def find_managed(self) -> list[Instance]:
        """Every live instance tagged as ours in the region, known to the registry or not."""
        return self._instances(
            [
                {"Name": f"tag:{MANAGED_TAG}", "Values": ["true"]},
                {"Name": "instance-state-name", "Values": ALIVE_STATES},
            ]
        )

    def leftovers(self, kept: Mapping[str, str]) -> Inventory:
        """The Sweepable capability of base.py: everything of ours in every enabled region
        (aws_leftovers.py)."""
        return find_leftovers(self.clients, self._clients_for, kept)

    def sweep(self, found: Sequence[Leftover], report: Report = quiet) -> Swept:
        """Remove these leftovers, region by region, in the safe order (aws_sweep.py); the role
        and its profile last, unless an instance that uses them could not be ended."""
        swept = Swept()
        alive: set[str] = set()
        by_region: dict[str, list[Leftover]] = {}
        for item in found:
            by_region.setdefault(item.region, []).append(item)
        for region, items in sorted(by_region.items()):
            if region == GLOBAL:
                continue
            done, left = sweep_region(self._clients_for(region).ec2, region, items, report)
            swept, alive = swept + done, alive | left
        iam = by_region.get(GLOBAL, [])
        if iam and alive:
            return swept + Swept(
                failures=(
                    f"The instance role {HOST_ROLE} was kept: {', '.join(sorted(alive))} could "
                    "not be ended and may still need it.",
                )
            )
        return swept + sweep_iam(self.clients.iam, iam, report) if iam else swept

    def _clients_for(self, region: str) -> AwsClients:
        with self._regions_lock:
            if region not in self._regions:
                self._regions[region] = self.clients.for_region(region)
            return self._regions[region]

    def zone_prices(self) -> dict[str, float]:
        """The spot price in force now for the configured type, by zone (configured zones only)."""
        kind = self.config.instance_type
        prices = current_prices(self.clients.ec2, [kind], time.time()).get(kind, {})
        if self.config.zones:
            prices = {zone: price for zone, price in prices.items() if zone in self.config.zones}
        return dict(sorted(prices.items()))

    def placement_facts(self) -> PlacementFacts:
        """The Placements capability of base.py: every zone of instance.regions with its spot
        price, placement score and interruption bucket (aws_placement.py)."""
        return placement_facts(self.config, self.clients.endpoint_url)

    def host_key_fingerprints(self, instance_id: str) -> list[str]:
        """SHA256 host key fingerprints from the boot console; empty until cloud-init prints.

        `Latest=True`: without it EC2 answers what was posted shortly after the last state
        change, which is before cloud-init prints the keys (EC2 API reference,
        GetConsoleOutput; Latest works on Nitro types, which every GPU type we launch is).
        The HostKeyFingerprints capability of base.py.
        """
        with aws_errors(f"read the console of {instance_id}"):
            answer = self.clients.ec2.get_console_output(InstanceId=instance_id, Latest=True)
        return host_key_fingerprints(answer.get("Output") or "")

    def let_caller_in(self, report: Report = quiet) -> None:
        """Before an SSH connection is opened (again): the rule follows this machine's address,
        which may have changed since launch (another network); the old rule is revoked."""
        if self.config.ssh_cidr:
            return
        cidr = allowed_cidr(self.config)
        if cidr == self._let_in:  # nothing moved: no EC2 call on a reconnect
            return
        network = find_network(self.clients.ec2, self.config)
        ensure_security_group(self.clients.ec2, self.config, cidr, report, vpc_id=network.vpc_id)
        self._let_in = cidr

    def ssh_warning(self) -> str | None:
        """A warning to keep on screen when the config opens SSH to the whole internet."""
        return ssh_warning(self.config)

    def zones(self) -> list[str]:
        """The region's available zones (local and wavelength zones left out)."""
        with aws_errors("list availability zones"):
            answer = self.clients.ec2.describe_availability_zones(
                Filters=[{"Name": "state", "Values": ["available"]}]
            )
        return [
            zone["ZoneName"]
            for zone in answer.get("AvailabilityZones", [])
            if zone.get("ZoneType", "availability-zone") == "availability-zone"
        ]

    def _vcpus(self, types: list[str]) -> dict[str, int]:
        """vCPUs by type, for the quota message of a refusal; empty when EC2 will not say."""
        try:
            return vcpus_of(self.clients.ec2, types)
        except PaceridError:
            return {}

    def _run_instance(self, run_id: str) -> Mapping[str, Any] | None:
        """A pending or running instance tagged with this run (a launch whose answer was lost)."""
        with aws_errors("look for the run's instance"):
            answer = self.clients.ec2.describe_instances(
                Filters=[
                    {"Name": f"tag:{RUN_ID_TAG}", "Values": [run_id]},
                    {"Name": "instance-state-name", "Values": ["pending", "running"]},
                ]
            )
        for reservation in answer.get("Reservations", []):
            for raw in reservation.get("Instances", []):
                return raw
        return None

    def _instances(self, filters: list[Any]) -> list[Instance]:
        found: list[Instance] = []
        with aws_errors("describe instances"):
            pages = self.clients.ec2.get_paginator("describe_instances").paginate(Filters=filters)
            for page in pages:
                for reservation in page.get("Reservations", []):
                    for raw in reservation.get("Instances", []):
                        found.append(to_instance(raw, self.config))
        return found

    def _gone(self, instance_id: str) -> Instance:
        return Instance(
            instance_id=instance_id,
            provider=self.name,
            state=InstanceState.TERMINATED,
            user=self.config.ssh_user or DEFAULT_USER,
            region=self.config.region,
        )

    def _wait(
        self, instance_id: str, target: InstanceState, timeout_s: float, report: Report
    ) -> Instance | None:
        """Poll until the instance is in `target`; None on timeout; while waiting for
        `running`, the instance as it ended if it ended first.

        Right after launch EC2 may not list the instance yet, so absence means "wait" there;
        while terminating, absence means it is long gone.
        """
        deadline = time.monotonic() + timeout_s
        seen: InstanceState | None = None
        while True:
            instance = self.describe([instance_id]).get(instance_id)
            if instance is None and target is InstanceState.TERMINATED:
                return self._gone(instance_id)
            if instance is not None:
                if instance.state is target:
                    return instance
                if target is InstanceState.RUNNING and instance.state in (
                    InstanceState.SHUTTING_DOWN,
                    InstanceState.TERMINATED,
                ):
                    return instance  # ended before it ran: launch cleans up after it
                if instance.state is not seen:
                    report(f"{instance_id} is {instance.state.value}…")
                    seen = instance.state
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_INTERVAL_S)
