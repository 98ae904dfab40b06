"""The instance's boot-time dead-man switch, installed by its user data to run at every boot.

The host watchdog (trainer/watchdog.py) only starts at the end of a successful setup, so an
instance whose SSH never comes up, whose setup fails, or whose controller died during launch
would bill with nothing watching. EC2 runs an instance's user data once, at its first launch
(EC2 User Guide, "Work with instance user data"); cloud-init runs the executables in
`/var/lib/cloud/scripts/per-boot/` at every boot ("Run commands when you launch an EC2 instance
with user data input"). A stop-mode instance stopped before setup finished boots again with no
watchdog and no boot unit, so the user data only installs: the loop (`switch.sh`) and its
arming script, linked into per-boot. cloud-init's final stage runs the per-boot scripts before
the user data's own (`scripts_per_boot` precedes `scripts_user` in `cloud_final_modules`), so
at the first boot the user data arms the switch itself.

Its state is on the root disk (BOOT_DIR), not under /run (tmpfs: a stop empties it):
- `armed`: this boot's id, when it was armed, and the running seconds of the boots before;
- `running_s`: running seconds over all boots, rewritten each poll (a stop loses one poll, and
  each boot's seconds before cloud-init's final stage are not counted);
- `heartbeat`: touched by a controller; each touch restarts the grace;
- `disarmed`: written by the host watchdog, naming the boot it took over in (its first line).
  A disarm of an earlier boot is void; one written before this boot's arming holds, since
  systemd may start the watchdog's boot unit before cloud-init's final stage (on Ubuntu
  cloud-final.service is ordered after multi-user.target).

Every poll the switch powers off when:
- max runtime: the running time (stopped stretches left out) reaches `max_runtime_minutes`.
  It replaces `shutdown -h +N`, which lost its timer at the first stop and wrote /run/nologin
  five minutes before (shutdown(8)), refusing the last download. Once the watchdog has taken
  over, WATCHDOG_FIRST_S later: the watchdog ends a stop-mode run better (its request
  cancelled, the instance terminated, where a power-off only stops it);
- grace: the watchdog has not taken over in this boot, and neither the arming nor the last
  heartbeat is within `boot_grace_minutes`.

With shutdown behaviour `terminate` a power-off ends the instance; in stop mode it stops it and
its request is disabled (no relaunch); the controller terminates it when it next runs. The
switch is POSIX sh (no package the images may lack), run as a transient systemd unit where
systemd runs, else detached with setsid. The local provider runs the same user data and
per-boot scripts (local_server.py), with PACERID_BOOT_DIR, PACERID_CLOUD_DIR and PACERID_BOOT_ID
inside the instance, and powering off stops that instance's server (PACERID_SERVER_PID).
"""

from __future__ import annotations

import math

BOOT_DIR = "/var/lib/pacerid"
"""The switch's state on EC2; the login user writes its heartbeat there and the watchdog its
disarm, so it is world-writable with the sticky bit, like /tmp."""
CLOUD_DIR = "/var/lib/cloud"
"""cloud-init's folder; scripts/per-boot/ under it runs at every boot."""
UNIT = "pacerid-boot-switch"
WATCHDOG_FIRST_S = 120
"""How long after max runtime a switch whose watchdog took over waits for it: the watchdog polls
every 15 s and its two AWS calls take seconds; past this it is presumed dead."""

HEARTBEAT = f'touch "${{PACERID_BOOT_DIR:-{BOOT_DIR}}}/heartbeat" 2>/dev/null'
"""A controller's sign of life on the host, before the watchdog runs: restarts the grace."""

BOOT_ID = "${PACERID_BOOT_ID:-$(cat /proc/sys/kernel/random/boot_id)}"
"""This boot's id: the kernel's, new at each boot; the local provider's server names its own."""

SWITCH = r"""dir="$1"; grace="$2"; poll="$3"; max="$4"; after="$5"
boot="${PACERID_BOOT_ID:-$(cat /proc/sys/kernel/random/boot_id)}"
{ read -r armed_in; read -r armed; read -r before; } < "$dir/armed"
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') boot switch: $*"; }
power_off() {
  log "powering off: $1"
  echo "boot switch: $1" > "$dir/poweroff"
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
}
[ "$max" -gt 0 ] && log "max runtime: ${max} s of running time (${before} s before this boot)"
log "armed: power off ${grace} s after boot unless the watchdog or a controller takes over"
taken=""
while :; do
  # A local instance whose folder is gone has nothing left to power off.
  [ -n "${PACERID_LOCAL_INSTANCE:-}" ] && [ ! -d "$dir" ] && exit 0
  now=$(date +%s)
  running=$(( before + now - armed ))
  echo "$running" > "$dir/running_s.tmp" && mv -f "$dir/running_s.tmp" "$dir/running_s"
  if [ -z "$taken" ] && [ "$(sed -n 1p "$dir/disarmed" 2>/dev/null)" = "$boot" ]; then
    taken=yes
    log "disarmed: $(sed -n 2p "$dir/disarmed")"
    [ "$max" -gt 0 ] || exit 0
    log "max runtime still holds, ${after} s later, if the watchdog has not ended the run"
  fi
  if [ "$max" -gt 0 ]; then
    limit=$max
    [ -n "$taken" ] && limit=$(( max + after ))
    [ "$running" -ge "$limit" ] && power_off "max runtime of ${max} s of running time reached"
  fi
  if [ -z "$taken" ]; then
    last=$armed
    beat=$(stat -c %Y "$dir/heartbeat" 2>/dev/null || echo 0)
    [ "$beat" -gt "$last" ] && last=$beat
    [ $(( now - last )) -ge "$grace" ] && power_off "no watchdog and no controller for ${grace} s"
  fi
  sleep "$poll"
done
"""


def arm_script(grace_minutes: float, max_runtime_minutes: float | None = None) -> str:
    """The per-boot script: records this boot's arming, then starts the loop detached."""
    grace = max(math.ceil(grace_minutes * 60), 1)
    limit = max(math.ceil(max_runtime_minutes * 60), 1) if max_runtime_minutes else 0
    poll = max(1, min(15, grace // 10))
    if limit:  # a tenth of either bound, at most late
        poll = max(1, min(poll, limit // 10))
    args = f'"$dir" {grace} {poll} {limit} {WATCHDOG_FIRST_S}'
    return (
        "#!/bin/sh\n"
        "# pacerid: arms the boot-time dead-man switch at every boot (core/kernel/boot_switch.py)\n"
        f'dir="${{PACERID_BOOT_DIR:-{BOOT_DIR}}}"\n'
        f'boot="{BOOT_ID}"\n'
        # Once a boot, whoever runs it again.
        '[ "$(sed -n 1p "$dir/armed" 2>/dev/null)" = "$boot" ] && exit 0\n'
        'before=$(cat "$dir/running_s" 2>/dev/null) || before=0\n'
        'rm -f "$dir/poweroff"\n'
        'printf \'%s\\n%s\\n%s\\n\' "$boot" "$(date +%s)" "${before:-0}" > "$dir/armed.tmp"\n'
        'mv -f "$dir/armed.tmp" "$dir/armed"\n'
        # A transient unit outlives cloud-init; without systemd (or if it refuses), detach.
        'if [ -z "${PACERID_LOCAL_INSTANCE:-}" ] && [ -d /run/systemd/system ] '
        "&& command -v systemd-run >/dev/null 2>&1 "
        f'&& systemd-run --unit={UNIT} --description="pacerid boot-time dead-man switch" '
        f'/bin/sh "$dir/switch.sh" {args}; then\n'
        "  :\n"
        "else\n"
        f'  setsid nohup /bin/sh "$dir/switch.sh" {args} >> "$dir/switch.log" 2>&1 < /dev/null &\n'
        "fi\n"
    )


def user_data(grace_minutes: float, max_runtime_minutes: float | None = None) -> str:
    """The first-boot script: installs the switch for every boot, then arms this one."""
    per_boot = f'"${{PACERID_CLOUD_DIR:-{CLOUD_DIR}}}/scripts/per-boot"'
    return (
        "#!/bin/sh\n"
        "# pacerid: the boot-time dead-man switch, for every boot (core/kernel/boot_switch.py)\n"
        f'dir="${{PACERID_BOOT_DIR:-{BOOT_DIR}}}"\n'
        f"per_boot={per_boot}\n"
        'mkdir -p "$dir" "$per_boot" && chmod 1777 "$dir"\n'
        f"cat > \"$dir/switch.sh\" <<'PACERID_SWITCH'\n{SWITCH}PACERID_SWITCH\n"
        f"cat > \"$per_boot/{UNIT}.sh\" <<'PACERID_ARM'\n"
        f"{arm_script(grace_minutes, max_runtime_minutes)}PACERID_ARM\n"
        f'chmod 755 "$per_boot/{UNIT}.sh"\n'
        # cloud-init ran the per-boot scripts before this one: arm this first boot here.
        f'"$per_boot/{UNIT}.sh"\n'
    )
