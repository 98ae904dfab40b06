#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real (OpenSSH's sshd and client, tmux),
# when they are missing; `--bench` adds what the benchmarks' baselines need (rsync, for
# benchmarks/sync.py). Needs root (CI runs as root); says what to do otherwise.
set -euo pipefail
missing=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ "${1:-}" = --bench ]; then
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]}. Install them: sudo apt-get install -y ${missing[*]}" >&2
  exit 2
fi
echo "Installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
