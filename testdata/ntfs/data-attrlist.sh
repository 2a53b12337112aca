#!/bin/bash
# An NTFS volume (512-byte clusters) holding a file whose $DATA run list outgrew its MFT record,
# written by ntfs-3g: the tail of the run list moved into $DATA extents in other records, which
# the base record's $ATTRIBUTE_LIST names (`ntfsinfo -F PATH` shows each extent and its record).
# A freshly generated fake AWS key pair is at the end of the file.
#
# Usage: data-attrlist.sh DIR MODE. MODE `plain`: 6,000 files of 1 KiB, the rest of the volume
# filled, every other file deleted, then /big/fragmented.dat (1 MB) written into the 1 KiB holes
# (about 1,000 runs), and the small files removed. MODE `compressed`: /packed/fragmented.log
# written into a directory with the compressed attribute (LZNT1, 16-cluster units: text units
# compressed, every third unit random, stored), a compression unit at a time with a cluster of
# another file after each, so no unit follows the one before it (about 500 runs). Writes
# DIR/vol.img, DIR/pair (the key pair), DIR/info.txt (`ntfsinfo -F` of the file) and
# DIR/truth.txt (`ntfscat`'s SHA-256 of it and its path).
set -euo pipefail
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/mount.sh"
cd "$1"
mode="$2"
fake_aws_pair > pair
ntfs_new vol.img m 16M -c 512
if [ "$mode" = plain ]; then
  path=/big/fragmented.dat
  mkdir m/small m/big
  python3 -c '
import os
for i in range(6000):
    with open(f"m/small/{i:05}.bin", "wb") as f:
        f.write(os.urandom(1024))'
  dd if=/dev/zero of=m/fill bs=64k 2>/dev/null || true
  python3 -c '
import os
for i in range(0, 6000, 2):
    os.remove(f"m/small/{i:05}.bin")
with open("m/big/fragmented.dat", "wb") as f:
    f.write(os.urandom(1000000) + b"\n" + open("pair", "rb").read())'
  # `small`'s index grew hole by hole too, into an attribute list of its own (directories
  # spread so are read by the crate, which stops at their first extent): removed.
  rm -r m/small
else
  path=/packed/fragmented.log
  mkdir m/packed
  setfattr -h -v 0x00000800 -n system.ntfs_attrib_be m/packed
  python3 -c '
import os
c = open("m/packed/fragmented.log", "wb", buffering=0)
g = open("m/filler", "wb", buffering=0)
for i in range(300):
    if i % 3 == 2:
        c.write(os.urandom(8192))
    else:
        line = b"log line %d of a compressible file\r\n" % i
        c.write((line * (8192 // len(line) + 1))[:8192])
    g.write(os.urandom(512))
c.write(b"\n" + open("pair", "rb").read())'
  # It really is compressed (FILE_ATTRIBUTE_COMPRESSED, 0x800).
  getfattr -h -e hex -n system.ntfs_attrib_be "m$path" | grep '=0x0*8..$' >/dev/null \
    || { echo "$path is not compressed" >&2; exit 1; }
fi
ntfs_umount m
trap - EXIT
ntfsinfo -F "$path" vol.img > info.txt 2>/dev/null
printf '%s  %s\n' "$(ntfscat vol.img "$path" | sha256sum | cut -d' ' -f1)" "$path" > truth.txt
