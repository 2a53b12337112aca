#!/usr/bin/env bash
# journal-transaction.sh BASE NEW [JO_FLAGS]
#
# Turn BASE into an image whose journal holds, committed but not yet written home, every block
# in which NEW differs from BASE: the state of a filesystem snapshotted while mounted, right
# after the kernel committed a transaction. Uses debugfs's journal writer (jo/jw/jc), which
# also sets needs_recovery. JO_FLAGS go to `jo` (`-c` for a checksum-v3 journal).
# `e2fsck -fy BASE` afterwards replays the journal and yields NEW's content.
set -euo pipefail
base=$1 new=$2 flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bs=$(dumpe2fs -h "$base" 2>/dev/null | awk -F: '/^Block size/ {gsub(/ /, "", $2); print $2}')
python3 - "$base" "$new" "$bs" "$work" <<'PY'
import sys
base, new, bs, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
blocks, data = [], bytearray()
with open(base, "rb") as a, open(new, "rb") as b:
    n = 0
    while True:
        x, y = a.read(bs), b.read(bs)
        if not x and not y:
            break
        if x != y:
            blocks.append(n)
            data += y.ljust(bs, b"\0")
        n += 1
if not blocks:
    sys.exit("the images do not differ")
open(f"{work}/list", "w").write(",".join(map(str, blocks)))
open(f"{work}/data", "wb").write(data)
PY
printf 'jo %s\njw -b %s %s\njc\n' "$flags" "$(cat "$work/list")" "$work/data" | debugfs -w -f - "$base" >/dev/null
dumpe2fs -h "$base" 2>/dev/null | grep needs_recovery >/dev/null
