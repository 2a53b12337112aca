//! jbd2 journal replay, in memory: an image taken while its filesystem was mounted (a
//! `--no-reboot` AMI, a crash-consistent snapshot) has metadata committed to the journal but
//! not yet written to its home location. The kernel replays it at mount; amiscan reads the
//! journal the same way (recovery.c's three passes: find the end of the log, collect revokes,
//! map every committed block that was not revoked later) and serves those blocks from the
//! journal, so what it walks is what the kernel would mount. Nothing is written.
//!
//! Handled: v2 journals, 32/64-bit block numbers, checksum v1/v2/v3 tag layouts (checksums are
//! not verified: a transaction counts when its commit block is present with the right
//! sequence, as with `e2fsck` without `journal_checksum`), revoke records, escaped blocks,
//! a log that wraps. Fast commits (`fast_commit`: per-inode deltas logged after the last full
//! commit, in an area at the journal's end) are not replayed: when the area holds commits of
//! the transaction that follows the replayed log, as the kernel's recovery would apply them,
//! [`Replay::fast_commits`] says exactly which (inodes, names, blocks), and the opener scans
//! those blocks raw and calls the volume incomplete. A journal on another device is the
//! opener's concern (the volume does not hold it).

use super::{corrupt, incompatible, io};
use crate::fs::FsError;
use crate::source::{SharedSource, Source, SourceError};
use std::collections::HashMap;

const JBD2_MAGIC: u32 = 0xC03B_3998;
const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SB_V1: u32 = 3;
const SB_V2: u32 = 4;
const REVOKE: u32 = 5;

const INCOMPAT_REVOKE: u32 = 0x1;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;
const INCOMPAT_FAST_COMMIT: u32 = 0x20;
const INCOMPAT_KNOWN: u32 = INCOMPAT_REVOKE
    | INCOMPAT_64BIT
    | INCOMPAT_ASYNC_COMMIT
    | INCOMPAT_CSUM_V2
    | INCOMPAT_CSUM_V3
    | INCOMPAT_FAST_COMMIT;

const FLAG_ESCAPE: u32 = 1;
const FLAG_SAME_UUID: u32 = 2;
const FLAG_LAST_TAG: u32 = 8;

/// Journal blocks walked at most (a journal is at most 2^30 blocks; real ones are < 2^18).
const MAX_LOG_BLOCKS: u64 = 1 << 22;

fn be32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Where a filesystem block's newest committed copy is in the journal.
#[derive(Clone, Copy, Debug)]
struct Copy {
    /// Byte offset of the journal block on the volume.
    at: u64,
    /// The block's first four bytes were the jbd2 magic, stored zeroed.
    escaped: bool,
}

/// The journal's logical blocks mapped to volume bytes.
pub(super) struct JournalMap {
    /// Byte offset of each journal block (index = logical block).
    pub blocks: Vec<u64>,
}

/// Blocks to serve from the journal, keyed by filesystem block.
pub(super) struct Replay {
    copies: HashMap<u64, Copy>,
    /// Transactions replayed.
    pub transactions: u64,
    /// Fast commits recovery would apply after the replayed log, not replayed.
    pub fast_commits: Option<FastCommits>,
}

/// Fast commits of the transaction after the replayed log, which the kernel would replay and
/// amiscan does not: what they touch, and where they are.
#[derive(Debug, Default)]
pub(super) struct FastCommits {
    /// The transaction they belong to.
    pub tid: u32,
    /// Complete fast commits (each ends in a tail tag).
    pub commits: u64,
    /// Inodes whose new state they carry (`INODE` and `ADD_RANGE`/`DEL_RANGE` tags).
    pub inodes: std::collections::BTreeSet<u32>,
    /// Names they create, link or unlink (first [`FC_NAMES`]).
    pub names: Vec<String>,
    /// Journal blocks of the fast-commit area that hold them (first, count).
    pub blocks: (u64, u64),
    /// Filesystem blocks their `ADD_RANGE` tags map into files (start, count; first
    /// [`FC_EXTENTS`]): written before the commit, named by no inode on disk.
    pub extents: Vec<(u64, u64)>,
}

/// Extents kept in [`FastCommits::extents`].
const FC_EXTENTS: usize = 4096;

/// Names kept in [`FastCommits::names`].
const FC_NAMES: usize = 8;

/// ext4 fast-commit tags (`fs/ext4/fast_commit.h`).
const FC_ADD_RANGE: u16 = 1;
const FC_DEL_RANGE: u16 = 2;
const FC_CREAT: u16 = 3;
const FC_LINK: u16 = 4;
const FC_UNLINK: u16 = 5;
const FC_INODE: u16 = 6;
const FC_PAD: u16 = 7;
const FC_TAIL: u16 = 8;
const FC_HEAD: u16 = 9;
/// Fast-commit blocks when the journal superblock does not say (`JBD2_DEFAULT_FAST_COMMIT_BLOCKS`).
const FC_DEFAULT_BLOCKS: u64 = 256;

fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads journal block `j` into a buffer.
type ReadLog<'a> = dyn Fn(u64, &mut [u8]) -> Result<(), FsError> + 'a;

/// Read the fast-commit area (journal blocks `first..end`) as the kernel's recovery scans it:
/// a head tag of transaction `tid` first, then tags block by block until one that is not a
/// fast-commit tag. `None` when the area holds nothing of `tid` (stale or empty: nothing to
/// replay).
fn fast_commits(
    read: &ReadLog<'_>,
    bs: usize,
    first: u64,
    end: u64,
    tid: u32,
) -> Result<Option<FastCommits>, FsError> {
    let mut out = FastCommits {
        tid,
        ..Default::default()
    };
    let mut block = vec![0u8; bs];
    let mut j = first;
    while j < end {
        read(j, &mut block)?;
        let mut off = 0usize;
        let mut valid = false;
        while off + 4 <= bs {
            let (tag, len) = (le16(&block, off), usize::from(le16(&block, off + 2)));
            let val = off + 4;
            if val + len > bs {
                break;
            }
            let v = &block[val..val + len];
            match tag {
                FC_HEAD if j == first && off == 0 && len >= 8 => {
                    if le32(v, 4) != tid {
                        return Ok(None);
                    }
                }
                _ if j == first && off == 0 => return Ok(None),
                FC_ADD_RANGE if len >= 16 => {
                    out.inodes.insert(le32(v, 0));
                    // An `ext4_extent`: logical block, length (above 32768: unwritten), start.
                    let n = u64::from(le16(v, 8));
                    let n = if n > 32768 { n - 32768 } else { n };
                    let start = u64::from(le16(v, 10)) << 32 | u64::from(le32(v, 12));
                    if n > 0 && out.extents.len() < FC_EXTENTS {
                        out.extents.push((start, n));
                    }
                }
                FC_DEL_RANGE | FC_INODE if len >= 4 => {
                    out.inodes.insert(le32(v, 0));
                }
                FC_CREAT | FC_LINK | FC_UNLINK if len >= 8 => {
                    out.inodes.insert(le32(v, 4));
                    if out.names.len() < FC_NAMES {
                        out.names
                            .push(String::from_utf8_lossy(&v[8..]).into_owned());
                    }
                }
                FC_PAD => {}
                FC_TAIL if len >= 4 => {
                    if le32(v, 0) != tid {
                        break;
                    }
                    out.commits += 1;
                }
                _ => break,
            }
            valid = true;
            off = val + len;
        }
        if !valid {
            break;
        }
        j += 1;
    }
    out.blocks = (first, j - first);
    Ok((out.commits > 0 || !out.inodes.is_empty()).then_some(out))
}

impl Replay {
    /// Read the journal and collect the blocks of every committed transaction.
    pub fn read(src: &dyn Source, block_size: u64, map: &JournalMap) -> Result<Replay, FsError> {
        let ctx = "ext4 journal";
        let bs = usize::try_from(block_size).unwrap_or(usize::MAX);
        let read = |j: u64, buf: &mut [u8]| -> Result<(), FsError> {
            let at = *map
                .blocks
                .get(usize::try_from(j).unwrap_or(usize::MAX))
                .ok_or_else(|| corrupt(ctx, format!("log block {j} beyond the journal inode")))?;
            src.read_at(at, buf)
                .map_err(|e| io(&format!("{ctx} block {j}"), e))
        };
        let mut sb = vec![0u8; bs];
        read(0, &mut sb)?;
        if be32(&sb, 0) != JBD2_MAGIC || !matches!(be32(&sb, 4), SB_V1 | SB_V2) {
            return Err(corrupt(ctx, "no jbd2 superblock"));
        }
        if u64::from(be32(&sb, 0xC)) != block_size {
            return Err(corrupt(
                ctx,
                "journal block size differs from the filesystem's",
            ));
        }
        let maxlen = u64::from(be32(&sb, 0x10)).min(map.blocks.len() as u64);
        let first = u64::from(be32(&sb, 0x14));
        let mut seq = be32(&sb, 0x18);
        let start = u64::from(be32(&sb, 0x1C));
        let incompat = if be32(&sb, 4) == SB_V2 {
            be32(&sb, 0x28)
        } else {
            0
        };
        let mut out = Replay {
            copies: HashMap::new(),
            transactions: 0,
            fast_commits: None,
        };
        if start == 0 {
            return Ok(out); // clean: nothing to replay
        }
        if incompat & !INCOMPAT_KNOWN != 0 {
            return Err(incompatible(
                ctx,
                format!("unknown journal features {:#x}", incompat & !INCOMPAT_KNOWN),
            ));
        }
        // With fast commits the log ends where their area begins (the kernel's `j_last`).
        let full_len = maxlen;
        let fc_blocks = if incompat & INCOMPAT_FAST_COMMIT != 0 {
            match u64::from(be32(&sb, 0x54)) {
                0 => FC_DEFAULT_BLOCKS,
                n => n,
            }
        } else {
            0
        };
        let maxlen = maxlen.saturating_sub(fc_blocks);
        if first == 0 || first >= maxlen || start < first || start >= maxlen {
            return Err(corrupt(ctx, "log bounds in the journal superblock"));
        }
        let tag_bytes = if incompat & INCOMPAT_CSUM_V3 != 0 {
            16
        } else {
            8 + if incompat & INCOMPAT_CSUM_V2 != 0 {
                2
            } else {
                0
            } + if incompat & INCOMPAT_64BIT != 0 { 4 } else { 0 }
        };
        let tail = if incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 {
            4
        } else {
            0
        };
        let wide = incompat & INCOMPAT_64BIT != 0;
        let next = |j: u64| if j + 1 >= maxlen { first } else { j + 1 };

        // One pass: gather each transaction's writes and revokes, keep it when its commit
        // block follows. Revokes apply to writes of the same or earlier transactions, so
        // writes are resolved after the walk.
        let mut writes: Vec<(u32, u64, Copy)> = Vec::new(); // (sequence, fs block, copy)
        let mut revoked: HashMap<u64, u32> = HashMap::new(); // fs block -> newest revoking seq
        let mut pending_writes: Vec<(u64, Copy)> = Vec::new();
        let mut pending_revokes: Vec<u64> = Vec::new();
        let mut j = start;
        let mut block = vec![0u8; bs];
        // Every log block counts, descriptor tags' data blocks included: a descriptor whose
        // tags wrap around the log again and again (or a journal inode whose extents map
        // every log block onto one descriptor) ends the walk instead of collecting 2^31 tags.
        let limit = MAX_LOG_BLOCKS.min(maxlen + 1);
        let mut walked = 0u64;
        'log: loop {
            walked += 1;
            if walked > limit {
                break;
            }
            read(j, &mut block)?;
            if be32(&block, 0) != JBD2_MAGIC || be32(&block, 8) != seq {
                break; // end of the log
            }
            match be32(&block, 4) {
                DESCRIPTOR => {
                    let mut off = 12usize;
                    let mut data = j;
                    let end = bs.saturating_sub(tail);
                    while off + tag_bytes <= end {
                        let lo = u64::from(be32(&block, off));
                        let (flags, hi) = if tag_bytes == 16 {
                            (be32(&block, off + 4), u64::from(be32(&block, off + 8)))
                        } else {
                            let flags =
                                u32::from(u16::from_be_bytes([block[off + 6], block[off + 7]]));
                            let hi = if wide {
                                u64::from(be32(&block, off + 8))
                            } else {
                                0
                            };
                            (flags, hi)
                        };
                        data = next(data);
                        walked += 1;
                        if walked > limit {
                            break 'log;
                        }
                        let at = *map.blocks.get(data as usize).ok_or_else(|| {
                            corrupt(ctx, format!("log block {data} beyond the journal inode"))
                        })?;
                        pending_writes.push((
                            lo | hi << 32,
                            Copy {
                                at,
                                escaped: flags & FLAG_ESCAPE != 0,
                            },
                        ));
                        off += tag_bytes;
                        if flags & FLAG_SAME_UUID == 0 {
                            off += 16;
                        }
                        if flags & FLAG_LAST_TAG != 0 {
                            break;
                        }
                    }
                    j = data;
                }
                COMMIT => {
                    for (b, c) in pending_writes.drain(..) {
                        writes.push((seq, b, c));
                    }
                    for b in pending_revokes.drain(..) {
                        revoked.insert(b, seq);
                    }
                    out.transactions += 1;
                    seq = seq.wrapping_add(1);
                }
                REVOKE => {
                    let count = (be32(&block, 12) as usize).min(bs);
                    let width = if wide { 8 } else { 4 };
                    let mut off = 16usize;
                    while off + width <= count {
                        let b = if wide {
                            u64::from(be32(&block, off)) << 32 | u64::from(be32(&block, off + 4))
                        } else {
                            u64::from(be32(&block, off))
                        };
                        pending_revokes.push(b);
                        off += width;
                    }
                }
                _ => break,
            }
            j = next(j);
        }
        if fc_blocks > 0 {
            let end = (full_len + 1).min(map.blocks.len() as u64);
            out.fast_commits = fast_commits(&read, bs, maxlen + 1, end, seq)?;
        }
        // Later transactions overwrite earlier ones; a block revoked in transaction R is not
        // replayed from any transaction up to R.
        for (s, b, c) in writes {
            if revoked.get(&b).is_some_and(|&r| !seq_after(s, r)) {
                continue;
            }
            out.copies.insert(b, c);
        }
        Ok(out)
    }

    /// Whether no block needs replaying (fast commits aside).
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }
}

/// `a` comes after `b` in jbd2's wrapping sequence space.
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// A volume with the journal's committed blocks laid over their home locations.
pub(super) struct Journaled {
    pub src: SharedSource,
    pub block_size: u64,
    pub replay: Replay,
}

impl Source for Journaled {
    fn len(&self) -> u64 {
        self.src.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let bs = self.block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let block = pos / bs;
            let within = pos % bs;
            let n = ((bs - within) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match self.replay.copies.get(&block) {
                Some(c) => {
                    self.src.read_at(c.at + within, dst)?;
                    if c.escaped && within < 4 {
                        let magic = JBD2_MAGIC.to_be_bytes();
                        for (i, b) in dst.iter_mut().take(4 - within as usize).enumerate() {
                            *b = magic[within as usize + i];
                        }
                    }
                }
                None => self.src.read_at(pos, dst)?,
            }
            done += n;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{} (journal replayed)", self.src.describe())
    }

    fn prefetch(&self, offset: u64, len: u64) {
        self.src.prefetch(offset, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_comparison_wraps() {
        assert!(seq_after(2, 1));
        assert!(!seq_after(1, 1));
        assert!(seq_after(0, u32::MAX));
    }

    /// A v2 journal of 1 KiB blocks and `maxlen` blocks, log starting at block 1, sequence 1.
    fn journal(maxlen: u32) -> Vec<u8> {
        let mut j = vec![0u8; maxlen as usize * 1024];
        for (at, v) in [
            (0, JBD2_MAGIC),
            (4, SB_V2),
            (0xC, 1024),
            (0x10, maxlen),
            (0x14, 1),
            (0x18, 1),
            (0x1C, 1),
        ] {
            j[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        j
    }

    fn header(j: &mut [u8], block: usize, kind: u32, seq: u32) {
        let b = block * 1024;
        j[b..b + 4].copy_from_slice(&JBD2_MAGIC.to_be_bytes());
        j[b + 4..b + 8].copy_from_slice(&kind.to_be_bytes());
        j[b + 8..b + 12].copy_from_slice(&seq.to_be_bytes());
    }

    #[test]
    fn a_descriptor_whose_tags_wrap_around_the_log_is_not_replayed() {
        // An 8-block log whose one descriptor (block 1) has 126 tags: their data blocks wrap
        // around the log 18 times, and the block after the last one is a commit. Counting
        // only descriptor blocks against the log length, a journal of 2^22 blocks like this
        // collected 2^22 * 512 writes (48 GB).
        let mut j = journal(8);
        header(&mut j, 1, DESCRIPTOR, 1);
        for i in 0..126usize {
            let t = 1024 + 12 + i * 8;
            j[t..t + 4].copy_from_slice(&(100 + i as u32).to_be_bytes());
            j[t + 6..t + 8].copy_from_slice(&(FLAG_SAME_UUID as u16).to_be_bytes());
        }
        // The last tag's data is block 1 (126 = 18 * 7), so the commit is read at block 2.
        header(&mut j, 2, COMMIT, 1);
        let map = JournalMap {
            blocks: (0..8).map(|i| i * 1024).collect(),
        };
        let src = crate::source::MemSource::new(j, "journal");
        let replay = Replay::read(&src, 1024, &map).unwrap();
        assert!(replay.is_empty(), "{} blocks replayed", replay.copies.len());
        assert_eq!(replay.transactions, 0);
    }

    #[test]
    fn a_transaction_is_replayed() {
        // The same log with two tags: the commit at block 4 counts.
        let mut j = journal(8);
        header(&mut j, 1, DESCRIPTOR, 1);
        for i in 0..2usize {
            let t = 1024 + 12 + i * 8;
            j[t..t + 4].copy_from_slice(&(100 + i as u32).to_be_bytes());
            let flags = FLAG_SAME_UUID | if i == 1 { FLAG_LAST_TAG } else { 0 };
            j[t + 6..t + 8].copy_from_slice(&(flags as u16).to_be_bytes());
        }
        header(&mut j, 4, COMMIT, 1);
        let map = JournalMap {
            blocks: (0..8).map(|i| i * 1024).collect(),
        };
        let src = crate::source::MemSource::new(j, "journal");
        let replay = Replay::read(&src, 1024, &map).unwrap();
        assert_eq!(replay.transactions, 1);
        assert_eq!(replay.copies[&101].at, 3 * 1024);
    }
}
