#!/usr/bin/env bash
# amiscan against ripgrep on an installed system, the way a cloud image holds it: the Debian
# bookworm root of the installed-root test (mmdebstrap: openssh-server, sudo, cloud-init, python3,
# git, the cloud kernel; testdata/install-debian-root.sh) on its XFS and ext4 images. amiscan
# scans each image file (full catalog, every check); ripgrep searches the same filesystem
# loop-mounted read-only, binaries included, for eight secret patterns. Each is run once to warm
# the page cache, then timed once (RUNS=N: the median of N runs). A scan that is not complete
# (some file or directory not read) is marked: its time is not comparable.
#
#   [RUNS=1] benches/installed-root.sh
#
# Needs root, loop devices, mmdebstrap and the Debian archive (the root is installed once into
# target/bench/installed-root), rg (apt-get install ripgrep), bc, and the tools the script needs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rg >/dev/null || { echo "installed-root.sh: rg is missing" >&2; exit 1; }
command -v bc >/dev/null || { echo "installed-root.sh: bc is missing" >&2; exit 1; }
work=target/bench/installed-root-images
bash testdata/install-debian-root.sh target/bench/installed-root "$work"
cargo build --release -q --no-default-features
amiscan=target/release/amiscan

# Eight patterns a secret search by hand would use: AWS key ids and secrets, PEM and OpenSSH
# private keys, GitHub, GitLab, Slack, Google and Stripe tokens.
patterns=(
  -e '(AKIA|ASIA)[A-Z0-9]{16}'
  -e '(?i)aws_?secret_?access_?key\s*[:=]'
  -e '-----BEGIN [A-Z ]*PRIVATE KEY-----'
  -e 'gh[pousr]_[A-Za-z0-9]{36}'
  -e 'glpat-[A-Za-z0-9_-]{20}'
  -e 'xox[baprs]-[0-9]+-[0-9A-Za-z-]{20,}'
  -e 'AIza[0-9A-Za-z_-]{35}'
  -e 'sk_live_[0-9A-Za-z]{24,}'
)

m=$work/mnt-bench
mkdir -p "$m"
trap 'umount "$m" 2>/dev/null; rmdir "$m" 2>/dev/null; true' EXIT

timeit() { # command... -> seconds of one run
  local s e
  s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# CPU seconds (user + system) of one run: less disturbed than wall time on a loaded machine.
cpu() {
  local TIMEFORMAT='%3U %3S' out
  out=$( { time "$@" >/dev/null 2>&1 || true; } 2>&1 )
  echo "$out" | awk '{print $1 + $2}'
}
runs=${RUNS:-1}
run() { for _ in $(seq "$runs"); do timeit "$@"; done | median; }

printf 'installed Debian bookworm root, %s run(s), %s cores, load %s\n' "$runs" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %7s %5s %11s %11s %7s   %s\n' image files MiB amiscan ripgrep ratio 'CPU s: amiscan ripgrep'

for name in xfs ext4-4k ext4-1k; do
  img=$work/$name.img
  opts=loop,ro
  [ "$name" = xfs ] && opts=loop,ro,nouuid
  # (amiscan exits 1 when it finds something: the report is what matters here.)
  "$amiscan" scan --no-progress --format json --output "$work/$name.json" "$img" >/dev/null 2>&1 || true
  complete=$(python3 -c 'import json,sys; print("" if json.load(open(sys.argv[1]))["targets"][0]["complete"] else " (scan INCOMPLETE)")' "$work/$name.json")
  t_ami=$(run "$amiscan" scan --no-progress --format json "$img")
  c_ami=$(cpu "$amiscan" scan --no-progress --format json "$img")
  mount -o "$opts" "$img" "$m"
  rg -a -c --no-ignore --hidden --no-messages "${patterns[@]}" "$m" >/dev/null 2>&1 || true
  t_rg=$(run rg -a -c --no-ignore --hidden --no-messages "${patterns[@]}" "$m")
  c_rg=$(cpu rg -a -c --no-ignore --hidden --no-messages "${patterns[@]}" "$m")
  files=$(find "$m" -type f | wc -l)
  mib=$(( $(du -sb --apparent-size "$m" | cut -f1) >> 20 ))
  umount "$m"
  printf '%-8s %7s %5s %9.2f s %9.2f s %6.2fx   %14.2f %7.2f%s\n' "$name" "$files" "$mib" "$t_ami" "$t_rg" \
    "$(echo "$t_ami / $t_rg" | bc -l)" "$c_ami" "$c_rg" "$complete"
done
