"""MFT records of an NTFS volume for the fixture scripts that edit them (efs-flag.py,
mft-orphan.py, unindex.py): where they are, and their update sequence."""
import struct


def geometry(f):
    """(bytes per sector, bytes per cluster, byte offset of $MFT, bytes per record) of the
    volume open as `f`, from its boot sector."""
    f.seek(0)
    boot = f.read(512)
    sector = struct.unpack_from("<H", boot, 0x0B)[0]
    cluster = sector * boot[0x0D]
    mft = struct.unpack_from("<Q", boot, 0x30)[0] * cluster
    size = struct.unpack_from("<b", boot, 0x40)[0]
    size = size * cluster if size > 0 else 1 << -size
    return sector, cluster, mft, size


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
