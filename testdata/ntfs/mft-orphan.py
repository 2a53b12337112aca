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
import struct
import sys

vol, record = sys.argv[1], int(sys.argv[2])


def fixed(rec, sector):
    """The record with its update sequence applied (the sector ends restored)."""
    rec = bytearray(rec)
    usa, n = struct.unpack_from("<HH", rec, 4)
    usn = rec[usa:usa + 2]
    for i in range(1, n):
        end = i * sector
        assert rec[end - 2:end] == usn, "torn record"
        rec[end - 2:end] = rec[usa + 2 * i:usa + 2 * i + 2]
    return rec


def unfixed(rec, sector):
    """The record as stored: the sector ends saved in the update sequence array."""
    rec = bytearray(rec)
    usa, n = struct.unpack_from("<HH", rec, 4)
    usn = rec[usa:usa + 2]
    for i in range(1, n):
        end = i * sector
        rec[usa + 2 * i:usa + 2 * i + 2] = rec[end - 2:end]
        rec[end - 2:end] = usn
    return rec


with open(vol, "r+b") as f:
    boot = f.read(512)
    sector = struct.unpack_from("<H", boot, 0x0B)[0]
    cluster = sector * boot[0x0D]
    mft = struct.unpack_from("<Q", boot, 0x30)[0] * cluster
    size = struct.unpack_from("<b", boot, 0x40)[0]
    size = size * cluster if size > 0 else 1 << -size

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
