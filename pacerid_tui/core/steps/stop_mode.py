"""`instance.interruption: stop` on the host: what setup leaves there so it resumes by itself.

In stop mode EC2 stops the instance at an interruption and starts the same one again when
capacity returns, with its disk but none of its processes, and no controller may be running.
So the watchdog's settings name the host's own spot request (core/remote/host_contract.py: the
watchdog cancels it before terminating itself), and setup leaves `resume.sh`, the very command
`t` sends to start training (core/remote/host_contract.py, `--resume auto`), for the boot service
(trainer/boot_service.sh) to run at every boot. The boot-time dead-man switch needs nothing from
here: the user data installed it for every boot (core/kernel/boot_switch.py).

An instance without a spot request (relaunch mode, on-demand, or stop mode refused by IAM) gets
no resume.sh, and setup installs no boot service.
"""

from __future__ import annotations

from pacerid_tui.core.kernel.models import Instance
from pacerid_tui.core.remote.host_contract import HostPaths


def boot_files(run_id: str, instance: Instance) -> dict[str, str]:
    """Run-folder file name → content, for a host that may be stopped and started again."""
    if instance.spot_request_id is None:
        return {}
    return {"resume.sh": HostPaths(run_id).train_command("auto") + "\n"}
