#!/bin/bash
# An NTFS volume whose $MFT needs an attribute list, written by ntfs-3g: its $DATA run list no
# longer fits in record 0, so ntfs-3g moves the tail into $DATA extents in other records
# (15, 17: `ntfsinfo -i 0` shows the $ATTRIBUTE_LIST and each extent). A 32 MiB volume of
# 512-byte clusters is filled with 3,000 4 KiB files (in `a/`) and one that takes the rest (the
# MFT zone too), every other 4 KiB file is deleted, and small files (40 per directory) then
# make the MFT grow into the holes until the volume is full (about 6,100 of them; ~15 s with
# the oracle's read). `a/` is removed at the end (see there).
#
# Usage: mft-attrlist.sh DIR. Writes DIR/vol.img, DIR/mft.txt (`ntfsinfo -v -i 0`) and
# DIR/truth.txt (SHA-256 and path of every file, read through a fresh read-only ntfs-3g mount
# of the finished image).
set -euo pipefail
cd "$1"
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/mount.sh"
rm -f vol.img
truncate -s 32M vol.img
mkntfs -Q -q -F -c 512 vol.img >/dev/null 2>&1
mkdir -p m
ntfs_mount vol.img m
trap 'mountpoint -q m && umount m' EXIT
mkdir m/a
for i in $(seq -w 1 3000); do head -c 4096 /dev/urandom > "m/a/$i.bin"; done
dd if=/dev/zero of=m/fill bs=1M 2>/dev/null || true
for i in $(seq -w 1 2 3000); do rm "m/a/$i.bin"; done
mkdir m/small
for i in $(seq 0 19999); do
  g="m/small/g$((i / 40))"
  if [ $((i % 40)) = 0 ]; then mkdir "$g" 2>/dev/null || break; fi
  printf 'small file %s\r\n' "$i" 2>/dev/null > "$g/s$i.txt" || break
done
# `a`'s index grew hole by hole too, into an attribute list of its own (which the crate does
# not read: a different structure from the one this volume is for); small directories only.
rm -r m/a
ntfs_umount m
ntfsinfo -v -i 0 vol.img 2>/dev/null > mft.txt
# The oracle: what ntfs-3g reads from the image as it now is on disk.
NTFS3G_PID=
ntfs-3g -o ro,no_detach "$(realpath vol.img)" m >/dev/null 2>&1 &
NTFS3G_PID=$!
for _ in $(seq 400); do mountpoint -q m && break; sleep 0.05; done
(cd m && find . -type f -print0 | sort -z | xargs -0 sha256sum | sed 's#  \./#  /#') > truth.txt
ntfs_umount m
trap - EXIT
