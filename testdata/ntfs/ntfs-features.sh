#!/usr/bin/env bash
# Build an NTFS volume in DIR (mkntfs, files written through ntfs-3g) with the structures issue
# 15 names that the Windows disk of windows-disk.sh lacks: a directory of 10,000 entries (a
# deep $INDEX_ALLOCATION B+ tree), a file whose attributes overflow its MFT record (60 named
# streams: ntfs-3g moves them out and writes an $ATTRIBUTE_LIST), files with a DOS (8.3) name
# beside their long one, and a file compressed by WOF as CompactOS leaves it (the WOF reparse
# point, its data in the `WofCompressedData` stream), which ntfs-3g itself cannot read.
#
# Usage: ntfs-features.sh DIR
#   DIR/vol.img       the volume
#   DIR/truth.txt     sha256sum of every regular file and stream ntfs-3g reads (`path:stream`
#                     for streams; not the WOF file, which it cannot read)
#   DIR/attrlist.txt  ntfsinfo's view of the file with many streams (it has an $ATTRIBUTE_LIST)
set -euo pipefail
dir=$(realpath "$1")
cd "$dir"
rm -rf m vol.img; mkdir m
truncate -s 40M vol.img
mkntfs -Q -q -F vol.img >/dev/null 2>&1
source "$(dirname "$(realpath "$0")")/mount.sh"
ntfs_mount vol.img m
trap 'mountpoint -q m && umount m' EXIT

mkdir -p m/Windows/WinSxS/Manifests m/Users/alice/Documents m/Windows/System32
# 10,000 entries in one directory.
(cd m/Windows/WinSxS/Manifests && seq -f 'amd64_microsoft-windows-component-%05g.manifest' 1 10000 | xargs touch)
printf 'manifest 10000\r\n' > m/Windows/WinSxS/Manifests/amd64_microsoft-windows-component-10000.manifest
# A document with 60 alternate data streams of 200 bytes: its record overflows.
f=m/Users/alice/Documents/report.docx
head -c 5000 /dev/urandom > "$f"
for i in $(seq 1 60); do
  setfattr -n "user.s$i" -v "0x$(head -c 200 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" "$f"
done
# Long names with a DOS name each (the 8.3 alias Windows generates).
printf 'long one\r\n' > "m/Users/alice/Documents/Quarterly Report 2026.txt"
setfattr -h -n system.ntfs_dos_name -v 'QUARTE~1.TXT' "m/Users/alice/Documents/Quarterly Report 2026.txt"
mkdir "m/Users/alice/Documents/Project Files"
setfattr -h -n system.ntfs_dos_name -v 'PROJEC~1' "m/Users/alice/Documents/Project Files"
printf 'inside\r\n' > "m/Users/alice/Documents/Project Files/plan.txt"

(cd m && find . -type f -print0 | sort -z | xargs -0 sha256sum | sed 's#  \./#  /#') > truth.txt
# Streams (only the documents have any; getfattr on 10,000 manifests would take a minute).
(cd m && find ./Users -type f -print0 | sort -z | while IFS= read -r -d '' p; do
   getfattr --absolute-names -m '^user\.' "$p" 2>/dev/null | sed -n 's/^user\.//p' | while IFS= read -r name; do
     printf '%s  %s\n' "$(getfattr --absolute-names --only-values -n "user.$name" "$p" | sha256sum | cut -d' ' -f1)" "${p#.}:$name"
   done
 done) >> truth.txt

# A CompactOS file, written last and not in truth.txt: its unnamed $DATA, and the WOF reparse
# point (tag 0x80000017; WOF_EXTERNAL_INFO version 1, provider 2 = file; provider info version
# 1, algorithm 1 = LZX) saying the content is in `WofCompressedData`.
w=m/Windows/System32/notepad.exe
head -c 3000 /dev/urandom > "$w"
setfattr -n user.WofCompressedData -v "0x$(head -c 1500 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" "$w"
setfattr -n system.ntfs_reparse_data -v 0x170000801000000001000000020000000100000001000000 "$w"
ntfs_umount m
trap - EXIT
ntfsinfo -f -F /Users/alice/Documents/report.docx vol.img > attrlist.txt 2>&1
# The aliases are there: a DOS name beside the Win32 one.
for p in "/Users/alice/Documents/Quarterly Report 2026.txt" "/Users/alice/Documents/Project Files"; do
  ntfsinfo -f -F "$p" vol.img 2>/dev/null | grep 'Namespace:.*DOS' >/dev/null || { echo "$p has no DOS name" >&2; exit 1; }
done
