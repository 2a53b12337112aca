//! The inode sweep of XFS, after the walk: every allocated inode of the inode B+trees that the
//! walk did not reach, as `xfs_repair` phase 3 finds them, so a file without a directory entry
//! or deleted while still open (on an AGI unlinked list) is still scanned.
//!
//! Each AG's inode B+tree (`IABT`/`IAB3`, rooted in the AGI) lists its inode chunks: 64 inodes
//! from `ir_startino`, with a free mask (`ir_free`) and, with sparse inode chunks, a hole mask
//! (a set bit: four inodes that were never allocated). The 64 buckets of `agi_unlinked` head
//! lists chained through `di_next_unlinked`: inodes unlinked while still open. The root, the
//! realtime bitmap and summary, the quota inodes and metadata-directory inodes are the
//! filesystem's own. Only chunks holding an unreached allocated inode are read.

use super::inode::Inode;
use super::{Ctx, be16, be32, be64, corrupt};
use crate::fs::{Entry, EntryKind, FsError, Swept, orphan_path, unlinked_path};
use std::collections::HashSet;

const AGI_MAGIC: u32 = 0x5841_4749; // "XAGI"
const IABT_MAGIC: u32 = 0x4941_4254; // v4 inode btree
const IAB3_MAGIC: u32 = 0x4941_4233; // v5 inode btree
const INCOMPAT_SPINODES: u32 = 0x2;
/// `di_flags2`: a metadata-directory inode (the filesystem's own).
const DIFLAG2_METADATA: u64 = 0x20;
const NULLAGINO: u32 = u32::MAX;
/// Deepest inode btree followed (real ones have 1-3 levels).
const MAX_LEVELS: u32 = 10;
/// Inodes followed on the unlinked lists of one AG before they are called a loop.
const MAX_UNLINKED: usize = 1 << 20;

/// Every allocated file, directory and symlink inode that `reached` does not name.
pub(super) fn sweep(ctx: &Ctx, reached: &(dyn Fn(u64) -> bool + Sync)) -> Swept {
    let sb = &ctx.sb;
    let head = ctx.read_vec(0, 512, &|| "xfs superblock".into())?;
    let sectsize = u64::from(be16(&head, 102).unwrap_or(512));
    let v5 = sb.crc();
    let sparse = v5 && be32(&head, 216).unwrap_or(0) & INCOMPAT_SPINODES != 0;
    let field = |off| be64(&head, off).unwrap_or(0);
    let mut hidden = vec![sb.rootino, field(64), field(72), field(160), field(168)];
    if v5 {
        hidden.push(field(232));
    }
    let bs = u64::from(sb.blocksize);
    let agbytes = u64::from(sb.agblocks) * bs;
    let ino_shift = u32::from(sb.agblklog) + u32::from(sb.inopblog);
    let isz = usize::from(sb.inodesize);
    let mut out = Vec::new();
    for agno in 0..u64::from(sb.agcount) {
        let what = || format!("xfs AG {agno} inode btree");
        let agi = match ctx.read_vec(agno * agbytes + 2 * sectsize, 512, &|| {
            format!("xfs AGI of AG {agno}")
        }) {
            Ok(b) if be32(&b, 0) == Some(AGI_MAGIC) => b,
            Ok(_) => {
                out.push(Err(corrupt(
                    what(),
                    "bad AGI magic: the AG's inodes were not swept",
                )));
                continue;
            }
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        let unlinked = unlinked(ctx, agno << ino_shift, &agi, &mut out);
        let mut chunks = Vec::new();
        if let Err(e) = records(ctx, agno, &agi, sparse, &mut chunks) {
            out.push(Err(e));
        }
        for (start, free, holes) in chunks {
            let live =
                |i: u32| free & (1u64 << i) == 0 && (!sparse || holes & (1u16 << (i / 4)) == 0);
            let ino = |i: u32| (agno << ino_shift) | u64::from(start.saturating_add(i));
            let wanted: Vec<u32> = (0..64)
                .filter(|&i| live(i) && !hidden.contains(&ino(i)) && !reached(ino(i)))
                .collect();
            let (Some(&lo), Some(&hi)) = (wanted.first(), wanted.last()) else {
                continue;
            };
            let at = match sb.inode_offset(ino(lo)) {
                Ok(at) => at,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let len = usize::try_from(hi - lo + 1).unwrap_or(64) * isz;
            let buf = match ctx.read_vec(at, len, &|| {
                format!("xfs inodes {}..={} (AG {agno})", ino(lo), ino(hi))
            }) {
                Ok(b) => b,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            for i in wanted {
                let n = ino(i);
                let off = usize::try_from(i - lo).unwrap_or(0) * isz;
                let raw = &buf[off..off + isz];
                out.extend(entry(raw, n, v5, unlinked.contains(&n)).transpose());
            }
        }
    }
    Ok(out)
}

/// The entry for allocated inode `ino` (`raw`: its bytes), if it is a file, directory or
/// symlink of the user's.
fn entry(raw: &[u8], ino: u64, v5: bool, orphan: bool) -> Result<Option<Entry>, FsError> {
    let inode = Inode::parse(raw, ino, v5).map_err(|e| {
        corrupt(
            e.context(),
            format!("{e}: allocated, not reached from the root, not read"),
        )
        .with_inode(ino)
    })?;
    if v5 && be64(raw, 120).unwrap_or(0) & DIFLAG2_METADATA != 0 {
        return Ok(None);
    }
    let nlink = if raw.get(4) == Some(&1) {
        u32::from(be16(raw, 6).unwrap_or(0))
    } else {
        be32(raw, 16).unwrap_or(0)
    };
    if nlink == 0 && !orphan {
        return Ok(None);
    }
    if !matches!(
        inode.kind(),
        EntryKind::File | EntryKind::Dir | EntryKind::Symlink
    ) {
        return Ok(None);
    }
    Ok(Some(Entry {
        path: if orphan {
            orphan_path(ino)
        } else {
            unlinked_path(ino)
        },
        kind: inode.kind(),
        mode: inode.mode & 0o7777,
        uid: inode.uid,
        gid: inode.gid,
        size: inode.size,
        mtime: inode.mtime,
        ino,
        phys: 0,
    }))
}

/// The inodes of the AGI's unlinked lists (`agino_base`: the AG's first inode number).
fn unlinked(
    ctx: &Ctx,
    agino_base: u64,
    agi: &[u8],
    out: &mut Vec<Result<Entry, FsError>>,
) -> HashSet<u64> {
    let mut set = HashSet::new();
    for bucket in 0..64 {
        let mut next = be32(agi, 40 + bucket * 4).unwrap_or(NULLAGINO);
        while next != NULLAGINO {
            let ino = agino_base | u64::from(next);
            if set.len() >= MAX_UNLINKED || !set.insert(ino) {
                out.push(Err(corrupt(
                    format!("xfs AGI unlinked bucket {bucket}"),
                    format!("inode {ino} closes a loop: the list was followed no further"),
                )));
                break;
            }
            let raw = ctx.sb.inode_offset(ino).and_then(|at| {
                ctx.read_vec(at, usize::from(ctx.sb.inodesize), &|| {
                    format!("xfs unlinked inode {ino}")
                })
            });
            match raw {
                Ok(raw) => next = be32(&raw, 96).unwrap_or(NULLAGINO),
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
    }
    set
}

/// The inode chunks of one AG: `(ir_startino, ir_free, ir_holemask)`.
fn records(
    ctx: &Ctx,
    agno: u64,
    agi: &[u8],
    sparse: bool,
    chunks: &mut Vec<(u32, u64, u16)>,
) -> Result<(), FsError> {
    let sb = &ctx.sb;
    let what = || format!("xfs AG {agno} inode btree");
    let root = be32(agi, 20).unwrap_or(u32::MAX);
    let levels = be32(agi, 24).unwrap_or(0);
    if levels == 0 || levels > MAX_LEVELS || root >= sb.agblocks {
        return Err(corrupt(
            what(),
            "implausible root or height: the AG's inodes were not swept",
        ));
    }
    let bs = u64::from(sb.blocksize);
    let (hdr, magic) = if sb.crc() {
        (56usize, IAB3_MAGIC)
    } else {
        (16, IABT_MAGIC)
    };
    let blk = |agbno: u32| -> Result<Vec<u8>, FsError> {
        if agbno >= sb.agblocks {
            return Err(corrupt(
                what(),
                format!("btree block {agbno} outside the AG"),
            ));
        }
        let b = ctx.read_vec(
            (agno * u64::from(sb.agblocks) + u64::from(agbno)) * bs,
            usize::try_from(bs).unwrap_or(0),
            &|| format!("xfs AG {agno} inode btree block {agbno}"),
        )?;
        if be32(&b, 0) != Some(magic) {
            return Err(corrupt(what(), format!("bad btree magic in block {agbno}")));
        }
        Ok(b)
    };
    let mut node = blk(root)?;
    for level in (1..levels).rev() {
        if be16(&node, 4) != Some(u16::try_from(level).unwrap_or(0)) {
            return Err(corrupt(what(), format!("node expected at level {level}")));
        }
        let maxrecs = (usize::try_from(bs).unwrap_or(0) - hdr) / 8;
        node = blk(be32(&node, hdr + maxrecs * 4).unwrap_or(u32::MAX))?;
    }
    let mut visited = 0u32;
    loop {
        if be16(&node, 4) != Some(0) {
            return Err(corrupt(what(), "leaf expected at level 0"));
        }
        let recs = usize::from(be16(&node, 6).unwrap_or(0));
        for i in 0..recs {
            let r = hdr + i * 16;
            let (Some(start), Some(free)) = (be32(&node, r), be64(&node, r + 8)) else {
                return Err(corrupt(what(), "inode record past the block"));
            };
            let holes = if sparse {
                be16(&node, r + 4).unwrap_or(0)
            } else {
                0
            };
            chunks.push((start, free, holes));
        }
        let right = be32(&node, 12).unwrap_or(u32::MAX);
        visited += 1;
        if right == u32::MAX {
            return Ok(());
        }
        if visited >= sb.agblocks {
            return Err(corrupt(what(), "inode btree leaves loop"));
        }
        node = blk(right)?;
    }
}
