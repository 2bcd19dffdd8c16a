#!/usr/bin/env bash
# Provision a Debian/Ubuntu VM: system packages, then `make install` as the README says.
# Environment: PYTHON (interpreter for the venv), SRC (the synced source tree).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
SRC="${SRC:-/home/vagrant/containers-storage}"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
packages=(make git "$PYTHON" "${PYTHON}-venv" python3-pip btrfs-progs fuse-overlayfs util-linux e2fsprogs)
# The Go reference tools for the interoperability tests, where the distribution ships them.
for optional in containers-storage skopeo; do
  if apt-cache show "$optional" >/dev/null 2>&1; then
    packages+=("$optional")
  fi
done
apt-get install -y -q --no-install-recommends "${packages[@]}"
modprobe overlay || true
modprobe btrfs || true
modprobe loop || true

cd "$SRC"
make install PYTHON="$PYTHON"
