"""The instance's first-boot script: a dead-man switch armed before anything else can go wrong.

The host watchdog (trainer/watchdog.py) only starts at the end of a successful setup, so an
instance whose SSH never comes up, whose setup fails, or whose controller died during launch
would bill with nothing watching. EC2 runs an instance's user data once, at first boot, as root;
ours arms a power-off `instance.boot_grace_minutes` after boot (shutdown behaviour is
`terminate`, so powering off ends the bill; with `instance.interruption: stop` it is `stop`, and
trainer/boot_service.sh re-arms the switch at every later boot). It stands down when:

- the host watchdog starts: it writes `<boot dir>/disarmed` and owns the limits from then on
  (max runtime, idle, budget);
- a controller keeps a heartbeat: each touch of `<boot dir>/heartbeat` restarts the grace.

The switch is a small POSIX-sh loop, run as a transient systemd unit where systemd runs (Ubuntu
and Amazon Linux 2023 DLAMIs), else detached with setsid; it needs no package the images may
lack. The local provider runs the same script at its instance's "first boot", with
PACERID_BOOT_DIR inside the instance folder, and powering off there stops that instance's server
(PACERID_SERVER_PID), as trainer/watchdog.py does.
"""

from __future__ import annotations

import math

BOOT_DIR = "/run/pacerid"
"""Where the switch keeps its state on EC2 (tmpfs: a reboot is a new boot anyway); the login
user writes its heartbeat there, so it is world-writable with the sticky bit, like /tmp."""

UNIT = "pacerid-boot-switch"

HEARTBEAT = f'touch "${{PACERID_BOOT_DIR:-{BOOT_DIR}}}/heartbeat" 2>/dev/null'
"""A controller's sign of life on the host, before the watchdog runs: restarts the grace."""

SWITCH = r"""dir="$1"; grace="$2"; poll="$3"
armed=$(cat "$dir/armed")
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') boot switch: $*"; }
log "armed: power off ${grace} s after boot unless the watchdog or a controller takes over"
while :; do
  # A local instance whose folder is gone has nothing left to power off.
  [ -n "${PACERID_LOCAL_INSTANCE:-}" ] && [ ! -d "$dir" ] && exit 0
  if [ -e "$dir/disarmed" ]; then
    log "disarmed: $(cat "$dir/disarmed")"
    exit 0
  fi
  last=$armed
  beat=$(stat -c %Y "$dir/heartbeat" 2>/dev/null || echo 0)
  [ "$beat" -gt "$last" ] && last=$beat
  if [ $(( $(date +%s) - last )) -ge "$grace" ]; then
    log "powering off: no watchdog and no controller heartbeat for ${grace} s"
    echo "boot switch: no watchdog and no controller for ${grace} s" > "$dir/poweroff"
    if [ -n "${PACERID_LOCAL_INSTANCE:-}" ]; then
      # Only while that pid is still this instance's server: a pid can be reused.
      pid="${PACERID_SERVER_PID:-}"
      if [ -n "$pid" ] && tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null \
          | grep -qx "PACERID_LOCAL_INSTANCE=$PACERID_LOCAL_INSTANCE"; then
        kill -TERM "$pid"
      fi
    else
      shutdown -h now || systemctl poweroff || poweroff
    fi
    exit 0
  fi
  sleep "$poll"
done
"""


def boot_script(grace_minutes: float) -> str:
    """The switch's installer: writes the loop under the boot dir and starts it detached."""
    grace = max(math.ceil(grace_minutes * 60), 1)
    poll = max(1, min(15, grace // 10))
    return (
        "# pacerid: the boot-time dead-man switch (pacerid_tui/core/kernel/boot_switch.py)\n"
        f'dir="${{PACERID_BOOT_DIR:-{BOOT_DIR}}}"\n'
        'mkdir -p "$dir" && chmod 1777 "$dir"\n'
        # Re-armed at every boot of a stop-mode host (trainer/boot_service.sh): a new grace.
        'rm -f "$dir/disarmed" "$dir/poweroff"\n'
        'date +%s > "$dir/armed"\n'
        f"cat > \"$dir/switch.sh\" <<'PACERID_SWITCH'\n{SWITCH}PACERID_SWITCH\n"
        # A transient unit outlives cloud-init; without systemd (or if it refuses), detach.
        'if [ -z "${PACERID_LOCAL_INSTANCE:-}" ] && [ -d /run/systemd/system ] '
        "&& command -v systemd-run >/dev/null 2>&1 "
        f'&& systemd-run --unit={UNIT} --description="pacerid boot-time dead-man switch" '
        f'/bin/sh "$dir/switch.sh" "$dir" {grace} {poll}; then\n'
        "  :\n"
        "else\n"
        f'  setsid nohup /bin/sh "$dir/switch.sh" "$dir" {grace} {poll} '
        '>> "$dir/switch.log" 2>&1 < /dev/null &\n'
        "fi\n"
    )


def max_runtime_line(minutes: float) -> str:
    """A hard stop whatever happens: shutdown takes whole minutes, never earlier than asked."""
    whole = max(math.ceil(minutes), 1)
    return f"shutdown -h +{whole} 'pacerid: instance.max_runtime_minutes reached'\n"


def user_data(grace_minutes: float, max_runtime_minutes: float | None = None) -> str:
    """The whole first-boot script: the switch, plus the max-runtime timer when one is set."""
    script = "#!/bin/sh\n" + boot_script(grace_minutes)
    if max_runtime_minutes is not None:
        script += max_runtime_line(max_runtime_minutes)
    return script
