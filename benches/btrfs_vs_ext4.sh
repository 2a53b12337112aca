#!/usr/bin/env bash
# The same tree written by the kernel onto ext4, btrfs and btrfs with compress=zstd (Fedora's
# default), each scanned by the release build: wall time and files scanned, median of RUNS.
# Usage: benches/btrfs_vs_ext4.sh [TREE] [RUNS]   (root; default TREE=/usr/share, RUNS=3)
# BIN=path/to/amiscan scans with another build (default target/release/amiscan).
set -euo pipefail
source "$(dirname "$0")/support/fs_bench.sh" btrfs "$@"
trap 'mountpoint -q "$OUT/m" && umount "$OUT/m"' EXIT
make() { # NAME MKFS MOUNTOPTS
  local img="$OUT/$1.img"
  [ -f "$img.done" ] && return
  rm -f "$img"; truncate -s "${size_mb}M" "$img"
  $2 "$img" >/dev/null
  mount -o "loop${3:+,$3}" "$img" "$OUT/m"
  cp -a "$TREE/." "$OUT/m/"
  umount "$OUT/m"
  touch "$img.done"
}
make ext4 "mkfs.ext4 -q -F" ""
make btrfs "mkfs.btrfs -q -f" ""
make btrfs-zstd "mkfs.btrfs -q -f" "compress=zstd:1"
for name in ext4 btrfs btrfs-zstd; do
  scan_median "$name"
done
