"""What an ended follow means for a run: EC2's StateReason codes (DescribeInstances
`StateReason.Code`, AWS EC2 API reference "StateReason") and the trainer's notice."""

from __future__ import annotations

import pytest

from pacerid_tui.config import Config, InstanceConfig
from pacerid_tui.core.kernel.models import Instance, InstanceState
from pacerid_tui.core.remote.host_contract import watchdog_settings
from pacerid_tui.core.supervise.recovery import ending


def ended_with(code: str | None, reason: str | None = None) -> Instance:
    return Instance("i-1", "aws", InstanceState.TERMINATED, state_code=code, state_reason=reason)


@pytest.mark.parametrize(
    ("outcome", "instance", "verdict"),
    [
        ("gone", ended_with("Server.SpotInstanceTermination"), "recover"),
        ("interrupted", Instance("i-1", "aws", InstanceState.RUNNING), "recover"),
        ("gone", ended_with("Client.InstanceInitiatedShutdown"), "ended"),  # our watchdog
        ("interrupted", ended_with("Client.InstanceInitiatedShutdown"), "ended"),
        ("gone", ended_with("Client.UserInitiatedShutdown"), "ended"),  # a terminate
        ("gone", ended_with("Client.UserInitiatedShutdown", "budget reached"), "ended"),
        ("gone", ended_with(None, "no longer known to the provider"), "unknown"),
        ("gone", None, "unknown"),
    ],
)
def test_only_a_real_interruption_is_recovered(
    outcome: str, instance: Instance | None, verdict: str
) -> None:
    assert ending(outcome, instance) == verdict


RUNNING = Instance("i-1", "aws", InstanceState.RUNNING)
NOTICE = "spot interruption notice: {'action': 'terminate'}; checkpoint saved after epoch 1"


@pytest.mark.parametrize(
    ("why", "verdict"),
    [(NOTICE, "recover"), ("received SIGTERM; checkpoint saved after epoch 1 step 3", "unknown")],
)
def test_an_interruption_is_real_only_when_the_notice_stopped_the_trainer(
    why: str, verdict: str
) -> None:
    """A SIGTERM seen before EC2 says why (our watchdog powering the host off) is asked about;
    once EC2's code is there it decides (trainer/interrupt.py words the two reasons)."""
    assert ending("interrupted", RUNNING, why) == verdict
    assert ending("interrupted", ended_with("Client.InstanceInitiatedShutdown"), why) == "ended"
    assert ending("interrupted", ended_with("Server.SpotInstanceTermination"), why) == "recover"


def test_a_replacement_host_is_told_what_is_left_of_the_budget() -> None:
    config = Config(instance=InstanceConfig(budget_usd=2.0, max_price=0.5))
    host = Instance("i-2", "aws", InstanceState.RUNNING, launched_at=100.0)
    first = watchdog_settings(config, host)
    assert (first.budget_usd, first.spent_usd) == (2.0, 0.0)
    later = watchdog_settings(config, host, spent_usd=0.75)
    assert (later.budget_usd, later.spent_usd) == (1.25, 0.75)
    spent = watchdog_settings(config, host, spent_usd=2.5).budget_usd
    assert spent is not None and 0 < spent < 1e-5  # never 0: the watchdog reads 0 as no budget
