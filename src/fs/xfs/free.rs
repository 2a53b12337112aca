//! XFS free space and log, for `--unallocated`: each AG's by-block free-space B+tree
//! (`ABTB`/`AB3B`, rooted in the AGF) lists its free extents; the internal log is
//! `sb_logstart`/`sb_logblocks`.

use super::superblock::Superblock;
use super::{be16, be32, corrupt};
use crate::fs::ext4_free::{Region, RegionKind};
use crate::fs::{At, FsError};
use crate::source::Source;

const AGF_MAGIC: u32 = 0x5841_4746; // "XAGF"
const ABTB_MAGIC: u32 = 0x4142_5442; // v4 by-block btree
const AB3B_MAGIC: u32 = 0x4142_3342; // v5 by-block btree
const AGFL_MAGIC: u32 = 0x5841_464c; // "XAFL"
/// Deepest free-space btree followed (real ones have 1-3 levels).
const MAX_LEVELS: u32 = 10;

fn read(src: &dyn Source, offset: u64, len: usize, what: &str) -> Result<Vec<u8>, FsError> {
    let mut buf = vec![0u8; len];
    src.read_at(offset, &mut buf).map_err(|e| FsError::Io {
        context: format!("xfs {what}"),
        message: e.to_string(),
        at: At {
            offset: Some(offset),
            ..At::default()
        },
    })?;
    Ok(buf)
}

/// Free extents of every AG and the internal log, as byte ranges of the volume.
pub fn free_regions(src: &dyn Source) -> Result<Vec<Region>, FsError> {
    let sb = Superblock::read(src)?;
    let head = read(src, 0, 512, "superblock")?;
    let sectsize = u64::from(be16(&head, 102).unwrap_or(512));
    let bs = u64::from(sb.blocksize);
    let agbytes = u64::from(sb.agblocks) * bs;
    let mut out: Vec<Region> = Vec::new();
    for agno in 0..u64::from(sb.agcount) {
        let ctx = || format!("xfs AG {agno} free space");
        let agf = read(src, agno * agbytes + sectsize, 512, "AGF")?;
        if be32(&agf, 0) != Some(AGF_MAGIC) {
            return Err(corrupt(ctx(), "bad AGF magic"));
        }
        let root = be32(&agf, 16).unwrap_or(0);
        let levels = be32(&agf, 28).unwrap_or(0);
        if levels == 0 || levels > MAX_LEVELS || root >= sb.agblocks {
            return Err(corrupt(ctx(), "implausible by-block btree root"));
        }
        let hdr: usize = if sb.crc() { 56 } else { 16 };
        let want = if sb.crc() { AB3B_MAGIC } else { ABTB_MAGIC };
        let blk = |agbno: u32| -> Result<Vec<u8>, FsError> {
            if agbno >= sb.agblocks {
                return Err(corrupt(
                    ctx(),
                    format!("btree block {agbno} outside the AG"),
                ));
            }
            let b = read(
                src,
                agno * agbytes + u64::from(agbno) * bs,
                usize::try_from(bs).unwrap_or(0),
                "free-space btree block",
            )?;
            if be32(&b, 0) != Some(want) {
                return Err(corrupt(ctx(), format!("bad btree magic in block {agbno}")));
            }
            Ok(b)
        };
        // The AG free list: free blocks held back for btree growth.
        let (flfirst, fllast, flcount) = (
            be32(&agf, 40).unwrap_or(0),
            be32(&agf, 44).unwrap_or(0),
            be32(&agf, 48).unwrap_or(0),
        );
        if flcount > 0 {
            let agfl = read(
                src,
                agno * agbytes + 3 * sectsize,
                usize::try_from(sectsize).unwrap_or(512),
                "AGFL",
            )?;
            let fhdr: usize = if sb.crc() { 36 } else { 0 };
            if sb.crc() && be32(&agfl, 0) != Some(AGFL_MAGIC) {
                return Err(corrupt(ctx(), "bad AGFL magic"));
            }
            let slots = u32::try_from((agfl.len() - fhdr) / 4).unwrap_or(0);
            if flfirst >= slots || fllast >= slots || flcount > slots {
                return Err(corrupt(ctx(), "free list indexes outside the AGFL"));
            }
            for k in 0..flcount {
                let slot = (flfirst + k) % slots;
                let b = be32(&agfl, fhdr + slot as usize * 4).unwrap_or(u32::MAX);
                if b >= sb.agblocks {
                    return Err(corrupt(ctx(), "free list block outside the AG"));
                }
                out.push(Region {
                    offset: agno * agbytes + u64::from(b) * bs,
                    len: bs,
                    kind: RegionKind::Unallocated,
                });
            }
        }
        // Down the leftmost path to the first leaf.
        let mut node = blk(root)?;
        for _ in 1..levels {
            let maxrecs = (usize::try_from(bs).unwrap_or(0) - hdr) / 12;
            let ptr = be32(&node, hdr + maxrecs * 8).unwrap_or(u32::MAX);
            node = blk(ptr)?;
        }
        // Along the leaves; each visited once at most (an AG has fewer blocks than agblocks).
        let mut visited = 0u32;
        loop {
            if be16(&node, 4) != Some(0) {
                return Err(corrupt(ctx(), "leaf expected at level 0"));
            }
            let recs = usize::from(be16(&node, 6).unwrap_or(0));
            for i in 0..recs {
                let (Some(start), Some(count)) =
                    (be32(&node, hdr + i * 8), be32(&node, hdr + i * 8 + 4))
                else {
                    return Err(corrupt(ctx(), "free-space record past the block"));
                };
                if u64::from(start) + u64::from(count) > u64::from(sb.agblocks) {
                    return Err(corrupt(ctx(), "free extent outside the AG"));
                }
                let offset = agno * agbytes + u64::from(start) * bs;
                let len = u64::from(count) * bs;
                match out.last_mut() {
                    Some(l) if l.offset + l.len == offset => l.len += len,
                    _ => out.push(Region {
                        offset,
                        len,
                        kind: RegionKind::Unallocated,
                    }),
                }
            }
            let right = be32(&node, 12).unwrap_or(u32::MAX);
            visited += 1;
            if right == u32::MAX {
                break;
            }
            if visited >= sb.agblocks {
                return Err(corrupt(ctx(), "free-space btree leaves loop"));
            }
            node = blk(right)?;
        }
    }
    out.sort_by_key(|r| r.offset);
    out.dedup_by(|b, a| {
        // Merge b into a when adjacent (records do not overlap in a sane filesystem).
        if a.offset + a.len == b.offset {
            a.len += b.len;
            true
        } else {
            false
        }
    });
    if sb.logstart != 0 {
        let offset = sb
            .fsb_offset(sb.logstart)
            .ok_or_else(|| corrupt("xfs log", "log start outside the filesystem"))?;
        out.push(Region {
            offset,
            len: u64::from(sb.logblocks) * bs,
            kind: RegionKind::Journal,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::tests::Mem;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(free_regions(&Mem(vec![0u8; 65536])).is_err());
        let mut v = crate::fs::xfs::superblock::tests::v5_sb();
        v.resize(1 << 20, 0);
        assert!(free_regions(&Mem(v)).is_err(), "no AGF");
    }
}
