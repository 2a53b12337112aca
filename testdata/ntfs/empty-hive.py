#!/usr/bin/env python3
"""Write an empty registry hive (regf 1.5: a base block, one hive bin holding the root key and
its security cell) to argv[1]. hivex has no command that creates a hive; this is the smallest
file `hivexsh -w` opens and fills, as Windows' own empty hives start out. The keys and values
of the test hives are then written by hivexsh."""
import struct
import sys


def cell(body):
    size = (len(body) + 4 + 7) // 8 * 8
    return struct.pack("<i", -size) + body + b"\0" * (size - 4 - len(body))


ROOT = 0x20  # first cell, after the hive bin header
name = b"ROOT"
nk_len = len(cell(b"\0" * (0x4C + len(name))))
SK = ROOT + nk_len
nk = struct.pack(
    "<2sHQIIIIIIIIIIIIIIIHH",
    b"nk", 0x2C, 0, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0, 0xFFFFFFFF, SK, 0xFFFFFFFF,
    0, 0, 0, 0, 0, len(name), 0,
) + name
# A self-relative security descriptor with no owner, group or ACLs.
sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)
sk = struct.pack("<2sHIIII", b"sk", 0, SK, SK, 1, len(sd)) + sd
cells = cell(nk) + cell(sk)
free = 0x1000 - 0x20 - len(cells)
hbin = struct.pack("<4sII8sQI", b"hbin", 0, 0x1000, b"\0" * 8, 0, 0) + cells + struct.pack("<i", free)
hbin += b"\0" * (0x1000 - len(hbin))
base = bytearray(0x1000)
struct.pack_into("<4sIIQIIIIII", base, 0, b"regf", 1, 1, 0, 1, 5, 0, 1, ROOT, 0x1000)
struct.pack_into("<I", base, 0x2C, 1)
check = 0
for i in range(0, 0x1FC, 4):
    check ^= struct.unpack_from("<I", base, i)[0]
struct.pack_into("<I", base, 0x1FC, check)
with open(sys.argv[1], "wb") as f:
    f.write(bytes(base) + hbin)
