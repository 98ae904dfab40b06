"""The dashboard on AWS (moto's server): launch from the form, price and cost shown, terminate;
then every SSH action, reaching the instance through `instance.ssh_proxy_command`.

moto's instances have made-up public addresses, so the proxy command (tests/proxy_relay.py)
relays whatever host it is asked for to the test's OpenSSH sshd on 127.0.0.1, as a bastion would
relay to a private instance. The host logs in with the key pair the provider made, and its key
is pinned on first connect once it matches the fingerprints its boot console printed (the
console stand-in of aws_standin.py prints the sshd's, late, as EC2 does). A guard fails the test if
anything connects past loopback, so a broken proxy cannot reach moto's made-up addresses.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
import yaml
from aws_standin import AwsStandIn
from textual.pilot import Pilot
from textual.widgets import Log

from pacerid_tui import paths
from pacerid_tui.core.kernel.models import Instance, Run
from pacerid_tui.core.steps.registry import Registry
from pacerid_tui.ui.app import PaceridApp
from pacerid_tui.ui.screens.confirm_terminate import ConfirmTerminate
from tests.conftest import REPO
from tests.e2e.test_cli_local import tiny_config
from tests.ui.test_app import following, launch, states, wait_for


async def test_launch_and_terminate_a_spot_instance_from_the_dashboard(
    aws_env: str, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    app = PaceridApp(aws_config, refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("l")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: [r.state for r in app.runs.rows.values()] == ["running"])
        [row] = app.runs.rows.values()
        assert (row.provider, row.instance_type) == ("aws", "g4dn.xlarge")
        assert row.price_per_hour is not None and row.cost_usd > 0  # the first billed minute
        await pilot.press("x")  # nothing trained: terminates at once
        await wait_for(pilot, lambda: [r.state for r in app.runs.rows.values()] == ["terminated"])


class LoopbackGuard:
    """An audit hook: while on, a connect past 127.0.0.0/8 is refused and recorded."""

    def __init__(self) -> None:
        self.on = False
        self.blocked: list[object] = []

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if not self.on or event != "socket.connect" or not isinstance(args[1], tuple):
            return
        host = str(args[1][0])
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            self.blocked.append(args[1])
            raise PermissionError(f"test guard: no connections beyond loopback ({host})")


@functools.cache
def loopback_guard() -> LoopbackGuard:
    guard = LoopbackGuard()
    sys.addaudithook(guard)  # audit hooks cannot be removed: it idles between tests
    return guard


@pytest.fixture
def no_way_out() -> Iterator[None]:
    guard = loopback_guard()
    guard.on, guard.blocked = True, []
    yield
    guard.on = False
    assert not guard.blocked, f"tried to connect beyond loopback: {guard.blocked}"


@pytest.fixture
def proxied_config(
    aws_standin: AwsStandIn,
    aws_config: Path,
    sshd: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_way_out: None,
) -> Iterator[Path]:
    """configs/base.yaml on moto with tiny training, its instances reached through the relay.

    Afterwards: the sshd's authorized keys as they were, and each run's folder on the "host"
    (this machine's home, as the sshd serves it) gone, its watchdog stopped.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_standin.url)
    assert sshd.key_path is not None
    host_key = asyncssh.read_public_key(Path(sshd.key_path).parent / "host_key.pub")
    aws_standin.fingerprints = [host_key.get_fingerprint("sha256")]
    config = yaml.safe_load(aws_config.read_text())
    tiny = yaml.safe_load(tiny_config(tmp_path).read_text())
    config.update({section: tiny[section] for section in ("data", "model", "training", "output")})
    config["model"]["name"] = "mobilenet_v3_large"  # checkpoints under half of resnet18's
    relay = [sys.executable, str(REPO / "tests" / "proxy_relay.py"), str(sshd.port)]
    config["instance"].update(
        ssh_user=sshd.user,  # this machine's user: the sshd serves its home
        ssh_proxy_command=f"{shlex.join([*relay, str(tmp_path / 'asked')])} %h %p %r",
    )
    path = tmp_path / "aws-proxied.yaml"
    path.write_text(yaml.safe_dump(config))
    authorized = authorized_keys(sshd)
    before = authorized.read_text()
    yield path
    authorized.write_text(before)
    for run in Registry(paths.registry_file()).runs():
        folder = Path.home() / "pacerid" / run.run_id
        watchdog = folder / "watchdog.pid"
        if watchdog.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(watchdog.read_text()), signal.SIGTERM)
        shutil.rmtree(folder, ignore_errors=True)


def authorized_keys(sshd: Instance) -> Path:
    assert sshd.key_path is not None
    return Path(sshd.key_path).parent / "authorized_keys"  # the fixture's own, not ~/.ssh's


def authorize(sshd: Instance, key_file: Path) -> None:
    """What EC2 does at boot: the key pair's public half into the host's authorized keys."""
    public = asyncssh.read_private_key(key_file).export_public_key().decode()
    with open(authorized_keys(sshd), "a") as keys:
        keys.write(public)


def the_run(app: PaceridApp) -> Run:
    return Registry(paths.registry_file()).get(next(iter(app.runs.rows)))


def finished(app: PaceridApp, name: str, seen: int = 0) -> Callable[[], bool]:
    """Whether the run's log says `<name>: done.` after its first `seen` lines; errors fail."""

    def check() -> bool:
        new = list(app.runs.view(next(iter(app.runs.rows), "")).log)[seen:]
        assert not [line for line in new if line.startswith("! ")], new
        return f"» {name}: done." in new

    return check


async def step(pilot: Pilot[int], app: PaceridApp, key: str, name: str) -> list[str]:
    """Press an action's key, wait until it is done; the log lines it added."""
    seen = len(app.runs.view(the_run(app).run_id).log)
    await pilot.press(key)
    await wait_for(pilot, finished(app, name, seen), timeout=90)
    return list(app.runs.view(the_run(app).run_id).log)[seen:]


def asked(tmp_path: Path) -> set[str]:
    """What the proxy command was asked for: `host port user`, once per connection."""
    return set((tmp_path / "asked").read_text().splitlines())


async def test_every_ssh_step_from_the_dashboard_through_a_proxy_command(
    proxied_config: Path, sshd: Instance, tmp_path: Path
) -> None:
    config = yaml.safe_load(proxied_config.read_text())
    config["output"]["download_during_training"] = False  # results stay only on the host
    proxied_config.write_text(yaml.safe_dump(config))
    app = PaceridApp(proxied_config, refresh_s=0.5)
    async with app.run_test(size=(160, 45)) as pilot:
        await launch(pilot)
        await wait_for(pilot, lambda: states(app) == ["running"])
        run_id, instance = the_run(app).run_id, the_run(app).instance
        assert instance is not None and instance.host and instance.key_path
        authorize(sshd, Path(instance.key_path))

        uploaded = "\n".join(await step(pilot, app, "u", "upload"))
        assert "files sent" in uploaded and "matches its boot console; pinned." in uploaded
        pin = paths.known_hosts_file().read_text().split()
        assert pin[0] == instance.instance_id  # first connect: pinned under the instance id
        await step(pilot, app, "e", "setup")
        await step(pilot, app, "g", "data")
        await step(pilot, app, "t", "train")  # and follows it
        await wait_for(pilot, lambda: app.runs.rows[run_id].epoch == 2, timeout=90)
        await wait_for(pilot, lambda: not following(app))
        log = "\n".join(app.query_one(Log).lines)
        assert "Epoch 1/2" in log and "Epoch 2/2" in log

        def last_epochs() -> int:
            return sum("Epoch 2/2" in line for line in app.runs.view(run_id).log)

        once = last_epochs()
        await pilot.press("f")  # follows again: the whole log, then it ends
        await wait_for(pilot, lambda: not following(app) and last_epochs() == 2 * once)

        await pilot.press("x")  # trained, nothing downloaded: asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTerminate))
        await pilot.click("#download-terminate")
        await wait_for(pilot, lambda: states(app) == ["terminated"], timeout=90)

    results = tmp_path / "results" / run_id
    events = [json.loads(line) for line in (results / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    assert (results / "checkpoint_latest.pt").exists() and (results / "train.log").exists()
    assert asked(tmp_path) == {f"{instance.host} 22 {sshd.user}"}
    assert instance.instance_id not in paths.known_hosts_file().read_text()  # pin forgotten


async def test_run_all_on_aws_through_a_proxy_command(
    proxied_config: Path, sshd: Instance, tmp_path: Path
) -> None:
    app = PaceridApp(proxied_config, refresh_s=0.5)
    key_file = Path(yaml.safe_load(proxied_config.read_text())["instance"]["key_path"])
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, key_file.exists)  # the host refuses the key until it boots
        authorize(sshd, key_file)
        await wait_for(pilot, finished(app, "run all"), timeout=120)
        run = the_run(app)
        assert run.epoch == 2 and "download" in run.steps_done

        lines = await step(pilot, app, "d", "download")
        assert any(line.startswith("» Download: 0 new or changed") for line in lines)
        await pilot.press("x")  # results downloaded: terminates at once
        await wait_for(pilot, lambda: states(app) == ["terminated"], timeout=90)
    assert (tmp_path / "results" / run.run_id / "checkpoint_best.pt").exists()
    assert run.instance is not None
    assert asked(tmp_path) == {f"{run.instance.host} 22 {sshd.user}"}


async def test_a_budget_stop_outlasting_the_refresh_still_saves_then_terminates(
    proxied_config: Path, sshd: Instance, tmp_path: Path
) -> None:
    """The budget stop runs in the run's supervisor worker, not in the refresh (exclusive,
    re-fired every 0.2 s here): refreshes come and go while it downloads, and it ends."""
    config = yaml.safe_load(proxied_config.read_text())
    config["output"]["download_during_training"] = False  # the stop downloads everything
    config["instance"]["budget_usd"] = 0.01
    proxied_config.write_text(yaml.safe_dump(config))
    later = 0.0  # hours the clock jumps ahead once training is done

    def clock() -> float:
        return time.time() + later * 3600

    app = PaceridApp(proxied_config, refresh_s=0.2, clock=clock)
    async with app.run_test(size=(160, 45)) as pilot:
        await launch(pilot)
        await wait_for(pilot, lambda: states(app) == ["running"])
        run_id, instance = the_run(app).run_id, the_run(app).instance
        assert instance is not None and instance.key_path
        authorize(sshd, Path(instance.key_path))
        for key, name in (("u", "upload"), ("e", "setup"), ("g", "data"), ("t", "train")):
            await step(pilot, app, key, name)
        await wait_for(pilot, lambda: app.runs.rows[run_id].epoch == 2, timeout=240)  # under load
        await wait_for(pilot, lambda: not following(app), timeout=60)
        assert states(app) == ["running"] and not app.runs.rows[run_id].over_budget
        later = 24 * 365.0  # a year on at moto's $0.00001/h: $0.09, past the budget

        def stopping() -> bool:
            return any("reached its $0.01 budget" in line for line in app.runs.view(run_id).log)

        await wait_for(pilot, stopping, timeout=30)
        refreshes = set()
        deadline = time.monotonic() + 120
        while states(app) != ["terminated"]:
            assert time.monotonic() < deadline, "the budget stop never terminated"
            refreshes.add(id(app.runs.rows))
            await pilot.pause(0.05)
        assert len(refreshes) >= 2  # the refresh went on meanwhile and cancelled nothing
        await wait_for(pilot, lambda: app.runs.rows[run_id].state_reason == "budget reached")
        # its supervisor told the ending once; the dashboard shows it
        said = [n.message for n in app._notifications if "stopped: budget reached" in n.message]
        assert said == [f"{run_id}: stopped: budget reached"]
    results = tmp_path / "results" / run_id
    events = [json.loads(line) for line in (results / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    assert (results / "checkpoint_latest.pt").stat().st_size > 0
    run = Registry(paths.registry_file()).get(run_id)
    assert run.downloaded_at is not None and run.instance is not None
    assert (run.instance.state.value, run.instance.state_reason) == ("terminated", "budget reached")
