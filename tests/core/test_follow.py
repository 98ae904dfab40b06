"""The follower survives dropped connections with nothing lost or repeated."""

from __future__ import annotations

import asyncio

import asyncssh

from pacerid_tui import paths
from pacerid_tui.core import ssh
from pacerid_tui.core.follow import Follower
from pacerid_tui.core.models import Instance

LINES = 10_000
DROPS = 20


async def test_twenty_drops_lose_and_repeat_nothing(host: Instance, remote_dir: str) -> None:
    target = ssh.Target.of(host, paths.known_hosts_file())
    control = await ssh.connect(target)
    log = f"{remote_dir}/train.log"
    # A host process writing numbered lines, partial writes included, for about 4 seconds.
    writer = (
        f"mkdir -p {remote_dir} && : > {log} && "
        f"for i in $(seq 1 {LINES}); do printf '%s' \"line-$i\" >> {log}; "
        f"printf '\\n' >> {log}; [ $((i % 500)) -eq 0 ] && sleep 0.2; done; touch {log}.done"
    )
    writing = asyncio.create_task(ssh.run(control, writer))
    connections: list[asyncssh.SSHClientConnection] = []

    async def connect() -> asyncssh.SSHClientConnection:
        conn = await ssh.connect(target)
        connections.append(conn)
        return conn

    received: list[str] = []
    follower = Follower(connect, [log], lambda _path, lines: received.extend(lines))

    async def drop_connections() -> None:
        for index in range(DROPS):
            while len(connections) <= index:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            connections[index].abort()
        while len(connections) <= DROPS:  # done once the last drop was noticed: else the
            await asyncio.sleep(0.01)  # follower may finish between that abort and its next read

    dropper = asyncio.create_task(drop_connections())
    await follower.run(lambda: writing.done() and dropper.done())
    await writing
    control.close()
    assert follower.reconnects >= DROPS
    assert received == [f"line-{i}" for i in range(1, LINES + 1)]
