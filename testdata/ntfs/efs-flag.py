#!/usr/bin/env python3
"""Mark a file of an NTFS volume as EFS-encrypted, as Windows records it: set
FILE_ATTRIBUTE_ENCRYPTED (0x4000) in the file attributes of its $STANDARD_INFORMATION (no Linux
tool writes EFS files; ntfs-3g refuses the flag). The record's update sequence is not touched:
the field is far from the sector ends it guards.

Usage: efs-flag.py VOLUME RECORD
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mftrec import geometry  # noqa: E402

vol, record = sys.argv[1], int(sys.argv[2])
with open(vol, "r+b") as f:
    sector, cluster, mft, size = geometry(f)
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
