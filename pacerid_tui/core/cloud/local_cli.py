"""The local instance's `aws`: the two AWS CLI calls a stop-mode host makes, on the local provider.

trainer/watchdog.py ends a stop-mode run with `aws ec2 cancel-spot-instance-requests
--spot-instance-request-ids ID` then `aws ec2 terminate-instances --instance-ids ID` (each with
`--region`), using the instance role on EC2. On a local instance `aws` is bin/aws, which runs
this module against the provider's folder, so the watchdog's own code path is what the tests
run. Exit codes follow the AWS CLI: 0 done, 252 a command it does not know, 254 a service error.

The call runs in a child of its own session without the instance's marker: terminating the
instance kills every process that carries it, including whoever asked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pacerid_tui.core.cloud.local import LocalProvider
from pacerid_tui.core.kernel.errors import ProviderError

USAGE, SERVICE = 252, 254
MARKERS = ("PACERID_LOCAL_INSTANCE", "PACERID_SERVER_PID", "PACERID_BOOT_DIR")


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args[:-1] else None


def call(root: Path, args: list[str]) -> int:
    provider = LocalProvider(root)
    verb = args[1] if len(args) > 1 and args[0] == "ec2" else None
    if verb == "cancel-spot-instance-requests":
        request = option(args, "--spot-instance-request-ids")
        if request is None or not provider.cancel_request(request):
            print(f"InvalidSpotInstanceRequestID.NotFound: {request}", file=sys.stderr)
            return SERVICE
        print(f'{{"CancelledSpotInstanceRequests": [{{"SpotInstanceRequestId": "{request}"}}]}}')
        return 0
    if verb == "terminate-instances":
        instance = option(args, "--instance-ids")
        try:
            provider.terminate_instance(instance or "")
        except ProviderError as err:
            print(f"InvalidInstanceID.NotFound: {err}", file=sys.stderr)
            return SERVICE
        return 0
    print(f"aws: the local provider does not serve {' '.join(args[:2])}", file=sys.stderr)
    return USAGE


def main(argv: list[str]) -> int:
    root, args = Path(argv[0]), argv[1:]
    if not any(marker in os.environ for marker in MARKERS):
        return call(root, args)
    env = {k: v for k, v in os.environ.items() if k not in MARKERS}
    child = subprocess.run(
        [sys.executable, "-m", "pacerid_tui.core.cloud.local_cli", *argv],
        env=env,
        cwd=root,
        start_new_session=True,
        check=False,
    )
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
