#!/usr/bin/env python3
"""Break the attribute list of an $MFT that needs one (a volume made by mft-attrlist.sh), as
hostile or damaged metadata would:

- `self`: the list's entry for the first $DATA extent past VCN 0 names record 0 itself (and the
  instance of record 0's own $DATA), a loop back to the record the list is in;
- `overlap`: the last $DATA extent starts one cluster earlier than the one before it ends (its
  lowest VCN lowered in the list entry and in the extension record's attribute header), so two
  extents claim the same VCN.

The list may be resident in record 0 or in clusters of its own (ntfs-3g writes it non-resident);
record fixups are kept valid. `ntfsinfo -v -i 0` shows the edited list.

Usage: mft-attrlist-break.py VOLUME self|overlap
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mftrec import fixed, geometry, unfixed  # noqa: E402

vol, mode = sys.argv[1], sys.argv[2]


def attributes(rec):
    """(offset, type) of each attribute of a fixed-up record."""
    off = struct.unpack_from("<H", rec, 0x14)[0]
    while off + 8 <= len(rec):
        ty, length = struct.unpack_from("<II", rec, off)
        if ty == 0xFFFFFFFF or length == 0:
            return
        yield off, ty
        off += length


def runs(rec, off):
    """(lcn, clusters) of the non-resident attribute at `off`."""
    pos = off + struct.unpack_from("<H", rec, off + 0x20)[0]
    lcn, out = 0, []
    while rec[pos]:
        lsize, osize = rec[pos] & 15, rec[pos] >> 4
        n = int.from_bytes(rec[pos + 1:pos + 1 + lsize], "little")
        lcn += int.from_bytes(rec[pos + 1 + lsize:pos + 1 + lsize + osize], "little", signed=True)
        out.append((lcn, n))
        pos += 1 + lsize + osize
    return out


with open(vol, "r+b") as f:
    sector, cluster, mft, size = geometry(f)

    def read_rec(n):
        f.seek(mft + n * size)
        return fixed(f.read(size), sector)

    def write_rec(n, rec):
        f.seek(mft + n * size)
        f.write(unfixed(rec, sector))

    rec0 = read_rec(0)
    al = next(off for off, ty in attributes(rec0) if ty == 0x20)
    if rec0[al + 8] == 0:
        vlen, voff = struct.unpack_from("<IH", rec0, al + 0x10)
        value = bytearray(rec0[al + voff:al + voff + vlen])

        def store(v):
            rec0[al + voff:al + voff + vlen] = v
            write_rec(0, rec0)
    else:
        vlen = struct.unpack_from("<Q", rec0, al + 0x30)[0]
        where = runs(rec0, al)
        raw = b""
        for lcn, n in where:
            f.seek(lcn * cluster)
            raw += f.read(n * cluster)
        value = bytearray(raw[:vlen])

        def store(v):
            data = bytes(v) + raw[vlen:]
            for lcn, n in where:
                f.seek(lcn * cluster)
                f.write(data[:n * cluster])
                data = data[n * cluster:]

    # The list's entries for $MFT's unnamed $DATA past VCN 0: (entry offset, VCN, record).
    extents, off = [], 0
    while off + 26 <= len(value):
        ty, length, name_len = struct.unpack_from("<IHB", value, off)
        if length == 0:
            break
        if ty == 0x80 and name_len == 0:
            vcn, ref = struct.unpack_from("<QQ", value, off + 8)
            if vcn > 0:
                extents.append((off, vcn, ref & 0xFFFFFFFFFFFF))
        off += length
    assert extents, "the attribute list names no $DATA extent past VCN 0"

    if mode == "self":
        entry = extents[0][0]
        data0 = next(off for off, ty in attributes(rec0) if ty == 0x80)
        seq0 = struct.unpack_from("<H", rec0, 0x10)[0]
        struct.pack_into("<QH", value, entry + 16, seq0 << 48, struct.unpack_from("<H", rec0, data0 + 0x0E)[0])
        store(value)
    elif mode == "overlap":
        entry, vcn, n = extents[-1]
        struct.pack_into("<Q", value, entry + 8, vcn - 1)
        store(value)
        ext = read_rec(n)
        data = next(off for off, ty in attributes(ext) if ty == 0x80)
        assert struct.unpack_from("<Q", ext, data + 0x10)[0] == vcn
        struct.pack_into("<Q", ext, data + 0x10, vcn - 1)
        write_rec(n, ext)
    else:
        sys.exit(f"unknown mode {mode}")
