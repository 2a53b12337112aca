#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 120). Needs cargo-fuzz (`cargo install
# cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 lets it pass its -Z flags.
# Seeds: the first MiB of each test image (partitions), small LVM metadata texts (lvm), and a
# base XFS image from mkfs.xfs (xfs: the input patches its metadata sectors).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-120}
export RUSTC_BOOTSTRAP=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p corpus/partitions corpus/lvm corpus/xfs
bash ../testdata/build-images.sh "$work/img" >/dev/null
for f in "$work"/img/*.img; do head -c 1048576 "$f" > "corpus/partitions/$(basename "$f")"; done
printf 'vg0 {\nextent_size = 8\nphysical_volumes { pv0 { id = "0000AAAABBBBCCCCDDDDEEEEFFFF0001" pe_start = 2048 } }\nlogical_volumes { root { segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } } }\n}\n' > corpus/lvm/seed
mkdir -p "$work/tree/a/b" && echo hi > "$work/tree/a/b/f" && ln -s /etc/x "$work/tree/l"
for i in $(seq 1 40); do echo "$i" > "$work/tree/a/f$i"; done
python3 ../testdata/mkfs-xfs-tree.py "$work/tree" "$work/xfs.img" 16m -d agcount=1 -m crc=0 >/dev/null 2>&1
export AMISCAN_FUZZ_XFS_BASE=$work/xfs.img
echo seed > corpus/xfs/seed
status=0
for t in ${TARGETS:-partitions lvm xfs}; do
  echo "== $t: ${secs}s"
  if ! cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      >"$work/$t.log" 2>&1; then
    status=1
  fi
  grep -E '^(#[0-9]+.*(DONE|pulse)|Done|==.*ERROR|SUMMARY|artifact|.*panicked)' "$work/$t.log" | tail -4
done
exit $status
