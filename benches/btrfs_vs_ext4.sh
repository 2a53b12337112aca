#!/usr/bin/env bash
# The same tree written by the kernel onto ext4, btrfs and btrfs with compress=zstd (Fedora's
# default), each scanned by the release build: wall time and files scanned, median of RUNS.
# Usage: benches/btrfs_vs_ext4.sh [TREE] [RUNS]   (root; default TREE=/usr/share, RUNS=3)
# BIN=path/to/amiscan scans with another build (default target/release/amiscan).
set -euo pipefail
TREE=${1:-/usr/share}
RUNS=${2:-3}
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/amiscan}
OUT=target/bench/btrfs
mkdir -p "$OUT/m"
size_mb=$(( $(du -sm "$TREE" | cut -f1) * 2 + 512 ))
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
  times=()
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$OUT/$name.time" \
      "$BIN" scan --format json --no-progress "$OUT/$name.img" > "$OUT/$name.json" || true
    times+=("$(tail -1 "$OUT/$name.time")")
  done
  med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  all=$(printf '%s\n' "${times[@]}" | cut -d' ' -f1 | sort -n | tr '\n' ' ')
  facts=$(python3 -c "import json;t=json.load(open('$OUT/$name.json'))['targets'][0];v=t['volumes'][0];print(v['filesystem'], v['files_scanned'], 'files', len(t['findings']), 'findings, complete', t['complete'])")
  echo "$name: median wall ${med% *} s (runs: $all), peak RSS ${med#* } KiB; $facts"
done
