//! ext4 free space and journal, for `--unallocated`: ext4-view does not expose the block
//! bitmaps, so this reads the superblock, the group descriptors and each group's block bitmap
//! itself (`64bit` descriptors, `BLOCK_UNINIT` groups as all free, `flex_bg` needs nothing
//! special since descriptors give absolute bitmap locations), and the journal inode's extents.

use super::FsError;
use crate::source::Source;

/// What a byte range of a volume holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Blocks the filesystem marks free.
    Unallocated,
    /// The journal (ext4) or log (XFS).
    Journal,
}

/// A byte range of the volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Byte offset from the start of the volume.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Free space or journal.
    pub kind: RegionKind,
}

const SB_OFF: u64 = 1024;
const MAGIC: u16 = 0xEF53;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
const BG_BLOCK_UNINIT: u16 = 0x2;
const EXTENTS_FL: u32 = 0x8_0000;
const EXTENT_MAGIC: u16 = 0xF30A;
/// Groups handled (a 1 PiB filesystem of 4 KiB blocks has 8 Mi groups).
const MAX_GROUPS: u64 = 1 << 24;
/// Depth of the journal's extent tree followed.
const MAX_EXTENT_DEPTH: u32 = 4;
/// Journal extents followed.
const MAX_EXTENTS: usize = 4096;

fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn corrupt(message: impl Into<String>) -> FsError {
    FsError::Corrupt {
        context: "ext4 free space".into(),
        message: message.into(),
    }
}

fn read(src: &dyn Source, offset: u64, len: usize, what: &str) -> Result<Vec<u8>, FsError> {
    let mut buf = vec![0u8; len];
    src.read_at(offset, &mut buf).map_err(|e| FsError::Io {
        context: format!("ext4 {what}"),
        message: e.to_string(),
    })?;
    Ok(buf)
}

struct Geometry {
    block_size: u64,
    blocks: u64,
    first_data_block: u64,
    blocks_per_group: u64,
    inodes_per_group: u64,
    inode_size: u64,
    desc_size: u64,
    is64: bool,
    journal_inum: u32,
}

fn geometry(src: &dyn Source) -> Result<Geometry, FsError> {
    let sb = read(src, SB_OFF, 1024, "superblock")?;
    if le16(&sb, 0x38) != MAGIC {
        return Err(corrupt("no ext4 superblock magic"));
    }
    let log = le32(&sb, 0x18);
    if log > 6 {
        return Err(corrupt(format!("block size 2^{} KiB", log)));
    }
    let incompat = le32(&sb, 0x60);
    if incompat & INCOMPAT_META_BG != 0 {
        return Err(FsError::Incompatible {
            context: "ext4 free space".into(),
            message: "meta_bg group descriptors: free blocks not located".into(),
        });
    }
    let is64 = incompat & INCOMPAT_64BIT != 0;
    let blocks_hi = if is64 { le32(&sb, 0x150) } else { 0 };
    let desc_size = if is64 { u64::from(le16(&sb, 0xFE)) } else { 32 };
    let g = Geometry {
        block_size: 1024u64 << log,
        blocks: u64::from(le32(&sb, 0x04)) | (u64::from(blocks_hi) << 32),
        first_data_block: u64::from(le32(&sb, 0x14)),
        blocks_per_group: u64::from(le32(&sb, 0x20)),
        inodes_per_group: u64::from(le32(&sb, 0x28)),
        inode_size: u64::from(le16(&sb, 0x58)).max(128),
        desc_size,
        is64,
        journal_inum: le32(&sb, 0xE0),
    };
    if g.blocks_per_group == 0
        || g.blocks_per_group > g.block_size * 8
        || !(32..=1024).contains(&g.desc_size)
        || g.inodes_per_group == 0
        || g.inode_size > g.block_size
    {
        return Err(corrupt("implausible group geometry in the superblock"));
    }
    if src.len() / g.block_size < g.blocks {
        return Err(corrupt("the filesystem is larger than its volume"));
    }
    Ok(g)
}

/// Add `[start, start+len)` blocks, merging with the previous region when adjacent.
fn push(out: &mut Vec<Region>, g: &Geometry, start: u64, len: u64, kind: RegionKind) {
    let (offset, bytes) = (start * g.block_size, len * g.block_size);
    if let Some(last) = out.last_mut()
        && last.kind == kind
        && last.offset + last.len == offset
    {
        last.len += bytes;
        return;
    }
    out.push(Region {
        offset,
        len: bytes,
        kind,
    });
}

/// The free blocks of the ext4 filesystem on `src`, then its journal, as byte ranges.
pub fn free_regions(src: &dyn Source) -> Result<Vec<Region>, FsError> {
    let g = geometry(src)?;
    let groups = (g.blocks - g.first_data_block.min(g.blocks)).div_ceil(g.blocks_per_group);
    if groups > MAX_GROUPS {
        return Err(corrupt(format!("{groups} block groups")));
    }
    let gdt_off = (g.first_data_block + 1) * g.block_size;
    let gdt = read(
        src,
        gdt_off,
        usize::try_from(groups * g.desc_size).map_err(|_| corrupt("descriptor table size"))?,
        "group descriptors",
    )?;
    let mut out = Vec::new();
    let mut inode_table0 = 0u64;
    for grp in 0..groups {
        let d = gdt
            .get(usize::try_from(grp * g.desc_size).unwrap_or(usize::MAX)..)
            .unwrap_or(&[]);
        let hi = |off| {
            if g.is64 {
                u64::from(le32(d, off)) << 32
            } else {
                0
            }
        };
        let bitmap = u64::from(le32(d, 0)) | hi(0x20);
        if grp == 0 {
            inode_table0 = u64::from(le32(d, 8)) | hi(0x28);
        }
        let first = g.first_data_block + grp * g.blocks_per_group;
        let count = g.blocks_per_group.min(g.blocks - first);
        if le16(d, 0x12) & BG_BLOCK_UNINIT != 0 {
            push(&mut out, &g, first, count, RegionKind::Unallocated);
            continue;
        }
        if bitmap == 0 || bitmap >= g.blocks {
            return Err(corrupt(format!(
                "group {grp}: block bitmap at block {bitmap} outside the filesystem"
            )));
        }
        let bits = read(
            src,
            bitmap * g.block_size,
            usize::try_from(g.block_size).unwrap_or(0),
            "block bitmap",
        )?;
        let mut run: Option<u64> = None;
        for i in 0..=count {
            let used = i == count
                || bits
                    .get((i / 8) as usize)
                    .is_some_and(|b| b >> (i % 8) & 1 == 1);
            match (used, run) {
                (false, None) => run = Some(i),
                (true, Some(s)) => {
                    push(&mut out, &g, first + s, i - s, RegionKind::Unallocated);
                    run = None;
                }
                _ => {}
            }
        }
    }
    if g.journal_inum != 0 {
        journal(src, &g, inode_table0, &mut out)?;
    }
    Ok(out)
}

/// The journal inode's blocks (it lives in group 0 for the usual inode 8).
fn journal(
    src: &dyn Source,
    g: &Geometry,
    inode_table0: u64,
    out: &mut Vec<Region>,
) -> Result<(), FsError> {
    let idx = u64::from(g.journal_inum) - 1;
    if idx >= g.inodes_per_group {
        return Err(corrupt("journal inode outside group 0"));
    }
    let ino = read(
        src,
        inode_table0 * g.block_size + idx * g.inode_size,
        128,
        "journal inode",
    )?;
    if le32(&ino, 0x20) & EXTENTS_FL == 0 {
        return Err(FsError::Incompatible {
            context: "ext4 journal".into(),
            message: "block-mapped (non-extent) journal: not scanned".into(),
        });
    }
    let root = ino.get(0x28..0x28 + 60).unwrap_or(&[]).to_vec();
    let mut extents = Vec::new();
    walk_extents(src, g, &root, MAX_EXTENT_DEPTH, &mut extents)?;
    for (start, len) in extents {
        if start.saturating_add(len) > g.blocks {
            return Err(corrupt("journal extent outside the filesystem"));
        }
        push(out, g, start, len, RegionKind::Journal);
    }
    Ok(())
}

fn walk_extents(
    src: &dyn Source,
    g: &Geometry,
    node: &[u8],
    budget: u32,
    out: &mut Vec<(u64, u64)>,
) -> Result<(), FsError> {
    if le16(node, 0) != EXTENT_MAGIC {
        return Err(corrupt("journal extent header magic"));
    }
    let entries = usize::from(le16(node, 2));
    let depth = le16(node, 6);
    for i in 0..entries {
        let e = node.get(12 + i * 12..24 + i * 12).unwrap_or(&[]);
        if e.len() < 12 || out.len() >= MAX_EXTENTS {
            break;
        }
        if depth == 0 {
            let mut len = u64::from(le16(e, 4));
            if len > 32768 {
                len -= 32768; // uninitialized extent
            }
            let start = u64::from(le32(e, 8)) | (u64::from(le16(e, 6)) << 32);
            out.push((start, len));
        } else {
            if budget == 0 {
                return Err(corrupt("journal extent tree too deep"));
            }
            let child = u64::from(le32(e, 4)) | (u64::from(le16(e, 8)) << 32);
            if child >= g.blocks {
                return Err(corrupt("journal extent index outside the filesystem"));
            }
            let block = read(
                src,
                child * g.block_size,
                usize::try_from(g.block_size).unwrap_or(0),
                "journal extent block",
            )?;
            walk_extents(src, g, &block, budget - 1, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::tests::Mem;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(free_regions(&Mem(vec![0u8; 8192])).is_err());
        let mut img = vec![0u8; 8192];
        img[1024 + 0x38] = 0x53;
        img[1024 + 0x38 + 1] = 0xEF;
        img[1024 + 0x18] = 200;
        assert!(free_regions(&Mem(img.clone())).is_err());
        img[1024 + 0x18] = 0;
        assert!(free_regions(&Mem(img)).is_err(), "zero blocks per group");
    }

    #[test]
    fn adjacent_blocks_merge() {
        let g = Geometry {
            block_size: 1024,
            blocks: 100,
            first_data_block: 1,
            blocks_per_group: 8192,
            inodes_per_group: 8,
            inode_size: 256,
            desc_size: 32,
            is64: false,
            journal_inum: 0,
        };
        let mut v = vec![];
        push(&mut v, &g, 10, 2, RegionKind::Unallocated);
        push(&mut v, &g, 12, 3, RegionKind::Unallocated);
        push(&mut v, &g, 15, 1, RegionKind::Journal);
        assert_eq!(
            v,
            [
                Region {
                    offset: 10240,
                    len: 5120,
                    kind: RegionKind::Unallocated
                },
                Region {
                    offset: 15360,
                    len: 1024,
                    kind: RegionKind::Journal
                }
            ]
        );
    }
}
