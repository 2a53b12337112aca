//! The inode sweep of ext2/3/4, after the walk: every in-use inode of the inode tables that
//! the walk did not reach, as `e2fsck` pass 1 finds them, so a file without a directory entry
//! (what `e2fsck` would move to `lost+found`) or deleted while still open (on the orphan list)
//! is still scanned.
//!
//! In use means: its bit is set in the group's inode bitmap, within the part of the table the
//! group has used (a group flagged `INODE_UNINIT` has none; `bg_itable_unused` inodes at the end
//! of the table were never used: both only with group checksums, as the kernel reads them), and
//! it has links, or is on the orphan list (`s_last_orphan` chained through `i_dtime`, or the
//! `orphan_file`). Reserved inodes (below `s_first_ino`), the journal, quota and orphan files
//! and extended-attribute inodes are the filesystem's own and never files. Only the inodes
//! the walk did not reach are read, in runs of adjacent ones: one bitmap block per group and
//! the unreached inodes, which on a clean filesystem are none.

use super::inode::Inode;
use super::{Ctx, corrupt, io, le32};
use crate::fs::{At, Entry, EntryKind, FsError, Swept, orphan_path, unlinked_path};
use std::collections::HashSet;

/// `bg_flags`: no inode of the group was ever used.
const INODE_UNINIT: u16 = 0x1;
/// `i_flags`: the inode holds a large extended attribute value, not a file.
const EA_INODE_FL: u32 = 0x20_0000;
/// Orphans followed on the list before it is called a loop.
const MAX_ORPHANS: usize = 1 << 20;
/// Inodes read at once from a table.
const RUN: u64 = 64;
/// Magic of an orphan file block's tail.
const ORPHAN_BLOCK_MAGIC: u32 = 0x0b10_ca04;

/// Every in-use file, directory and symlink inode that `reached` does not name.
pub(super) fn sweep(ctx: &Ctx, reached: &(dyn Fn(u64) -> bool + Sync)) -> Swept {
    let sb = &ctx.sb;
    let descs = sb.descriptors(ctx.src.as_ref())?;
    let mut out = Vec::new();
    let orphans = orphans(ctx, &mut out);
    let csums = sb.group_csums();
    let bs = sb.block_size;
    let ipg = sb.inodes_per_group;
    let mut bitmap = vec![0u8; usize::try_from(bs).unwrap_or(0)];
    for (g, d) in (0u64..).zip(&descs) {
        let used = if csums {
            if d.flags & INODE_UNINIT != 0 {
                continue;
            }
            ipg.saturating_sub(d.itable_unused)
        } else {
            ipg
        };
        let first = g * ipg + 1;
        let used = used.min(sb.inodes.saturating_sub(first - 1));
        if used == 0 {
            continue;
        }
        if d.inode_bitmap == 0 || d.inode_bitmap >= sb.blocks {
            out.push(Err(corrupt(
                &format!("ext4 inode bitmap of group {g}"),
                format!(
                    "at block {}, outside the filesystem: the group's inodes were not swept",
                    d.inode_bitmap
                ),
            )));
            continue;
        }
        if let Err(e) = ctx.src.read_at(d.inode_bitmap * bs, &mut bitmap) {
            out.push(Err(io(
                &format!(
                    "ext4 inode bitmap of group {g} (block {}): the group's inodes were not swept",
                    d.inode_bitmap
                ),
                e,
            )
            .with_block(d.inode_bitmap)));
            continue;
        }
        let wanted = |i: u64| {
            let ino = first + i;
            let set = bitmap
                .get(usize::try_from(i / 8).unwrap_or(usize::MAX))
                .is_some_and(|b| b & (1 << (i % 8)) != 0);
            (set || orphans.contains(&ino))
                && ino >= sb.first_ino
                && !sb.hidden.contains(&ino)
                && !reached(ino)
        };
        let mut i = 0;
        while i < used {
            if !wanted(i) {
                i += 1;
                continue;
            }
            let mut n = 1;
            while n < RUN && i + n < used && wanted(i + n) {
                n += 1;
            }
            read_run(ctx, d.inode_table, g, i, n, &orphans, &mut out);
            i += n;
        }
    }
    Ok(out)
}

/// Read `n` inodes from index `i` of group `g`'s table and keep the in-use files among them.
fn read_run(
    ctx: &Ctx,
    table: u64,
    g: u64,
    i: u64,
    n: u64,
    orphans: &HashSet<u64>,
    out: &mut Vec<Result<Entry, FsError>>,
) {
    let sb = &ctx.sb;
    let first = g * sb.inodes_per_group + 1 + i;
    let isz = sb.inode_size;
    let at = table
        .checked_mul(sb.block_size)
        .and_then(|t| t.checked_add(i * isz));
    let mut buf = vec![0u8; usize::try_from(n * isz).unwrap_or(0)];
    let read = match at {
        Some(at) if table != 0 && table < sb.blocks => ctx
            .src
            .read_at(at, &mut buf)
            .map_err(|e| io(&format!("ext4 inodes {first}..{}", first + n), e)),
        _ => Err(corrupt(
            &format!("ext4 inodes {first}..{}", first + n),
            format!("inode table of group {g} at block {table}, outside the filesystem"),
        )),
    };
    if let Err(e) = read {
        out.push(Err(FsError::Io {
            context: e.context().to_string(),
            message: format!("{e}: in use and not reached from the root, not read"),
            at: e.at(),
        }));
        return;
    }
    let keep = usize::try_from(isz.min(1024)).unwrap_or(128);
    for (k, raw) in (0u64..).zip(buf.chunks_exact(usize::try_from(isz).unwrap_or(128))) {
        let ino = first + k;
        let orphan = orphans.contains(&ino);
        let inode = match Inode::from_raw(ctx, ino, raw[..keep].to_vec()) {
            Ok(inode) => inode,
            Err(e) => {
                out.push(Err(corrupt(
                    e.context(),
                    format!("{e}: marked in use, not reached from the root, not read"),
                )
                .with_inode(ino)));
                continue;
            }
        };
        if (inode.links == 0 && !orphan) || inode.flags & EA_INODE_FL != 0 {
            continue;
        }
        let kind = match inode.kind() {
            Some(k @ (EntryKind::File | EntryKind::Dir | EntryKind::Symlink)) => k,
            Some(EntryKind::Special) => continue,
            None if inode.mode == 0 && inode.links == 0 => continue,
            None => {
                out.push(Err(corrupt(
                    &format!("ext4 inode {ino}"),
                    format!(
                        "marked in use with {} links but mode {:#o} has no file type: not reached from the root, not read",
                        inode.links, inode.mode
                    ),
                )
                .with_inode(ino)));
                continue;
            }
        };
        out.push(Ok(Entry {
            path: if orphan {
                orphan_path(ino)
            } else {
                unlinked_path(ino)
            },
            kind,
            mode: u32::from(inode.mode & 0o7777),
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            mtime: inode.mtime,
            ino,
            phys: inode.first_byte(sb.block_size),
        }));
    }
}

/// The inodes on the orphan list: the `s_last_orphan` chain and the orphan file. A list that
/// cannot be followed to its end is an error in `out` (the orphans after the break are still
/// swept, as unlinked inodes, when the bitmap marks them in use).
fn orphans(ctx: &Ctx, out: &mut Vec<Result<Entry, FsError>>) -> HashSet<u64> {
    let sb = &ctx.sb;
    let mut set = HashSet::new();
    let mut next = sb.last_orphan;
    while next != 0 {
        if next > sb.inodes || set.len() >= MAX_ORPHANS || !set.insert(next) {
            out.push(Err(corrupt(
                "ext4 orphan list (s_last_orphan)",
                format!("inode {next} is outside the filesystem or closes a loop: the list was followed no further"),
            )));
            break;
        }
        match Inode::read(ctx, next) {
            Ok(inode) => next = u64::from(inode.dtime),
            Err(e) => {
                out.push(Err(e));
                break;
            }
        }
    }
    if sb.orphan_file != 0
        && let Err(e) = orphan_file(ctx, &mut set)
    {
        out.push(Err(e));
    }
    set
}

/// Add the inodes the orphan file lists: blocks of little-endian inode numbers, each block
/// ending in an 8-byte tail (magic, checksum).
fn orphan_file(ctx: &Ctx, set: &mut HashSet<u64>) -> Result<(), FsError> {
    let sb = &ctx.sb;
    let inode = Inode::read(ctx, sb.orphan_file)?;
    let bs = sb.block_size;
    let mut block = vec![0u8; usize::try_from(bs).unwrap_or(0)];
    for run in inode.runs(ctx)? {
        if run.uninit {
            continue;
        }
        for b in run.phys..run.phys.saturating_add(run.len) {
            ctx.src
                .read_at(b.saturating_mul(bs), &mut block)
                .map_err(|e| io("ext4 orphan file", e).with_block(b))?;
            let tail = block.len().saturating_sub(8);
            if le32(&block, tail) != ORPHAN_BLOCK_MAGIC {
                return Err(FsError::Corrupt {
                    context: format!("ext4 orphan file (inode {})", sb.orphan_file),
                    message: format!(
                        "block {b} has no orphan block magic: the orphans it lists were not read"
                    ),
                    at: At {
                        block: Some(b),
                        ..At::default()
                    },
                });
            }
            for off in (0..tail).step_by(4) {
                let ino = u64::from(le32(&block, off));
                if ino != 0 && ino <= sb.inodes {
                    if set.len() >= MAX_ORPHANS {
                        return Err(corrupt(
                            "ext4 orphan file",
                            format!("more than {MAX_ORPHANS} orphans"),
                        ));
                    }
                    set.insert(ino);
                }
            }
        }
    }
    Ok(())
}
