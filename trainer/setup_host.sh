#!/usr/bin/env bash
# Prepares a host to run the trainer; idempotent (a marker keyed by requirements.txt makes a
# second run instant). Usage: setup_host.sh RUN_DIR   (RUN_DIR = ~/pacerid/<run-id>)
#
# Picks the Python to train with and leaves a wrapper at RUN_DIR/bin/python:
#   - the local provider passes PACERID_PYTHON (this machine's interpreter, already complete);
#   - on a Deep Learning AMI, a venv on top of its PyTorch (/opt/pytorch or a conda env) with
#     --system-site-packages, plus trainer/requirements.txt;
#   - elsewhere, python3 the same way.
# Also starts the host watchdog (dead-man switch) when RUN_DIR/watchdog.json exists.
set -euo pipefail
run="$(cd "$1" && pwd)"
mkdir -p "$run/output" "$run/bin" "$run/data"
exec > >(tee -a "$run/output/setup.log") 2>&1
req="$run/code/trainer/requirements.txt"
stamp="$(sha256sum "$req" | cut -c1-16)-${PACERID_PYTHON:-ami}"
marker="$run/bin/.ready"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$stamp" ]; then
  echo "Setup already done ($("$run/bin/python" -c 'import sys; print(sys.version.split()[0])'))."
else
  if [ -n "${PACERID_PYTHON:-}" ]; then
    python="$PACERID_PYTHON"
    echo "Local provider: using $python"
  else
    base=""
    for candidate in /opt/pytorch/bin/python3 /opt/conda/envs/pytorch/bin/python3 \
        "$HOME"/miniconda3/envs/pytorch/bin/python3 /usr/bin/python3; do
      if [ -x "$candidate" ] && "$candidate" -c 'import torch' 2>/dev/null; then
        base="$candidate"; break
      fi
    done
    if [ -z "$base" ]; then
      base="$(command -v python3)"
      echo "No PyTorch found on this image; installing it with pip (slow)."
    fi
    echo "Base interpreter: $base"
    "$base" -m venv --system-site-packages "$run/venv"
    "$run/venv/bin/python" -m pip install --quiet --upgrade pip
    "$run/venv/bin/python" -m pip install --quiet -r "$req"
    python="$run/venv/bin/python"
  fi
  printf '#!/bin/sh\nexec %s "$@"\n' "$python" > "$run/bin/python.tmp"
  chmod 755 "$run/bin/python.tmp"
  mv "$run/bin/python.tmp" "$run/bin/python"
  "$run/bin/python" - <<'PY'
import sys
try:
    import torch
    gpus = torch.cuda.device_count()
    print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, GPUs: {gpus}")
except ImportError as err:
    print(f"Python {sys.version.split()[0]}; torch is missing ({err})")
    raise SystemExit(1)
PY
  echo "$stamp" > "$marker.tmp" && mv "$marker.tmp" "$marker"
  echo "Setup done."
fi

if [ -f "$run/watchdog.json" ] && [ -f "$run/code/trainer/watchdog.py" ]; then
  if ! { [ -f "$run/watchdog.pid" ] && kill -0 "$(cat "$run/watchdog.pid")" 2>/dev/null; }; then
    setsid nohup "$run/bin/python" "$run/code/trainer/watchdog.py" "$run" \
      >> "$run/output/watchdog.log" 2>&1 < /dev/null &
    echo $! > "$run/watchdog.pid"
    echo "Watchdog started (pid $!)."
  fi
fi
