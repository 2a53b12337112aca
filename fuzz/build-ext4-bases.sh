#!/usr/bin/env bash
# build-ext4-bases.sh OUTDIR: the base images of the `ext4` fuzz target, and OUTDIR/list (one
# path a line). Small images of 1 KiB blocks, so the fuzzer's patches land on metadata:
#   ext4.img         extents (a fragmented file with an index level), an htree directory,
#                    short and long symlinks, nested directories, a sparse file;
#   ext4-inline.img  the same with inline_data (small files and directories in the inode);
#   ext2.img         the classic block map (single, double indirect blocks, holes);
#   ext4-jrnl.img    ext4.img with a committed transaction left in its journal
#                    (needs_recovery: testdata/journal-transaction.sh), and
#   ext4-jrnl-c.img  the same with a checksum-v3 journal and a revoke record.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin" LC_ALL=C TZ=UTC
export E2FSPROGS_FAKE_TIME=1704067200
out=$(mkdir -p "$1" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
export MKE2FS_CONFIG=$here/testdata/mke2fs.conf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t=$work/tree
mkdir -p "$t/etc" "$t/dir/sub/deeper" "$t/many" "$t/var"
echo root:x:0:0 > "$t/etc/passwd"
echo hi > "$t/dir/sub/deeper/f"
for i in $(seq 1 120); do echo "$i" > "$t/many/entry-with-a-long-name-$i"; done
# A fragmented file: 24 one-block pieces with holes between them (one extent each).
python3 - "$t/var/frag" "$t/var/sparse" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(24):
        f.seek(i * 3 * 1024)
        f.write(b"piece %d\n" % i)
with open(sys.argv[2], "wb") as f:
    f.write(b"head")
    f.seek(300 * 1024)
    f.write(b"tail")
PY
ln -s ../etc/passwd "$t/var/short-link"
ln -s "/opt/$(printf 'segment/%.0s' $(seq 1 20))target" "$t/var/long-link"
# `e2fsck -D` indexes the directories mke2fs -d leaves linear (htree).
mk() {
    local img=${*: -2:1}
    rm -f "$img"
    mke2fs -q -b 1024 -N 256 -d "$t" -F "$@" >/dev/null 2>&1
    e2fsck -fyD "$img" >/dev/null 2>&1 || [[ $? -eq 1 ]]
}
# Without metadata checksums, so patched metadata reaches the reader's own bounds; one base
# keeps them, for the checksum paths.
mk -t ext4 -J size=1 -O ^metadata_csum "$out/ext4.img" 3M
mk -t ext4 -J size=1 "$out/ext4-csum.img" 3M
mk -t ext4 -J size=1 -I 256 -O inline_data,^metadata_csum "$out/ext4-inline.img" 3M
mk -t ext2 "$out/ext2.img" 2M
# Journals needing recovery: the changes debugfs makes to a copy, committed into the base's log.
printf 'key material\n' > "$work/key"
for v in jrnl jrnl-c; do
    cp "$out/ext4.img" "$out/ext4-$v.img"
    cp "$out/ext4.img" "$work/new.img"
    debugfs -w -f - "$work/new.img" >/dev/null 2>&1 <<CMDS
mkdir /root
write $work/key /root/key
rm /etc/passwd
rm /many/entry-with-a-long-name-7
mkdir /many/newdir
CMDS
    flags=""
    [[ $v == jrnl-c ]] && flags=-c
    bash "$here/testdata/journal-transaction.sh" "$out/ext4-$v.img" "$work/new.img" "$flags" 2>/dev/null
done
# A revoke record in its own transaction (the first data block of /dir/sub/deeper/f).
blk=$(debugfs -R 'bmap /dir/sub/deeper/f 0' "$out/ext4-jrnl-c.img" 2>/dev/null | tail -n1)
printf 'jo -c\njw -r %s\njc\n' "$blk" | debugfs -w -f - "$out/ext4-jrnl-c.img" >/dev/null 2>&1
ls "$out"/*.img > "$out/list"
