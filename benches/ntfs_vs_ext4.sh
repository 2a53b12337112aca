#!/usr/bin/env bash
# The same tree written onto ext4 by the kernel and onto NTFS by ntfs-3g (mkntfs, then a
# ntfs-3g mount, as the Windows test disks are made), each scanned by the release build: wall
# time, peak RSS and files scanned, median of RUNS. Issue 15's target: NTFS within 1.5x of ext4.
# Usage: benches/ntfs_vs_ext4.sh [TREE] [RUNS]   (root; default TREE=/usr/share, RUNS=3)
# Build first: cargo build --release --no-default-features --bin amiscan
# IMAGES_ONLY=1 makes the two images (kept in target/bench/ntfs/) and stops.
set -euo pipefail
source "$(dirname "$0")/support/fs_bench.sh" ntfs "$@"
L=
cleanup() {
  mountpoint -q "$OUT/m" && umount "$OUT/m"
  if [ -n "$L" ]; then losetup -d "$L"; fi
}
trap cleanup EXIT
make() { # NAME
  local img="$OUT/$1.img"
  [ -f "$img.done" ] && return
  rm -f "$img"; truncate -s "${size_mb}M" "$img"
  case $1 in
    ext4) mkfs.ext4 -q -F "$img"; mount -o loop "$img" "$OUT/m" ;;
    ntfs) L=$(losetup -f --show "$img"); mkntfs -Q -q -F -p 0 -S 63 -H 255 "$L"; mount -t ntfs-3g "$L" "$OUT/m" ;;
  esac
  # Contents, links and times; owners are not kept by ntfs-3g without a user mapping.
  cp -rd --preserve=mode,timestamps "$TREE/." "$OUT/m/"
  umount "$OUT/m"
  if [ -n "$L" ]; then losetup -d "$L"; L=; fi
  touch "$img.done"
}
make ext4
make ntfs
[ -n "${IMAGES_ONLY:-}" ] && exit 0
for name in ext4 ntfs; do
  scan_median "$name"
done
