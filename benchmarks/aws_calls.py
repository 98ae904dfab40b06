"""How many EC2 API calls each provider operation makes, measured against a local moto server.

The figure that matters on a real account is the call count: DescribeInstances and friends are
rate-limited per account, and the dashboard refreshes status every few seconds. Times are
moto's, printed only to show nothing blocks; AWS adds tens of milliseconds a call.

    .venv/bin/python benchmarks/aws_calls.py [--instances N]

Prints a Markdown table for docs/benchmarks.md. Nothing leaves 127.0.0.1.
"""
# make bench runs this script (benchmarks/README.md).

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORK = Path(tempfile.mkdtemp(prefix="pacerid-aws-calls-"))
AMI = {
    "ami_id": "ami-0a1b2c3d4e5f60002",
    "name": "Deep Learning OSS Nvidia Driver AMI GPU PyTorch 2.5 (Ubuntu 22.04) 20240612",
    "description": "Deep Learning AMI",
    "owner_id": "898082745236",
    "public": True,
    "virtualization_type": "hvm",
    "architecture": "x86_64",
    "state": "available",
    "platform": None,
    "image_type": "machine",
    "hypervisor": "xen",
    "root_device_name": "/dev/sda1",
    "root_device_type": "ebs",
    "sriov": "simple",
    "creation_date": "2024-06-12T10:00:00Z",
}
(WORK / "amis.json").write_text(json.dumps([AMI]))
# moto reads these when imported, and boto3 must never look for real credentials or metadata.
os.environ.update(
    {
        "MOTO_AMIS_PATH": str(WORK / "amis.json"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(WORK / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(WORK / "none"),
    }
)

from moto.server import ThreadedMotoServer  # noqa: E402

from pacerid_tui.config import InstanceConfig  # noqa: E402
from pacerid_tui.core.cloud.aws import AwsProvider  # noqa: E402
from pacerid_tui.core.kernel.models import InstanceSpec  # noqa: E402


def measure(provider: AwsProvider, action: Callable[[], Any]) -> tuple[Counter[str], float]:
    """The API calls `action` made, by operation, and its wall time in seconds."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    clients = (provider.clients.ec2, provider.clients.launch)
    for client in clients:
        client.meta.events.register("before-call.ec2", count)
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    for client in clients:
        client.meta.events.unregister("before-call.ec2", count)
    return calls, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5, help="instances for describe")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    config = InstanceConfig(
        provider="aws",
        key_path=str(WORK / "ssh" / "pacerid-ml-key.pem"),
        ssh_cidr="203.0.113.7/32",
        fallback_instance_types=["g5.xlarge"],
    )
    provider = AwsProvider(config, endpoint_url=f"http://{host}:{port}")
    spec = InstanceSpec(run_id="bench", provider="aws")
    rows: list[tuple[str, Counter[str], float]] = []

    def run(label: str, action: Callable[[], Any]) -> Any:
        result: list[Any] = []
        calls, elapsed = measure(provider, lambda: result.append(action()))
        rows.append((label, calls, elapsed))
        return result[0]

    first = run("launch (new account: key pair and group created)", lambda: provider.launch(spec))
    run("launch (key pair and group exist)", lambda: provider.launch(spec))
    for _ in range(args.instances - 2):
        provider.launch(spec)
    ids = [instance.instance_id for instance in provider.find_managed()]
    run(f"describe {len(ids)} instances (status refresh)", lambda: provider.describe(ids))
    run("find_managed (adopt after a lost registry)", provider.find_managed)
    run("zone_prices", provider.zone_prices)
    run("price_history since launch", lambda: provider.price_history(first, 0, time.time()))
    run("terminate (waits for terminated)", lambda: provider.terminate(first.instance_id))
    run("terminate again (idempotent)", lambda: provider.terminate(first.instance_id))
    server.stop()

    print("| operation | API calls | by operation | moto time |")
    print("|---|---:|---|---:|")
    for label, calls, elapsed in rows:
        detail = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
        print(f"| {label} | {sum(calls.values())} | {detail} | {elapsed * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
