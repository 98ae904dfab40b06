#!/usr/bin/env bash
# What a host does at every boot, so a run survives a spot stop with no controller running
# (instance.interruption: stop). EC2 starts a stopped spot instance again when capacity returns;
# setup_host.sh installs this as a systemd unit (pacerid-resume.service) that runs it at each
# boot, and the local provider's simulated boot runs the same unit. The boot-time dead-man
# switch (core/kernel/boot_switch.py) arms itself at every boot (cloud-init's per-boot scripts), before or
# after this unit. In order:
#   1. starts the host watchdog (trainer/watchdog.py), which disarms the switch for this boot;
#   2. if training had started and not finished (status.json says neither done nor error),
#      resumes it from the latest checkpoint in tmux `training`: RUN_DIR/resume.sh is the very
#      command `t` sends (core/host.py train_command, written by the controller at setup).
# Each boot is one line of RUN_DIR/output/boots.jsonl, which the controller reads on return.
# Usage: boot_service.sh RUN_DIR [watchdog]   (`watchdog`: step 1 only, as setup_host.sh uses it)
set -uo pipefail
run="$(cd "$1" && pwd)"
mkdir -p "$run/output"

start_watchdog() {
  [ -f "$run/watchdog.json" ] && [ -f "$run/code/trainer/watchdog.py" ] || return 0
  local pid
  pid="$(cat "$run/watchdog.pid" 2>/dev/null)"
  # A pid from before a stop may now be another process: it must be our watchdog.
  if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q watchdog.py; then
    return 0
  fi
  setsid nohup "$run/bin/python" "$run/code/trainer/watchdog.py" "$run" \
    >> "$run/output/watchdog.log" 2>&1 < /dev/null &
  echo $! > "$run/watchdog.pid"
  echo "Watchdog started (pid $!)."
}

if [ "${2:-}" = watchdog ]; then
  start_watchdog
  exit 0
fi

exec >> "$run/output/boot.log" 2>&1
echo "$(date '+%Y-%m-%d %H:%M:%S') boot service: booted"
start_watchdog
phase="$(sed -n 's/.*"phase": *"\([a-z]*\)".*/\1/p' "$run/output/status.json" 2>/dev/null)"
resumed=false
if [ -f "$run/resume.sh" ] && [ -n "$phase" ] && [ "$phase" != done ] && [ "$phase" != error ]; then
  echo "Training was $phase: resuming it from the latest checkpoint (tmux session training)."
  bash "$run/resume.sh" && resumed=true
fi
# Sub-second time: a stop and the next boot can fall in the same second.
"$run/bin/python" - "${phase:-not started}" "$resumed" >> "$run/output/boots.jsonl" <<'PY'
import json, sys, time
phase, resumed = sys.argv[1], sys.argv[2] == "true"
print(json.dumps({"event": "boot", "time": time.time(), "phase": phase, "resumed": resumed}))
PY
