#!/usr/bin/env bash
# Run `make test` once per graph driver (CS_TEST_DRIVER=...), btrfs on a loop-mounted btrfs.
# Environment: SRC (source tree), PYTHON, CS_TEST_DRIVERS (default "vfs overlay btrfs").
# Exits non-zero if the suite failed for any driver; the loop device is always cleaned up.
set -uo pipefail

SRC="${SRC:-/home/vagrant/containers-storage}"
PYTHON="${PYTHON:-python3}"
DRIVERS="${CS_TEST_DRIVERS:-vfs overlay btrfs}"
BTRFS_IMG=/var/tmp/cs-test-btrfs.img
BTRFS_MNT=/mnt/cs-test-btrfs

cleanup_btrfs() {
  if mountpoint -q "$BTRFS_MNT"; then
    # Drivers may leave bind mounts of their home below the mount point.
    findmnt -rn -o TARGET | grep "^$BTRFS_MNT/" | sort -r | xargs -r -n1 umount -l
    umount "$BTRFS_MNT" || umount -l "$BTRFS_MNT"
  fi
  losetup -j "$BTRFS_IMG" 2>/dev/null | cut -d: -f1 | xargs -r -n1 losetup -d
  rm -f "$BTRFS_IMG"
}
trap cleanup_btrfs EXIT

setup_btrfs() {
  cleanup_btrfs
  truncate -s 4G "$BTRFS_IMG"
  mkfs.btrfs -q -f "$BTRFS_IMG"
  mkdir -p "$BTRFS_MNT"
  mount -o loop "$BTRFS_IMG" "$BTRFS_MNT"
  mkdir -p "$BTRFS_MNT/tmp"
}

cd "$SRC"
failed=()
for driver in $DRIVERS; do
  echo "=== make test with CS_TEST_DRIVER=$driver ==="
  extra=()
  if [ "$driver" = btrfs ]; then
    setup_btrfs
    # Scratch stores (pytest's tmp_path) then live on btrfs.
    extra=(TMPDIR="$BTRFS_MNT/tmp" CS_TEST_BTRFS_ROOT="$BTRFS_MNT")
  fi
  if ! env CS_TEST_DRIVER="$driver" "${extra[@]}" make test PYTHON="$PYTHON"; then
    failed+=("$driver")
  fi
  if [ "$driver" = btrfs ]; then
    cleanup_btrfs
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "test suite failed for: ${failed[*]}" >&2
  exit 1
fi
echo "test suite passed for: $DRIVERS"
