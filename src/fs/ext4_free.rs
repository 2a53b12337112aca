//! ext2/3/4 free space and journal, for `--unallocated`: the superblock, group descriptors
//! and journal inode come from the ext4 reader ([`super::ext4`]: `64bit`, `meta_bg`, checksums),
//! then each group's block bitmap is read (`BLOCK_UNINIT` groups are all free; `flex_bg` needs
//! nothing special since descriptors give absolute bitmap locations).

use super::{At, FsError};
use crate::source::SharedSource;

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

const BG_BLOCK_UNINIT: u16 = 0x2;

fn corrupt(message: impl Into<String>) -> FsError {
    FsError::Corrupt {
        context: "ext4 free space".into(),
        message: message.into(),
        at: Default::default(),
    }
}

/// Add `[start, start+len)` blocks, merging with the previous region when adjacent.
fn push(out: &mut Vec<Region>, block_size: u64, start: u64, len: u64, kind: RegionKind) {
    let (offset, bytes) = (start * block_size, len * block_size);
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

/// The free blocks of the ext2/3/4 filesystem on `src`, then its journal, as byte ranges.
pub fn free_regions(src: &SharedSource) -> Result<Vec<Region>, FsError> {
    let layout = super::ext4::layout(src.clone())?;
    let sb = &layout.sb;
    let bs = sb.block_size;
    if src.len() / bs < sb.blocks {
        return Err(corrupt("the filesystem is larger than its volume"));
    }
    let mut out = Vec::new();
    let mut bits = vec![0u8; usize::try_from(bs).unwrap_or(0)];
    // Every group's bitmaps and inode table, by start block (for groups whose bitmap was
    // never written).
    let itable = (sb.inodes_per_group * sb.inode_size).div_ceil(bs).max(1);
    let mut group_meta: Vec<(u64, u64)> = layout
        .groups
        .iter()
        .flat_map(|g| {
            [
                (g.block_bitmap, 1),
                (g.inode_bitmap, 1),
                (g.inode_table, itable),
            ]
        })
        .collect();
    group_meta.sort_unstable();
    for (grp, d) in (0u64..).zip(&layout.groups) {
        let first = sb.first_data_block + grp * sb.blocks_per_group;
        let count = sb.blocks_per_group.min(sb.blocks - first);
        if d.flags & BG_BLOCK_UNINIT != 0 {
            // Never written: free but for what the kernel would mark (superblock copy,
            // descriptor blocks, and any group's bitmaps or inode table placed here).
            let mut used: Vec<(u64, u64)> = sb.group_metadata(grp);
            let from = group_meta.partition_point(|&(s, _)| s.saturating_add(itable) <= first);
            used.extend(
                group_meta[from..]
                    .iter()
                    .take_while(|&&(s, _)| s < first + count)
                    .copied(),
            );
            used.retain(|&(s, n)| n > 0 && s < first + count && s + n > first);
            used.sort_unstable();
            let mut at = first;
            for (s, n) in used {
                let (s, e) = (s.max(first), (s + n).min(first + count));
                if s > at {
                    push(&mut out, bs, at, s - at, RegionKind::Unallocated);
                }
                at = at.max(e);
            }
            if at < first + count {
                push(
                    &mut out,
                    bs,
                    at,
                    first + count - at,
                    RegionKind::Unallocated,
                );
            }
            continue;
        }
        if d.block_bitmap == 0 || d.block_bitmap >= sb.blocks {
            return Err(corrupt(format!(
                "group {grp}: block bitmap at block {} outside the filesystem",
                d.block_bitmap
            )));
        }
        src.read_at(d.block_bitmap * bs, &mut bits)
            .map_err(|e| FsError::Io {
                context: format!("ext4 block bitmap of group {grp}"),
                message: e.to_string(),
                at: At {
                    block: Some(d.block_bitmap),
                    offset: Some(d.block_bitmap * bs),
                    ..At::default()
                },
            })?;
        // One bit per cluster (`cluster_ratio` blocks; 1 without bigalloc).
        let ratio = sb.cluster_ratio.max(1);
        let bits_n = count.div_ceil(ratio);
        let mut run: Option<u64> = None;
        for i in 0..=bits_n {
            let used = i == bits_n
                || bits
                    .get((i / 8) as usize)
                    .is_some_and(|b| b >> (i % 8) & 1 == 1);
            match (used, run) {
                (false, None) => run = Some(i),
                (true, Some(s)) => {
                    let start = first + s * ratio;
                    let end = (first + i * ratio).min(first + count);
                    push(&mut out, bs, start, end - start, RegionKind::Unallocated);
                    run = None;
                }
                _ => {}
            }
        }
    }
    for &(start, len) in &layout.journal {
        if start.saturating_add(len) > sb.blocks {
            return Err(corrupt("journal extent outside the filesystem"));
        }
        push(&mut out, bs, start, len, RegionKind::Journal);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::tests::Mem;
    use std::sync::Arc;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let src: SharedSource = Arc::new(Mem(vec![0u8; 8192]));
        assert!(free_regions(&src).is_err());
        let mut img = vec![0u8; 8192];
        img[1024 + 0x38] = 0x53;
        img[1024 + 0x38 + 1] = 0xEF;
        img[1024 + 0x18] = 200;
        let src: SharedSource = Arc::new(Mem(img.clone()));
        assert!(free_regions(&src).is_err());
        img[1024 + 0x18] = 0;
        let src: SharedSource = Arc::new(Mem(img));
        assert!(free_regions(&src).is_err(), "zero blocks per group");
    }

    #[test]
    fn adjacent_blocks_merge() {
        let mut v = vec![];
        push(&mut v, 1024, 10, 2, RegionKind::Unallocated);
        push(&mut v, 1024, 12, 3, RegionKind::Unallocated);
        push(&mut v, 1024, 15, 1, RegionKind::Journal);
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
