#!/usr/bin/env python3
"""Remove the entry naming MFT record CHILD from the index of directory record DIR of an NTFS
volume, leaving CHILD's record in use: an orphan whose index entry is gone (what chkdsk would
reconnect to found.000). DIR's index must be small enough to be all in its $INDEX_ROOT
(resident, no $INDEX_ALLOCATION): a directory of a few entries as ntfs-3g writes it. The entry
is cut out of the index node, the node, the attribute and the record shrink by its length, and
the record is written back with its update sequence. Read back with `ntfsls` (not listed) and
`ntfsinfo -i CHILD` (in use).

Usage: unindex.py VOLUME DIR CHILD
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mftrec import fixed, geometry, unfixed  # noqa: E402

vol, parent, child = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])



with open(vol, "r+b") as f:
    sector, cluster, mft, size = geometry(f)
    at = mft + parent * size  # the first records of $MFT are contiguous on a new volume
    f.seek(at)
    rec = fixed(f.read(size), sector)
    assert rec[:4] == b"FILE"
    used = struct.unpack_from("<I", rec, 0x18)[0]
    a = struct.unpack_from("<H", rec, 0x14)[0]
    root = None
    while True:
        ty, length = struct.unpack_from("<II", rec, a)
        assert ty != 0xFFFFFFFF, "no $INDEX_ROOT"
        assert ty != 0xA0, "the index has an $INDEX_ALLOCATION: too big for this script"
        if ty == 0x90:
            root = a
            break
        a += length
    # Past $INDEX_ROOT: no $INDEX_ALLOCATION either.
    b = root + struct.unpack_from("<I", rec, root + 4)[0]
    while struct.unpack_from("<I", rec, b)[0] != 0xFFFFFFFF:
        assert struct.unpack_from("<I", rec, b)[0] != 0xA0, "an $INDEX_ALLOCATION"
        b += struct.unpack_from("<I", rec, b + 4)[0]
    value = root + struct.unpack_from("<H", rec, root + 0x14)[0]
    node = value + 0x10
    first, total, alloc = struct.unpack_from("<III", rec, node)
    e = node + first
    while True:
        ref, elen, klen, flags = struct.unpack_from("<QHHI", rec, e)
        assert not flags & 2, f"record {child} is not in the index"
        if ref & 0xFFFFFFFFFFFF == child:
            break
        e += elen
    # Cut the entry out: everything after it in the record moves up.
    rec[e:used - elen] = rec[e + elen:used]
    rec[used - elen:used] = bytes(elen)
    struct.pack_into("<II", rec, node + 4, total - elen, alloc - elen)
    struct.pack_into("<I", rec, root + 0x10, struct.unpack_from("<I", rec, root + 0x10)[0] - elen)
    struct.pack_into("<I", rec, root + 4, struct.unpack_from("<I", rec, root + 4)[0] - elen)
    struct.pack_into("<I", rec, 0x18, used - elen)
    f.seek(at)
    f.write(unfixed(rec, sector))
