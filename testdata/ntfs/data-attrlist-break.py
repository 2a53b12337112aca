#!/usr/bin/env python3
"""Break the non-resident $ATTRIBUTE_LIST that data-attrlist.sh's file got, in place.

Usage: data-attrlist-break.py IMG BASE MODE. BASE is the file's MFT record; the list is found
by its first entry ($STANDARD_INFORMATION in BASE), which must occur once in the image. MODE:
`vcn` moves the second $DATA extent's lowest VCN one cluster on (a gap), `foreign` points it at
record 5 (the root directory: not an extension of the file), `repeat` makes the first $DATA
entry a copy of the second (the same VCNs twice, none from 0).
"""
import struct
import sys

img, base, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(img, "rb") as f:
    b = bytearray(f.read())
head = struct.pack("<IHBBQ", 0x10, 0x20, 0, 0x1A, 0) + struct.pack("<Q", base)[:6]
at = b.find(head)
assert at >= 0 and b.find(head, at + 1) < 0, "the attribute list is not found once"
data = []
o = at
while True:
    ty, ln = struct.unpack_from("<IH", b, o)
    if ty in (0, 0xFFFFFFFF) or ln < 26:
        break
    if ty == 0x80:
        data.append(o)
    o += ln
assert len(data) >= 2, f"{len(data)} $DATA entries"
second = data[1]
if mode == "vcn":
    (vcn,) = struct.unpack_from("<Q", b, second + 8)
    struct.pack_into("<Q", b, second + 8, vcn + 1)
elif mode == "foreign":
    struct.pack_into("<Q", b, second + 16, 5 | (5 << 48))
elif mode == "repeat":
    b[data[0] : data[0] + 32] = b[second : second + 32]
else:
    sys.exit(f"unknown mode {mode}")
with open(img, "r+b") as f:
    f.seek(0)
    f.write(b)
