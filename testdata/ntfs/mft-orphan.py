#!/usr/bin/env python3
"""Make a file of an NTFS volume an orphan: an MFT record in use that no directory index names,
as a crash between writing a file's record and its index entry leaves it (what chkdsk would
reconnect to found.000). The file must have been deleted through ntfs-3g first (`rm`: its index
entry is removed, its record keeps its FILE header, $FILE_NAME and resident $DATA, marked free);
this marks the record in use again, in its header (flags, 0x16) and in $MFT's own $BITMAP
(attribute 0xB0 of record 0, resident or not). No Linux tool does it (`ntfsfix` does not); read
back with `ntfsinfo -i RECORD` (IN_USE, its name), while `ntfsls` of its directory does not list
it.

Usage: mft-orphan.py VOLUME RECORD
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mftrec import fixed, geometry, unfixed  # noqa: E402

vol, record = sys.argv[1], int(sys.argv[2])



with open(vol, "r+b") as f:
    sector, cluster, mft, size = geometry(f)

    # The record: in use again. The first records of $MFT are contiguous on a new volume.
    at = mft + record * size
    f.seek(at)
    rec = fixed(f.read(size), sector)
    assert rec[:4] == b"FILE", f"record {record} at {at} is not a FILE record"
    flags = struct.unpack_from("<H", rec, 0x16)[0]
    assert not flags & 1, f"record {record} is in use: delete the file first"
    struct.pack_into("<H", rec, 0x16, flags | 1)
    f.seek(at)
    f.write(unfixed(rec, sector))

    # $MFT's $BITMAP: its bit set.
    f.seek(mft)
    zero = fixed(f.read(size), sector)
    a = struct.unpack_from("<H", zero, 0x14)[0]
    while True:
        ty, length = struct.unpack_from("<II", zero, a)
        assert ty != 0xFFFFFFFF, "$MFT has no $BITMAP"
        if ty == 0xB0:
            break
        a += length
    byte, bit = record // 8, record % 8
    if zero[a + 8] == 0:  # resident
        content = a + struct.unpack_from("<H", zero, a + 0x14)[0]
        zero[content + byte] |= 1 << bit
        f.seek(mft)
        f.write(unfixed(zero, sector))
    else:  # the first run of the run list holds the first bytes
        runs = a + struct.unpack_from("<H", zero, a + 0x20)[0]
        header = zero[runs]
        nlen, noff = header & 0x0F, header >> 4
        lcn = int.from_bytes(zero[runs + 1 + nlen:runs + 1 + nlen + noff], "little", signed=True)
        count = int.from_bytes(zero[runs + 1:runs + 1 + nlen], "little")
        assert byte < count * cluster, "the bit is past the first run"
        f.seek(lcn * cluster + byte)
        b = f.read(1)[0]
        f.seek(lcn * cluster + byte)
        f.write(bytes([b | (1 << bit)]))
