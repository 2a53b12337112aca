#!/usr/bin/env bash
# Side-by-side timing on a real distribution tree: amiscan (on the ext4 image of the tree) against
# ripgrep (on the extracted tree, with the catalog's keywords as patterns) and ripsecrets (a secret
# scanner from crates.io, on the extracted tree). Prints medians of RUNS runs and the ratios.
#
#   benches/compare.sh [TREE] [RUNS]
#
# TREE defaults to a Debian bookworm root made with debootstrap in target/bench/debian (needs
# root, debootstrap and network access to the Debian archive). Needs rg (apt-get install ripgrep),
# ripsecrets (cargo install ripsecrets), mke2fs, python3, bc and GNU time. Then (SKIP_BIG unset)
# the tree four times over in a sparse 8 GiB image: linear cost and peak memory.
# SKIP_RIPSECRETS=1 leaves out ripsecrets.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${2:-5}
work=target/bench
mkdir -p "$work"
tree=${1:-$work/debian}
if [ ! -e "$tree/.complete" ] && [ -z "${1:-}" ]; then
  rm -rf "$tree"
  debootstrap --variant=minbase --include=openssh-server,sudo,ssl-cert,python3,cron,curl \
    bookworm "$tree" http://deb.debian.org/debian >/dev/null
  touch "$tree/.complete"
fi
tools="rg mke2fs python3 bc"
[ -n "${SKIP_RIPSECRETS:-}" ] || tools="$tools ripsecrets"
for t in $tools; do
  command -v "$t" >/dev/null || { echo "compare.sh: $t is missing" >&2; exit 1; }
done
cargo build --release -q --no-default-features
amiscan=target/release/amiscan
img=$work/tree.img
bytes=$(du -sb --apparent-size "$tree" | cut -f1)
mke2fs -q -t ext4 -d "$tree" -F "$img" $(( bytes / 1048576 * 2 + 512 ))M
# The catalog's keywords, as fixed strings for ripgrep.
python3 - signatures/*.toml > "$work/keywords.txt" <<'PY'
import sys, tomllib
kw = set()
for f in sys.argv[1:]:
    with open(f, 'rb') as fh:
        for r in tomllib.load(fh).get('rule', []):
            kw.update(r.get('keywords', []))
print('\n'.join(sorted(kw)))
PY
nkw=$(wc -l < "$work/keywords.txt")

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timeit() { # command... -> seconds of one run
  local s e
  s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
cat "$img" > /dev/null; rg -q zzzz "$tree" || true # warm the page cache
run() { local name=$1; shift; for _ in $(seq "$runs"); do timeit "$@"; done | median; }
t_ami=$(run amiscan "$amiscan" scan --no-progress --format json "$img")
t_quick=$(run quick "$amiscan" scan --no-progress --format json --quick "$img")
t_rg=$(run rg rg -a -i -F -c --no-ignore --hidden --no-messages -f "$work/keywords.txt" "$tree")
# SKIP_RIPSECRETS=1: leave out ripsecrets (a minute or more per run).
if [ -z "${SKIP_RIPSECRETS:-}" ]; then
  t_rs=$(run ripsecrets ripsecrets --only-matching "$tree")
else
  t_rs=0
fi
# (amiscan exits 1 when it finds something: the report is what matters here.)
"$amiscan" scan --no-progress --format json --output "$work/report.json" "$img" || true
content=$(python3 -c 'import json,sys; print(sum(v["bytes_scanned"] for t in json.load(open(sys.argv[1]))["targets"] for v in t["volumes"]))' "$work/report.json")
printf 'tree: %s (%s MiB of files, %s MiB scanned by amiscan), %s keywords, %s runs, %s cores, load %s\n' \
  "$tree" $((bytes >> 20)) $((content >> 20)) "$nkw" "$runs" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8.3f s  %7.0f MB/s\n' "amiscan (image, full catalog)" "$t_ami" "$(echo "$content / $t_ami / 1000000" | bc -l)"
printf '%-34s %8.3f s  (%.1f%% of full)\n' "amiscan --quick (image)" "$t_quick" "$(echo "100 * $t_quick / $t_ami" | bc -l)"
printf '%-34s %8.3f s\n' "ripgrep (tree, catalog keywords)" "$t_rg"
printf 'amiscan / ripgrep = %.2fx\n' "$(echo "$t_ami / $t_rg" | bc -l)"
if [ -z "${SKIP_RIPSECRETS:-}" ]; then
  printf '%-34s %8.3f s\n' "ripsecrets (tree)" "$t_rs"
  printf 'ripsecrets / amiscan = %.2fx\n' "$(echo "$t_rs / $t_ami" | bc -l)"
fi

# Linear cost and memory: the same tree four times in a sparse 8 GiB image, against the first
# image. Peak RSS from /usr/bin/time (GNU time: apt-get install time).
if [ "${SKIP_BIG:-}" = "" ]; then
  big=$work/big-tree
  if [ ! -e "$big/.complete" ]; then
    rm -rf "$big"; mkdir -p "$big"
    for i in 1 2 3 4; do cp -a "$tree" "$big/c$i"; done
    touch "$big/.complete"
  fi
  mke2fs -q -t ext4 -d "$big" -F "$work/big.img" 8G
  cat "$work/big.img" > /dev/null
  t_big=$(run big "$amiscan" scan --no-progress --format json "$work/big.img")
  "$amiscan" scan --no-progress --format json --output "$work/big.json" "$work/big.img" || true
  content_big=$(python3 -c 'import json,sys; print(sum(v["bytes_scanned"] for t in json.load(open(sys.argv[1]))["targets"] for v in t["volumes"]))' "$work/big.json")
  rss() { /usr/bin/time -f %M "$amiscan" scan --no-progress --format json "$1" 2>&1 >/dev/null | tail -1; }
  printf '%-34s %8.3f s  %7.0f MB/s  peak RSS %s KiB\n' "amiscan (image)" "$t_ami" \
    "$(echo "$content / $t_ami / 1000000" | bc -l)" "$(rss "$img")"
  printf '%-34s %8.3f s  %7.0f MB/s  peak RSS %s KiB\n' "amiscan (4x tree, 8 GiB sparse)" "$t_big" \
    "$(echo "$content_big / $t_big / 1000000" | bc -l)" "$(rss "$work/big.img")"
  printf 'content 4x: %.2fx   time: %.2fx\n' "$(echo "$content_big / $content" | bc -l)" "$(echo "$t_big / $t_ami" | bc -l)"
fi
