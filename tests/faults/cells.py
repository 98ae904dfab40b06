"""One cell of the fault matrix: a run on the local provider, a fault at one phase, and the
money rule and the epochs checked after it (issue 24, "Every fault at every step").

A cell launches a two-epoch run of the tiny config with a 6 s boot grace and a 6 s idle limit,
takes it to its phase, injects its fault, then for BOUND_S (grace + idle + a margin for this
loaded machine) samples what the run's instances bill. At the bound every instance the run
created must be terminated or guarded (tests/faults/guards.py). Then a controller comes back
(a fresh one, or the sleeping one waking), reconciles, and takes the run on to its end where
the host is still there: the results it downloads must hold each epoch once. Where a guard
ended the run first, the run ends there (its epochs are not checked: there is no finished run)
and the next controller's reconcile must leave nothing billing.

The faults, as the local provider simulates them (core/cloud/local.py):
- controller-killed: the controller closes and a new one starts after the bound;
- interrupt-stop: AWS stops the instance (stop mode) and capacity returns a second later;
- interrupt-relaunch: AWS terminates the instance (relaunch mode); a relaunch is recovery's;
- host-reboot: RebootInstances, the controller gone meanwhile;
- ssh-drop: every SSH connection of the controller drops; it reconnects at once;
- request-expiry: the request's ValidUntil passes (stop mode);
- terminate-fails-once: the user ends the run; the provider's first terminate call fails and
  the controller gives up;
- controller-asleep: the controller's machine sleeps past the grace; the same controller
  (its connections stale) wakes after the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pacerid_tui.config import load_config
from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.errors import PaceridError, ProviderError
from pacerid_tui.core.kernel.models import InstanceState, Run
from pacerid_tui.core.remote import heartbeat
from pacerid_tui.core.steps.lifecycle import Lifecycle
from pacerid_tui.core.supervise.reconcile import reconcile
from tests.e2e.test_cli_local import tiny_config
from tests.faults.guards import Meter, guard_of, instances_of

PHASES = (
    "launch-pending",
    "launched",
    "upload",
    "setup",
    "data",
    "epoch-1",
    "epoch-2",
    "finished",
    "download",
)
FAULTS = (
    "controller-killed",
    "interrupt-stop",
    "interrupt-relaunch",
    "host-reboot",
    "ssh-drop",
    "request-expiry",
    "terminate-fails-once",
    "controller-asleep",
)
EPOCHS = 2
GRACE_MIN = 0.1
IDLE_MIN = 0.1
BOUND_S = (GRACE_MIN + IDLE_MIN) * 60 + 12
"""Grace and idle limit, plus 12 s: the switch and the watchdog poll, and this machine is
shared (a power-off and a terminate each take a second or two under load)."""
CELL_TIMEOUT_S = 300.0
ENV = {"PACERID_WATCHDOG_POLL_S": "0.3", "OMP_NUM_THREADS": "1"}
"""Set by the caller (the pytest fixture or matrix.py) for the host's processes to inherit."""


@dataclass
class Outcome:
    phase: str
    fault: str
    happened: str
    compute_s: float
    volume_s: float
    verdict: str
    seconds: float

    def row(self) -> str:
        return (
            f"| {self.phase} × {self.fault} | {self.happened} | {self.compute_s:.0f} s "
            f"(+{self.volume_s:.0f} s volume) | {self.verdict} | {self.seconds:.0f} s |"
        )


def config(folder: Path, fault: str) -> Path:
    path = tiny_config(folder, epochs=EPOCHS)
    raw = yaml.safe_load(path.read_text())
    raw["instance"].update(
        interruption="relaunch" if fault == "interrupt-relaunch" else "stop",
        boot_grace_minutes=GRACE_MIN,
        idle_terminate_minutes=IDLE_MIN,
    )
    path.write_text(yaml.safe_dump(raw))
    return path


def host_output(provider: LocalProvider, run: Run) -> Path:
    assert run.instance is not None
    return (
        provider.root / run.instance.instance_id / "workspace" / "pacerid" / run.run_id / "output"
    )


def status_of(output: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((output / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


def epochs_in(metrics: Path) -> list[int]:
    lines = metrics.read_text().splitlines() if metrics.exists() else []
    return [e["epoch"] for e in map(json.loads, filter(None, lines)) if e.get("event") == "epoch"]


async def until(what: str, check: Callable[[], object], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def to_phase(lifecycle: Lifecycle, run: Run, phase: str, provider: LocalProvider) -> Run:
    """Take a launched run to the moment its fault comes."""
    if phase == "launch-pending":
        return run
    boot = provider.root / (run.instance.instance_id if run.instance else "") / "boot"
    await until("the switch to arm", (boot / "armed").exists, 30)
    steps = ("upload", "setup", "data", "train")
    wanted = {"launched": 0, "upload": 1, "setup": 2, "data": 3}.get(phase, 4)
    for step in steps[:wanted]:
        await getattr(lifecycle, step)(run)
    output = host_output(provider, run)
    if phase == "epoch-1":
        await until("training", lambda: status_of(output).get("phase") == "training")
    elif phase == "epoch-2":
        await until("epoch 1", lambda: 1 in epochs_in(output / "metrics.jsonl"))
    elif phase in ("finished", "download"):
        await until("training to finish", lambda: status_of(output).get("phase") == "done")
        if phase == "download":
            await lifecycle.download(run)
    return lifecycle.registry.get(run.run_id)


async def inject(lifecycle: Lifecycle, run: Run, fault: str, provider: LocalProvider) -> bool:
    """Apply the fault; True when the controller stays alive and carries on at once."""
    assert run.instance is not None
    instance_id = run.instance.instance_id
    if fault == "ssh-drop":
        lifecycle.close()  # every connection drops; the next step reconnects
        return True
    if fault == "terminate-fails-once":
        real, calls = provider.terminate, []

        def failing_once(instance_id: str, report: Any = None) -> Any:
            calls.append(instance_id)
            if len(calls) == 1:
                raise ProviderError("EC2 answered 503 (a fault of the matrix)")
            return real(instance_id)

        provider.terminate = failing_once  # type: ignore[method-assign]
        with contextlib.suppress(PaceridError):  # the user saw the error and walked away
            await lifecycle.terminate(run)
    lifecycle.close()
    if fault == "interrupt-stop":
        provider.interrupt(instance_id)
        await asyncio.sleep(1)
        provider.capacity_returns(instance_id)
    elif fault == "interrupt-relaunch":
        provider.terminate_instance(instance_id)  # AWS takes it: relaunch mode has no request
    elif fault == "host-reboot":
        if provider.describe([instance_id])[instance_id].state is InstanceState.RUNNING:
            provider.reboot(instance_id)
    elif fault == "request-expiry":
        request = provider.root / instance_id / "request.json"
        raw = json.loads(request.read_text())
        request.write_text(json.dumps({**raw, "valid_until": time.time() - 1}))
    return False


async def finish(lifecycle: Lifecycle, run: Run, provider: LocalProvider) -> str:
    """A controller is back: reconcile, then take a run whose host is there to its end. It
    heartbeats from the start, as the dashboard does while it follows a run: a reconcile's
    download without one can outlast the tiny idle limit of the cells."""
    [run] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
    if run.instance is None or run.instance.state is not InstanceState.RUNNING:
        away = await reconcile(lifecycle, run, since=0)
        [run] = await lifecycle.refresh([lifecycle.registry.get(run.run_id)])
        state = run.instance.state.value if run.instance else "-"
        return f"ended before finishing ({away.cleaned_up or f'the host was {state}'})"
    config = lifecycle.config_of(run)
    target = await lifecycle.ssh_target(run, run.instance)
    async with heartbeat.beating(target, run.run_id, config.instance):
        await reconcile(lifecycle, run, since=0)
        run = lifecycle.registry.get(run.run_id)
        for step in ("upload", "setup", "data"):
            if step not in run.steps_done:
                await getattr(lifecycle, step)(run)
                run = lifecycle.registry.get(run.run_id)
        output = host_output(provider, run)
        if status_of(output).get("phase") != "done":
            if not (await lifecycle.training_state(run)).alive:
                await lifecycle.train(run)
            await until("training to finish", lambda: status_of(output).get("phase") == "done")
        await lifecycle.download(run)
    epochs = epochs_in(lifecycle.results_dir(run) / "metrics.jsonl")
    if epochs != list(range(1, EPOCHS + 1)):
        raise AssertionError(f"epochs downloaded {epochs}, not each of 1–{EPOCHS} once")
    return f"finished, epochs 1–{EPOCHS} once each"


async def run_cell(phase: str, fault: str, folder: Path) -> Outcome:
    started = time.monotonic()
    lifecycle = Lifecycle()
    run = await lifecycle.launch(lifecycle.create_run(*_config(folder, fault)))
    provider = lifecycle.provider_of(run)
    assert isinstance(provider, LocalProvider)
    meter = Meter(since=time.time())
    sampling: asyncio.Task[None] | None = None
    try:
        run = await to_phase(lifecycle, run, phase, provider)
        alive = await inject(lifecycle, run, fault, provider)
        meter = Meter(since=time.time())
        sampling = asyncio.create_task(_sample(meter, provider, run.run_id))
        said = "the controller carried on"
        if not alive:  # the host's guards alone, for the bound
            await asyncio.sleep(BOUND_S)
            meter.counting = False
            guards = {i: guard_of(provider, i, alive) for i in instances_of(provider, run.run_id)}
            said = ", ".join(f"{i}: {g or 'UNGUARDED'}" for i, g in guards.items())
            if None in guards.values():
                return _outcome(
                    phase, fault, _told(meter, said), meter, "FAILS: unguarded", started
                )
            if fault != "controller-asleep":
                lifecycle = Lifecycle()  # a new controller; the asleep one wakes as it was
        if fault == "terminate-fails-once":
            ending = "the user's next terminate ends it"
        else:
            ending = await finish(lifecycle, lifecycle.registry.get(run.run_id), provider)
        await lifecycle.terminate(lifecycle.registry.get(run.run_id))
        left = [i for i in instances_of(provider, run.run_id) if _alive(provider, i)]
        verdict = f"FAILS: left {left}" if left else "holds"
        return _outcome(phase, fault, _told(meter, f"{said}; {ending}"), meter, verdict, started)
    except Exception as err:  # a cell's failure is its row; the matrix goes on
        told = _told(meter, f"{type(err).__name__}: {err}")
        return _outcome(phase, fault, told, meter, "FAILS", started)
    finally:
        if sampling is not None:
            sampling.cancel()
        lifecycle.close()
        for instance in provider.find_managed():  # the cell leaves nothing behind, pass or fail
            provider.terminate(instance.instance_id)


async def _sample(meter: Meter, provider: LocalProvider, run_id: str) -> None:
    while True:
        await asyncio.to_thread(meter.sample, provider, run_id, time.time())
        await asyncio.sleep(0.5)


def _told(meter: Meter, said: str) -> str:
    """What the instances did after the fault (state changes), then the guards and ending."""
    return "; ".join([*meter.changes, said])


def _config(folder: Path, fault: str) -> tuple[Path, Any]:
    path = config(folder, fault)
    return path, load_config(path)


def _alive(provider: LocalProvider, instance_id: str) -> bool:
    return provider.describe([instance_id])[instance_id].state is not InstanceState.TERMINATED


def _outcome(
    phase: str, fault: str, happened: str, meter: Meter, verdict: str, started: float
) -> Outcome:
    seconds = time.monotonic() - started
    return Outcome(phase, fault, happened, meter.compute_s, meter.volume_s, verdict, seconds)
