#!/usr/bin/env bash
# Prepares a host to run the trainer; idempotent (a marker keyed by requirements.txt makes a
# second run instant). Usage: setup_host.sh RUN_DIR   (RUN_DIR = ~/pacerid/<run-id>)
#
# Picks the Python to train with and leaves a wrapper at RUN_DIR/bin/python:
#   - the local provider passes PACERID_PYTHON (this machine's interpreter, already complete);
#   - on a Deep Learning AMI, the image's own PyTorch, never reinstalled: /opt/pytorch (a venv on
#     the current OSS images, Ubuntu and Amazon Linux 2023) or a conda env (older images). A
#     venv made from a venv's python does not see that venv's packages (its home is the base
#     interpreter), so the run venv gets a .pth that adds the image env's site-packages with
#     site.addsitedir; trainer/requirements.txt then goes into the run venv only, and whatever
#     the image already has is not downloaded again;
#   - a Base image (no PyTorch anywhere) is refused in one sentence: torch is not installed here.
# PACERID_IMAGE_ROOT (default empty) prefixes the image paths looked at, so tests can lay an
# image out under a folder instead of /.
# Also starts the host watchdog when RUN_DIR/watchdog.json exists; the watchdog disarms the
# boot-time dead-man switch (core/kernel/boot_switch.py) and owns the limits from then on. In stop
# mode (RUN_DIR/resume.sh exists) it installs the boot service, boot_service.sh; before that, a
# stop-mode host checks it can end its own run through AWS (watchdog.py --check), and setup
# fails if not: training must never start on a host that could only stop itself.
set -euo pipefail
run="$(cd "$1" && pwd)"
mkdir -p "$run/output" "$run/bin" "$run/data"
exec > >(tee -a "$run/output/setup.log") 2>&1
req="$run/code/trainer/requirements.txt"
stamp="$(sha256sum "$req" | cut -c1-16)-${PACERID_PYTHON:-ami}"
marker="$run/bin/.ready"
image="${PACERID_IMAGE_ROOT:-}"

image_python() {
  # The first of the images' PyTorch interpreters that really imports torch.
  local candidate
  for candidate in "$image"/opt/pytorch/bin/python3 "$image"/opt/conda/envs/pytorch/bin/python3 \
      "$image$HOME"/miniconda3/envs/pytorch/bin/python3 "$image"/usr/bin/python3; do
    if [ -x "$candidate" ] && "$candidate" -c 'import torch' >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$stamp" ]; then
  echo "Setup already done ($("$run/bin/python" -c 'import sys; print(sys.version.split()[0])'))."
else
  if [ -n "${PACERID_PYTHON:-}" ]; then
    python="$PACERID_PYTHON"
    echo "Local provider: using $python"
  else
    if ! base="$(image_python)"; then
      echo "No PyTorch on this image (looked in $image/opt/pytorch, $image/opt/conda/envs/pytorch" \
        "and $image/usr/bin/python3); launch a Deep Learning AMI with PyTorch" \
        "(leave instance.ami_id empty to get the newest)."
      exit 1
    fi
    echo "Image PyTorch interpreter: $base"
    rm -rf "$run/venv"
    # --without-pip: no ensurepip needed (Ubuntu ships it apart); pip comes from the image env.
    "$base" -m venv --without-pip "$run/venv"
    venv_site="$("$run/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # The image env's own site folders, as its interpreter sees them (venv or conda prefix).
    "$base" - "$venv_site/pacerid_image_env.pth" <<'PY'
import site, sys, sysconfig
dirs = [d for d in site.getsitepackages() if d not in ("", None)]
dirs += [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
line = "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dict.fromkeys(dirs))
with open(sys.argv[1], "w") as pth:
    pth.write(line + "\n")
PY
    if ! "$run/venv/bin/python" -m pip --version >/dev/null 2>&1; then
      echo "The image's Python ($base) has no pip; cannot install $req."
      exit 1
    fi
    "$run/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
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

# ImageNet weights into torch's cache (TORCH_HOME) here, once, so training never waits on the
# network; a missing file stops training in one sentence (trainer/weights.py).
(cd "$run/code" && "$run/bin/python" -m trainer weights --config run.yaml)

if [ -f "$run/watchdog.json" ]; then
  "$run/bin/python" "$run/code/trainer/watchdog.py" "$run" --check
fi

if [ -f "$run/resume.sh" ]; then
  # instance.interruption: stop. EC2 may stop this host and start it again later: a boot unit
  # restarts the watchdog and resumes training (boot_service.sh); the boot switch re-arms
  # itself at every boot (cloud-init's per-boot scripts).
  # On a local instance (PACERID_LOCAL_INSTANCE) there is no systemctl: the provider's boot
  # runs what is linked under multi-user.target.wants, as systemd would. PACERID_UNIT_DIR
  # moves the unit folder (the local instance's own; tests).
  unit=pacerid-resume.service
  unit_dir="${PACERID_UNIT_DIR:-/etc/systemd/system}"
  content="[Unit]
Description=pacerid: resume run $(basename "$run") after a spot stop
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
User=$(id -un)
ExecStart=/bin/bash \"$run/code/trainer/boot_service.sh\" \"$run\"

[Install]
WantedBy=multi-user.target"
  if [ -n "${PACERID_LOCAL_INSTANCE:-}" ]; then
    mkdir -p "$unit_dir/multi-user.target.wants"
    printf '%s\n' "$content" > "$unit_dir/$unit"
    ln -sfn "../$unit" "$unit_dir/multi-user.target.wants/$unit"
  else
    printf '%s\n' "$content" | sudo -n tee "$unit_dir/$unit" > /dev/null
    sudo -n systemctl daemon-reload
    sudo -n systemctl enable "$unit"
  fi
  echo "Boot service $unit enabled: after a spot stop, training resumes by itself."
fi

# Also started again at every boot by the boot service (stop mode).
bash "$run/code/trainer/boot_service.sh" "$run" watchdog
