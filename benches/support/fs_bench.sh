# shellcheck shell=bash
# Sourced by the benches that write one tree onto several filesystems and scan each image
# (benches/btrfs_vs_ext4.sh, benches/ntfs_vs_ext4.sh), as `source .../fs_bench.sh NAME "$@"`:
# TREE ($1 of the bench, default /usr/share) and RUNS ($2, default 3); the release binary BIN
# (BIN from the environment for another build); the work directory OUT=target/bench/NAME with
# the mount point OUT/m; size_mb, twice the tree plus 512 MiB; and `scan_median IMAGE`.
bench_name=$1
shift
TREE=${1:-/usr/share}
RUNS=${2:-3}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN=${BIN:-target/release/amiscan}
OUT=target/bench/$bench_name
mkdir -p "$OUT/m"
size_mb=$(( $(du -sm "$TREE" | cut -f1) * 2 + 512 ))

# Scan OUT/IMAGE.img RUNS times: the median wall time and peak RSS, every run's wall time, and
# the filesystem, files scanned, findings and completeness of the last scan.
scan_median() { # IMAGE
  local name=$1 times=() med all facts
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$OUT/$name.time" \
      "$BIN" scan --format json --no-progress "$OUT/$name.img" > "$OUT/$name.json" || true
    times+=("$(tail -1 "$OUT/$name.time")")
  done
  med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  all=$(printf '%s\n' "${times[@]}" | cut -d' ' -f1 | sort -n | tr '\n' ' ')
  facts=$(python3 -c "import json;t=json.load(open('$OUT/$name.json'))['targets'][0];v=t['volumes'][0];print(v['filesystem'], v['files_scanned'], 'files', len(t['findings']), 'findings, complete', t['complete'])")
  echo "$name: median wall ${med% *} s (runs: $all), peak RSS ${med#* } KiB; $facts"
}
