"""Waiting for `running` after launch: progress, an instance lost before it ran, a timeout.

moto runs instances at once, so the states in between are EC2's real DescribeInstances answers
given by a botocore `before-send` hook for the first few polls.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
from aws_seed import Reports, instances_response

from pacerid_tui.core.cloud import aws
from pacerid_tui.core.kernel.errors import ProviderError
from pacerid_tui.core.kernel.models import InstanceSpec, InstanceState


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "POLL_INTERVAL_S", 0.0)


def answer_polls(provider: Any, answers: list[tuple[str, str] | None]) -> None:
    """Answer the next DescribeInstances polls: (state, reason) for the instance, None: absent."""
    queue = list(answers)

    def answer(request: Any, **_: Any) -> Any:
        if not queue:
            return None
        body = request.body
        fields = parse_qs(body.decode() if isinstance(body, bytes) else body)
        wanted = queue.pop(0)
        if wanted is None:
            return instances_response(request.url, None, "", "")
        instance_id = fields["Filter.1.Value.1"][0]
        return instances_response(request.url, instance_id, *wanted)

    provider.clients.ec2.meta.events.register("before-send.ec2.DescribeInstances", answer)


def test_pending_is_reported_once_then_running(make_provider: Any, reports: Reports) -> None:
    provider = make_provider()
    answer_polls(provider, [None, ("pending", ""), ("pending", "")])
    instance = provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)
    assert instance.state is InstanceState.RUNNING
    assert [line for line in reports if line.endswith("is pending…")] == [
        f"{instance.instance_id} is pending…"
    ]


def test_an_instance_taken_back_before_it_ran_is_an_error(make_provider: Any) -> None:
    provider = make_provider()
    answer_polls(provider, [("terminated", "Server.SpotInstanceTermination")])
    with pytest.raises(ProviderError, match=r"ended before it ran \(interrupted by AWS\)"):
        provider.launch(InstanceSpec(run_id="r", provider="aws"))


def test_not_running_in_time_is_terminated_and_reported(
    make_provider: Any, monkeypatch: pytest.MonkeyPatch, reports: Reports
) -> None:
    monkeypatch.setattr(aws, "RUNNING_TIMEOUT_S", 0)
    provider = make_provider()
    answer_polls(provider, [("pending", "")])
    with pytest.raises(ProviderError, match=r"was not running after 0 s, so it was terminated"):
        provider.launch(InstanceSpec(run_id="r", provider="aws"), reports)
    assert provider.find_managed() == []
    assert reports[-1].endswith("is terminated; billing has stopped.")
