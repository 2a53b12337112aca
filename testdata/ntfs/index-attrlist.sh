#!/bin/bash
# An NTFS volume (512-byte clusters) holding a directory whose `$I30` `$INDEX_ALLOCATION` outgrew
# its MFT record, written by ntfs-3g: 3,000 files of 1 KiB created one after the other in /many
# grow its index a block at a time between their data, so its run list is long and moves into
# `$INDEX_ALLOCATION` extents in other records, which the base record's `$ATTRIBUTE_LIST` names
# (`ntfsinfo -F /many` shows each extent and its record). A freshly generated fake AWS key pair
# is in /many/01234.bin.
#
# Usage: index-attrlist.sh DIR. Writes DIR/vol.img, DIR/pair (the key pair), DIR/info.txt
# (`ntfsinfo -F /many`) and DIR/ls.txt (`ntfsls` of /many: its names, one a line).
set -euo pipefail
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/mount.sh"
cd "$1"
fake_aws_pair > pair
ntfs_new vol.img m 16M -c 512
mkdir m/many
python3 -c '
import os
pair = open("pair", "rb").read()
for i in range(3000):
    with open(f"m/many/{i:05}.bin", "wb") as f:
        f.write(pair if i == 1234 else os.urandom(1024))'
ntfs_umount m
trap - EXIT
ntfsinfo -F /many vol.img > info.txt 2>/dev/null
ntfsls -p /many vol.img > ls.txt
