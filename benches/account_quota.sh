#!/usr/bin/env bash
# The account quota shared by several processes (issue 17): N amiscan processes, each told only
# the account's quota (`--account-rps R`), scan the same four-volume AMI at once through the
# test server, which throttles GetSnapshotBlock above R per second across all snapshots and
# logs every second. Prints, for N = 1, 2 and 4: wall time, requests, the share throttled, and
# the accepted rate over the busy seconds as a share of the quota.
#
#   benches/account_quota.sh [QUOTA_RPS] [DATA_MIB_PER_VOLUME]
#
# QUOTA_PROCS="1 2 4" chooses the process counts; QUOTA_DETAIL=1 also prints the server's
# seconds (received/throttled) and each process's gate figures from its report.
#
# Needs target/debug/amiscan built with the aws feature (`cargo test --test it --no-run`) and
# target/debug/aws-test-server (`cargo build -p aws-test-server`); AMISCAN_BIN and SERVER_BIN
# point elsewhere (a release build). Run as root: the volumes are written through loop mounts.
set -euo pipefail
quota=${1:-200}
mib=${2:-200}
root=$(cd "$(dirname "$0")/.." && pwd)
amiscan=${AMISCAN_BIN:-$root/target/debug/amiscan}
server=${SERVER_BIN:-$root/target/debug/aws-test-server}
work=$(mktemp -d "${TMPDIR:-/tmp}/amiscan-quota.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

snaps=()
for i in 0 1 2 3; do
  truncate -s $((mib + 64))M "v$i.img"
  mkfs.ext4 -q -F "v$i.img"
  mkdir -p m
  mount -o loop "v$i.img" m
  mkdir -p m/srv
  for f in $(seq 1 $((mib / 8))); do head -c 8M /dev/urandom > "m/srv/f$f"; done
  umount m
  snaps+=("snap-0c0c0c0c0c0c0c0c$i=$work/v$i.img")
done

for n in ${QUOTA_PROCS:-1 2 4}; do
  mkfifo in
  "$server" "${snaps[@]}" --ami ami-0c0c0c0c0c0c0c0c0 --account-rps "$quota" --log log.txt \
    < in > url &
  spid=$!
  exec 3> in
  while [ ! -s url ]; do sleep 0.1; done
  start=$(date +%s.%N)
  pids=()
  for p in $(seq 1 "$n"); do
    AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 HOME="$work" \
      "$amiscan" scan --no-progress --format json --account-rps "$quota" \
      --endpoint-url "$(cat url)" ami-0c0c0c0c0c0c0c0c0 > "out$p.json" 2> "err$p.txt" &
    pids+=($!)
  done
  wait -n "${pids[@]}" || true
  first_end=$(date +%s.%N)
  for p in "${pids[@]}"; do wait "$p" || true; done
  end=$(date +%s.%N)
  exec 3>&-
  wait "$spid"
  rm -f in url
  for p in $(seq 1 "$n"); do
    python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["targets"][0]; sys.exit(0 if t["complete"] else 1)' \
      "out$p.json" || { echo "process $p of $n: scan incomplete" >&2; cat "err$p.txt" >&2; exit 1; }
  done
  python3 - "$n" "$quota" "$start" "$end" log.txt "$first_end" <<'EOF'
import sys
n, quota, start, end, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
first_end = float(sys.argv[6])
rows = []
for line in open(path):
    parts = line.split()
    if len(parts) >= 3 and parts[0].isdigit():
        rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
busy = [r for r in rows if r[1] > 0]
received = sum(r[1] for r in busy)
throttled = sum(r[2] for r in busy)
# Whole seconds only: the first and last busy seconds are partial.
inner = busy[1:-1] if len(busy) > 2 else busy
accepted = sum(r[1] - r[2] for r in inner)
rate = accepted / len(inner) if inner else 0
peak = max((r[1] - r[2] for r in busy), default=0)
print(f"{n} process(es), quota {quota}/s: wall {end - start:.1f} s, {received} requests, "
      f"{throttled} throttled ({100 * throttled / max(received, 1):.2f}%), accepted "
      f"{rate:.0f}/s over {len(inner)} whole busy seconds ({100 * rate / quota:.0f}% of the quota), "
      f"busiest second {peak}")
# Steady state: the whole seconds from the third after the first busy one (the slow start and
# its cut are over) to the last that ended before the first process did (all N were asking).
# The server's second 0 began at most a tenth of a second before `start`.
if busy:
    lo, hi = busy[0][0] + 3, int(first_end - start)
    steady = [r for r in busy if lo <= r[0] < hi]
    if steady:
        got = sum(r[1] for r in steady)
        thr = sum(r[2] for r in steady)
        acc = (got - thr) / len(steady)
        print(f"  steady state, seconds {lo}-{hi - 1}: accepted {acc:.0f}/s ({100 * acc / quota:.0f}% "
              f"of the quota), {thr} of {got} throttled ({100 * thr / max(got, 1):.2f}%)")
    else:
        print("  steady state: none (the first process ended within three seconds)")
EOF
  if [ -n "${QUOTA_DETAIL:-}" ]; then
    awk 'NF >= 3 && $1 ~ /^[0-9]+$/ && $2 > 0 { printf "%s:%s/%s ", $1, $2, $3 } END { print "" }' log.txt
    for p in $(seq 1 "$n"); do
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], [ {k: a[k] for k in ("requests","throttles","cuts","current_rps","achieved_rps")} for a in r.get("accounts", r["targets"][0].get("accounts", [])) ])' "out$p.json" "process $p:" || true
    done
  fi
  rm -f log.txt
done
