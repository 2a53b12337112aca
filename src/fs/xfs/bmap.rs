//! Data fork block maps: packed extent records in the inode, and bmap B+trees (`BMAP` on v4,
//! `BMA3` on v5) whose root sits in the inode. [`Extents`] yields a fork's extents in file order
//! without loading the whole map: memory is one block per tree level.

use super::inode::{FMT_BTREE, FMT_EXTENTS, Inode};
use super::{Ctx, be16, be64, corrupt, crc_ok};
use crate::fs::FsError;

const BMAP_MAGIC: u32 = 0x424d_4150; // "BMAP"
const BMA3_MAGIC: u32 = 0x424d_4133; // "BMA3"
const HDR_V4: usize = 24;
const HDR_V5: usize = 72;
const CRC_OFF: usize = 64;
/// Deepest bmap B+tree accepted (XFS needs at most 9 levels even with 64-bit extent counts).
const MAX_LEVELS: u16 = 10;
/// Hard cap on B+tree blocks read for one fork walk.
const MAX_NODE_READS: u64 = 1 << 24;
/// Most extents [`collect`] keeps in memory (for directories and symlinks).
const MAX_COLLECT: usize = 1 << 20;
/// File offsets (in blocks) end below 2^54.
const MAX_FILEOFF: u64 = 1 << 54;

/// One mapping: `blockcount` file blocks from `startoff` live at filesystem block `startblock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) startoff: u64,
    pub(crate) startblock: u64,
    pub(crate) blockcount: u64,
    /// Preallocated but never written: reads as zeros.
    pub(crate) unwritten: bool,
}

/// Decode a 128-bit big-endian extent record:
/// flag:1 | startoff:54 | startblock:52 | blockcount:21.
pub(crate) fn decode(rec: &[u8]) -> Option<Extent> {
    let l0 = be64(rec, 0)?;
    let l1 = be64(rec, 8)?;
    Some(Extent {
        unwritten: l0 >> 63 != 0,
        startoff: (l0 & ((1 << 63) - 1)) >> 9,
        startblock: ((l0 & 0x1ff) << 43) | (l1 >> 21),
        blockcount: l1 & ((1 << 21) - 1),
    })
}

/// One B+tree node on the walk: its bytes and where its records start.
struct Frame {
    buf: Vec<u8>,
    level: u16,
    numrecs: usize,
    idx: usize,
    /// Offset of the records (leaf) or child pointers (node).
    recs: usize,
}

/// Streaming, validating iterator over a fork's extents in file order.
pub(crate) struct Extents<'a> {
    ctx: &'a Ctx,
    ino: u64,
    stack: Vec<Frame>,
    /// Extents left to yield (from `di_nextents`).
    left: u64,
    /// The next extent must start at or after this file block.
    next_off: u64,
    reads: u64,
}

impl<'a> Extents<'a> {
    /// Start walking `inode`'s data fork (extents or btree format).
    pub(crate) fn new(ctx: &'a Ctx, inode: &Inode) -> Result<Extents<'a>, FsError> {
        let here = || format!("xfs inode {}", inode.ino);
        let fork = inode.fork.clone();
        let frame = match inode.format {
            FMT_EXTENTS => {
                let max = fork.len() / 16;
                if inode.nextents > max as u64 {
                    return Err(corrupt(
                        here(),
                        format!(
                            "di_nextents = {}: more than the {max} records the fork holds",
                            inode.nextents
                        ),
                    ));
                }
                Frame {
                    buf: fork,
                    level: 0,
                    numrecs: inode.nextents as usize,
                    idx: 0,
                    recs: 0,
                }
            }
            FMT_BTREE => {
                let level = be16(&fork, 0).unwrap_or(0);
                let numrecs = usize::from(be16(&fork, 2).unwrap_or(0));
                let maxrecs = fork.len().saturating_sub(4) / 16;
                if level == 0 || level > MAX_LEVELS {
                    return Err(corrupt(
                        here(),
                        format!("bmap btree root level = {level}: not in 1..={MAX_LEVELS}"),
                    ));
                }
                if numrecs == 0 || numrecs > maxrecs {
                    return Err(corrupt(
                        here(),
                        format!("bmap btree root numrecs = {numrecs}: not in 1..={maxrecs}"),
                    ));
                }
                Frame {
                    buf: fork,
                    level,
                    numrecs,
                    idx: 0,
                    recs: 4 + maxrecs * 8,
                }
            }
            other => {
                return Err(corrupt(
                    here(),
                    format!("di_format = {other}: no block map"),
                ));
            }
        };
        Ok(Extents {
            ctx,
            ino: inode.ino,
            stack: vec![frame],
            left: inode.nextents,
            next_off: 0,
            reads: 0,
        })
    }

    /// The next extent, or `None` after the last one.
    pub(crate) fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if top.idx >= top.numrecs {
                self.stack.pop();
                continue;
            }
            let i = top.idx;
            top.idx += 1;
            if top.level == 0 {
                let rec = top
                    .recs
                    .checked_add(i * 16)
                    .and_then(|o| top.buf.get(o..o + 16));
                let ext = rec.and_then(decode).ok_or_else(|| {
                    corrupt(self.here(), "extent record past the end of its block")
                })?;
                return self.accept(ext).map(Some);
            }
            let ino = self.ino;
            let ptr = be64(&top.buf, top.recs + i * 8).ok_or_else(|| {
                corrupt(
                    format!("xfs inode {ino}"),
                    "bmap btree pointer past the end of its block",
                )
            })?;
            let child_level = top.level - 1;
            let frame = self.read_node(ptr, child_level)?;
            self.stack.push(frame);
        }
    }

    fn here(&self) -> String {
        format!("xfs inode {}", self.ino)
    }

    /// Check an extent against the previous one, the inode's extent count and the volume.
    fn accept(&mut self, ext: Extent) -> Result<Extent, FsError> {
        let here = self.here();
        let bad = |why: &str| corrupt(here.clone(), format!("extent {ext:?}: {why}"));
        if self.left == 0 {
            return Err(bad("more extents than di_nextents"));
        }
        self.left -= 1;
        if ext.blockcount == 0 {
            return Err(bad("zero length"));
        }
        if ext.startoff < self.next_off {
            return Err(bad("out of order or overlapping the previous extent"));
        }
        let end = ext
            .startoff
            .checked_add(ext.blockcount)
            .filter(|&e| e <= MAX_FILEOFF)
            .ok_or_else(|| bad("past the largest file offset"))?;
        let sb = &self.ctx.sb;
        let agbno = ext.startblock & ((1u64 << sb.agblklog) - 1);
        let last = ext
            .startblock
            .checked_add(ext.blockcount - 1)
            .and_then(|b| sb.fsb_offset(b));
        if sb.fsb_offset(ext.startblock).is_none()
            || last.is_none()
            || agbno + ext.blockcount > u64::from(sb.agblocks)
        {
            return Err(bad(
                "blocks outside the filesystem or across an allocation group",
            ));
        }
        self.next_off = end;
        Ok(ext)
    }

    /// Read and validate a non-root B+tree block at filesystem block `fsb`, expected at `level`.
    fn read_node(&mut self, fsb: u64, level: u16) -> Result<Frame, FsError> {
        let here = format!("xfs inode {} bmap btree block {fsb}", self.ino);
        self.reads += 1;
        if self.reads > MAX_NODE_READS {
            return Err(corrupt(here, "too many bmap btree blocks"));
        }
        let sb = &self.ctx.sb;
        let off = sb
            .fsb_offset(fsb)
            .ok_or_else(|| corrupt(here.clone(), "block outside the filesystem"))?;
        let buf = self
            .ctx
            .read_vec(off, sb.blocksize as usize, &|| here.clone())?;
        let (magic, hdr) = if sb.crc() {
            (BMA3_MAGIC, HDR_V5)
        } else {
            (BMAP_MAGIC, HDR_V4)
        };
        let got = super::be32(&buf, 0).unwrap_or(0);
        if got != magic {
            return Err(corrupt(
                here,
                format!("magic = {got:#010x}, expected {magic:#010x}"),
            ));
        }
        if sb.crc() {
            if !crc_ok(&buf, CRC_OFF) {
                return Err(corrupt(here, "bb_crc mismatch"));
            }
            let owner = be64(&buf, 56).unwrap_or(0);
            if owner != self.ino {
                return Err(corrupt(
                    here,
                    format!("bb_owner = {owner}: block belongs to another inode"),
                ));
            }
            let blkno = be64(&buf, 24).unwrap_or(0);
            if blkno != off >> 9 {
                return Err(corrupt(
                    here,
                    format!("bb_blkno = {blkno}: block is not where it was written"),
                ));
            }
        }
        let got_level = be16(&buf, 4).unwrap_or(u16::MAX);
        if got_level != level {
            return Err(corrupt(
                here,
                format!("bb_level = {got_level}, expected {level}"),
            ));
        }
        let numrecs = usize::from(be16(&buf, 6).unwrap_or(0));
        let maxrecs = (buf.len() - hdr) / 16;
        if numrecs == 0 || numrecs > maxrecs {
            return Err(corrupt(
                here,
                format!("bb_numrecs = {numrecs}: not in 1..={maxrecs}"),
            ));
        }
        let recs = if level == 0 { hdr } else { hdr + maxrecs * 8 };
        Ok(Frame {
            buf,
            level,
            numrecs,
            idx: 0,
            recs,
        })
    }
}

/// All extents of `inode` starting below file block `limit` (directories, symlinks), capped.
pub(crate) fn collect(ctx: &Ctx, inode: &Inode, limit: u64) -> Result<Vec<Extent>, FsError> {
    let mut walk = Extents::new(ctx, inode)?;
    let mut out = Vec::new();
    while let Some(ext) = walk.next_extent()? {
        if ext.startoff >= limit {
            break;
        }
        if out.len() >= MAX_COLLECT {
            return Err(corrupt(
                format!("xfs inode {}", inode.ino),
                "too many extents",
            ));
        }
        out.push(ext);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn encode(e: Extent) -> [u8; 16] {
        let l0 = (u64::from(e.unwritten) << 63) | (e.startoff << 9) | (e.startblock >> 43);
        let l1 = (e.startblock << 21) | e.blockcount;
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&l0.to_be_bytes());
        out[8..].copy_from_slice(&l1.to_be_bytes());
        out
    }

    use crate::fs::xfs::inode::tests::v3_inode;
    use crate::fs::xfs::set_crc;
    use crate::fs::xfs::superblock::{Superblock, tests::v5_sb};
    use crate::fs::xfs::tests::Mem;
    use std::sync::Arc;

    fn ext(startoff: u64, startblock: u64, blockcount: u64) -> Extent {
        Extent {
            startoff,
            startblock,
            blockcount,
            unwritten: false,
        }
    }

    /// A `BMA3` block for inode 131 at filesystem block 5 of a 16-block volume.
    fn node(level: u16, body: &[u8], numrecs: u16) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&BMA3_MAGIC.to_be_bytes());
        b[4..6].copy_from_slice(&level.to_be_bytes());
        b[6..8].copy_from_slice(&numrecs.to_be_bytes());
        b[24..32].copy_from_slice(&(5u64 * 8).to_be_bytes());
        b[56..64].copy_from_slice(&131u64.to_be_bytes());
        b[HDR_V5..HDR_V5 + body.len()].copy_from_slice(body);
        set_crc(&mut b, CRC_OFF);
        b
    }

    /// Inode 131 whose btree root (level `root_level`, one pointer to block 5) sits in its fork,
    /// on a volume whose block 5 is `block`.
    fn walk(block: Vec<u8>, root_level: u16, nextents: u32) -> Result<Vec<Extent>, FsError> {
        let mut vol = vec![0u8; 16 * 4096];
        vol[5 * 4096..6 * 4096].copy_from_slice(&block);
        let ctx = Ctx {
            src: Arc::new(Mem(vol)),
            sb: Superblock::parse(&v5_sb()).unwrap(),
        };
        let mut fork = vec![0u8; 336];
        fork[0..2].copy_from_slice(&root_level.to_be_bytes());
        fork[2..4].copy_from_slice(&1u16.to_be_bytes());
        let maxrecs = (336 - 4) / 16;
        fork[4 + maxrecs * 8..4 + maxrecs * 8 + 8].copy_from_slice(&5u64.to_be_bytes());
        let mut raw = v3_inode(131, 0o100644, FMT_BTREE, &fork);
        raw[76..80].copy_from_slice(&nextents.to_be_bytes());
        set_crc(&mut raw, 100);
        let inode = Inode::parse(&raw, 131, true)?;
        collect(&ctx, &inode, u64::MAX)
    }

    fn leaf(recs: &[Extent]) -> Vec<u8> {
        let body: Vec<u8> = recs.iter().flat_map(|&e| encode(e)).collect();
        node(0, &body, recs.len() as u16)
    }

    #[test]
    fn walks_a_btree_and_reports_damage() {
        let good = [ext(0, 8, 1), ext(4, 9, 2)];
        assert_eq!(walk(leaf(&good), 1, 2).unwrap(), good.to_vec());
        let mut b = leaf(&good);
        b[200] ^= 1;
        assert_eq!(
            walk(b, 1, 2).unwrap_err().to_string(),
            "xfs inode 131 bmap btree block 5: corrupt: bb_crc mismatch"
        );
        assert_eq!(
            walk(leaf(&good), 2, 2).unwrap_err().to_string(),
            "xfs inode 131 bmap btree block 5: corrupt: bb_level = 0, expected 1"
        );
        // A node pointing at itself: the level check ends the loop.
        let mut ptrs = vec![0u8; 8 * 2 + ((4096 - HDR_V5) / 16) * 8];
        let at = ((4096 - HDR_V5) / 16) * 8;
        ptrs[at..at + 8].copy_from_slice(&5u64.to_be_bytes());
        assert_eq!(
            walk(node(1, &ptrs, 1), 2, 2).unwrap_err().to_string(),
            "xfs inode 131 bmap btree block 5: corrupt: bb_level = 1, expected 0"
        );
        let overlap = [ext(0, 8, 2), ext(1, 9, 1)];
        assert!(
            walk(leaf(&overlap), 1, 2)
                .unwrap_err()
                .to_string()
                .contains("out of order or overlapping")
        );
        assert!(
            walk(leaf(&good), 1, 1)
                .unwrap_err()
                .to_string()
                .contains("more extents than di_nextents")
        );
        let outside = [ext(0, 1 << 20, 1)];
        assert!(
            walk(leaf(&outside), 1, 1)
                .unwrap_err()
                .to_string()
                .contains("outside the filesystem")
        );
        assert_eq!(
            walk(leaf(&good), 11, 2).unwrap_err().to_string(),
            "xfs inode 131: corrupt: bmap btree root level = 11: not in 1..=10"
        );
    }

    #[test]
    fn decodes_packed_records() {
        let e = Extent {
            startoff: (1 << 54) - 1,
            startblock: (1 << 52) - 1,
            blockcount: (1 << 21) - 1,
            unwritten: true,
        };
        assert_eq!(decode(&encode(e)), Some(e));
        let e = Extent {
            startoff: 7,
            startblock: 0x12_3456_789a,
            blockcount: 3,
            unwritten: false,
        };
        assert_eq!(decode(&encode(e)), Some(e));
        assert_eq!(decode(&[0; 15]), None);
    }
}
