#!/usr/bin/env python3
"""Mark a file of an NTFS volume as EFS-encrypted, as Windows records it: set
FILE_ATTRIBUTE_ENCRYPTED (0x4000) in the file attributes of its $STANDARD_INFORMATION (no Linux
tool writes EFS files; ntfs-3g refuses the flag). The record's update sequence is not touched:
the field is far from the sector ends it guards.

Usage: efs-flag.py VOLUME RECORD
"""
import struct
import sys

vol, record = sys.argv[1], int(sys.argv[2])
with open(vol, "r+b") as f:
    boot = f.read(512)
    sector = struct.unpack_from("<H", boot, 0x0B)[0]
    cluster = sector * boot[0x0D]
    mft = struct.unpack_from("<Q", boot, 0x30)[0] * cluster
    size = struct.unpack_from("<b", boot, 0x40)[0]
    size = size * cluster if size > 0 else 1 << -size
    at = mft + record * size  # the first records of $MFT are contiguous on a new volume
    f.seek(at)
    rec = bytearray(f.read(size))
    assert rec[:4] == b"FILE", f"record {record} at {at} is not a FILE record"
    a = struct.unpack_from("<H", rec, 0x14)[0]
    while struct.unpack_from("<I", rec, a)[0] != 0x10:
        assert struct.unpack_from("<I", rec, a)[0] != 0xFFFFFFFF, "no $STANDARD_INFORMATION"
        a += struct.unpack_from("<I", rec, a + 4)[0]
    content = a + struct.unpack_from("<H", rec, a + 0x14)[0]
    flags = struct.unpack_from("<I", rec, content + 0x20)[0]
    struct.pack_into("<I", rec, content + 0x20, flags | 0x4000)
    f.seek(at)
    f.write(rec)
