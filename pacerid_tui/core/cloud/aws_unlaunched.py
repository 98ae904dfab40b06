"""What a launch does when its instance cannot be kept: nothing may stay behind billing.

A launch that fails after RunInstances has answered leaves a run the caller forgets, so the
launch itself must end what it started. Two such endings live here, apart from aws.py's
sequencing: an instance that ended before it ran (its persistent request reopened and EC2
started another), and a stop-mode instance that cannot be tagged for its host role (its host
could never end itself). Both cancel the spot request before terminating anything.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from pacerid_tui.core.cloud.aws_instances import ALIVE_STATES
from pacerid_tui.core.cloud.aws_role import Caller, tag_own
from pacerid_tui.core.cloud.aws_session import aws_errors, error_code
from pacerid_tui.core.cloud.base import RUN_ID_TAG, Report
from pacerid_tui.core.kernel.errors import PaceridError, ProviderError
from pacerid_tui.core.kernel.models import Instance

if TYPE_CHECKING:
    from pacerid_tui.config import InstanceConfig
    from pacerid_tui.core.cloud.aws_session import AwsClients


class AwsProvider(Protocol):
    """What these endings use of aws.AwsProvider (named here, not imported: aws.py imports
    this module)."""

    config: InstanceConfig
    clients: AwsClients

    def terminate(self, instance_id: str, report: Report = ...) -> Instance: ...


TAG_SETTLE_S = 30.0
"""How long the host-role tags are retried while EC2 does not see the new instance or request
yet: EC2 is eventually consistent, and an id RunInstances has just returned may be unknown to
other calls for some seconds (EC2 API reference, "Eventual consistency in the EC2 API")."""
TAG_POLL_S = 2.0
UNSEEN = frozenset({"InvalidInstanceID.NotFound", "InvalidSpotInstanceRequestID.NotFound"})


def tag_own_or_end(
    provider: AwsProvider,
    caller: Caller,
    instance_id: str,
    request_id: str | None,
    report: Report,
) -> None:
    """Tag a stop-mode instance and its request with its ARN, which its role needs to end
    them (aws_role.py); one that cannot be tagged could not end itself, so it is ended.
    RunInstances' answer names the spot request (`SpotInstanceRequestId`); an instance without
    one (moto makes none) has only itself to tag."""
    try:
        with aws_errors(f"tag {instance_id} for the host role"):
            _tag_once_seen(provider, caller, instance_id, request_id)
    except PaceridError as err:
        provider.terminate(instance_id, report)
        raise ProviderError(
            f"{err} Its host could not have ended itself, so {instance_id} was terminated "
            "(its request cancelled first); launch again."
        ) from err


def _tag_once_seen(
    provider: AwsProvider, caller: Caller, instance_id: str, request_id: str | None
) -> None:
    deadline = time.monotonic() + TAG_SETTLE_S
    while True:
        try:
            tag_own(provider.clients.ec2, caller, provider.config.region, instance_id, request_id)
            return
        except ClientError as err:
            if error_code(err) not in UNSEEN or time.monotonic() >= deadline:
                raise
        time.sleep(TAG_POLL_S)


def end_unlaunched(provider: AwsProvider, dead: Instance, run_id: str, report: Report) -> str:
    """An instance that ended before it ran (EC2 state-reason codes such as
    Server.InternalError or Client.VolumeLimitExceeded, "terminate during launch"): its
    persistent request reopens and EC2 starts another instance for it (user guide, "Spot
    Instance request states"), which nothing would know of, as the run is forgotten. So the
    request is cancelled first, then whatever it or the run still holds is terminated.
    Returns the sentence saying so."""
    ec2 = provider.clients.ec2
    why = dead.state_reason or dead.state.value
    said = f"Instance {dead.instance_id} ended before it ran ({why})"
    request_id = dead.spot_request_id
    try:
        with aws_errors(f"clean up after {dead.instance_id}"):
            others: set[str] = set()
            if request_id is not None:
                ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[request_id])
                report(f"Spot request {request_id} cancelled, so EC2 starts no other.")
                answer = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])
                others = {
                    str(request["InstanceId"])
                    for request in answer.get("SpotInstanceRequests", [])
                    if request.get("InstanceId")
                }
            others = (others | run_instances(provider, run_id)) - {dead.instance_id}
        for other in sorted(others):
            provider.terminate(other, report)
    except PaceridError as err:
        request = f"cancel spot request {request_id} and " if request_id else ""
        raise ProviderError(
            f"{said}, and cleaning up failed: {err} In the EC2 console, {request}terminate "
            f"any instance tagged {RUN_ID_TAG}={run_id}; `pacerid-tui status` lists them."
        ) from err
    cancelled = f"; its spot request {request_id} was cancelled first" if request_id else ""
    ended = f" and {', '.join(sorted(others))} terminated" if others else ""
    return f"{said}{cancelled}{ended}, so nothing is left running; launch again."


def run_instances(provider: AwsProvider, run_id: str) -> set[str]:
    """This run's instances that may still bill: any state but terminated."""
    answer = provider.clients.ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{RUN_ID_TAG}", "Values": [run_id]},
            {"Name": "instance-state-name", "Values": ALIVE_STATES},
        ]
    )
    return {
        str(raw["InstanceId"])
        for reservation in answer.get("Reservations", [])
        for raw in reservation.get("Instances", [])
    }
