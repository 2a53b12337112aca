//! ext2/3/4 inodes: the fields amiscan reports, and where the content lives (extent tree,
//! classic block map, or inline in the inode).

use super::{Ctx, corrupt, crc32c, io, le16, le32};
use crate::fs::{EntryKind, FsError};
use std::collections::HashSet;

const EXTENT_MAGIC: u16 = 0xF30A;
/// Depth of an extent tree (the kernel allows 5).
const MAX_DEPTH: u16 = 5;
/// Extents (or block-map runs) of one file kept in memory: 1 Mi runs is 24 MiB.
const MAX_RUNS: usize = 1 << 20;

/// `i_flags` bits.
pub(super) const ENCRYPT_FL: u32 = 0x800;
pub(super) const EXTENTS_FL: u32 = 0x8_0000;
pub(super) const INLINE_DATA_FL: u32 = 0x1000_0000;

/// One run of a file: `len` blocks from logical block `logical`, stored from physical block
/// `phys`, or reading as zeros when `uninit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub logical: u64,
    pub phys: u64,
    pub len: u64,
    pub uninit: bool,
}

/// A parsed inode.
pub(super) struct Inode {
    pub ino: u64,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub flags: u32,
    /// `i_links_count`: 0 for a free inode, or one on the orphan list.
    pub links: u16,
    /// `i_dtime`: deletion time, or on the orphan list the next orphan's inode number.
    pub dtime: u32,
    /// `i_blocks` (in 512-byte units unless huge_file says otherwise; only compared with 0).
    blocks: u64,
    file_acl: u64,
    /// `i_block`: extent root, block map or inline bytes.
    pub iblock: [u8; 60],
    /// The whole on-disk inode (for in-inode extended attributes).
    raw: Vec<u8>,
    /// Seed of this inode's metadata checksums (extent and directory blocks), when the
    /// filesystem has them.
    pub csum_seed: Option<u32>,
}

impl Inode {
    /// Byte offset of inode `ino` on the volume, when its group's inode table is known (for
    /// prefetch hints; [`Inode::read`] checks everything).
    pub fn location(ctx: &Ctx, ino: u64) -> Option<u64> {
        let sb = &ctx.sb;
        if ino == 0 || ino > sb.inodes {
            return None;
        }
        let table = *ctx
            .inode_tables
            .get(usize::try_from((ino - 1) / sb.inodes_per_group).ok()?)?;
        table
            .checked_mul(sb.block_size)?
            .checked_add(((ino - 1) % sb.inodes_per_group) * sb.inode_size)
    }

    /// Read inode `ino`.
    pub fn read(ctx: &Ctx, ino: u64) -> Result<Inode, FsError> {
        let sb = &ctx.sb;
        if ino == 0 || ino > sb.inodes {
            return Err(corrupt(
                &format!("ext4 inode {ino}"),
                format!("inode number outside 1..={}", sb.inodes),
            ));
        }
        let group = (ino - 1) / sb.inodes_per_group;
        let index = (ino - 1) % sb.inodes_per_group;
        let table = ctx
            .inode_tables
            .get(usize::try_from(group).unwrap_or(usize::MAX))
            .copied()
            .unwrap_or(0);
        let off = index * sb.inode_size;
        let block = table.saturating_add(off / sb.block_size);
        if table == 0 || block >= sb.blocks {
            return Err(corrupt(
                &format!("ext4 inode {ino}"),
                format!("inode table of group {group} at block {table}, outside the filesystem"),
            ));
        }
        let mut raw = vec![0u8; sb.inode_size.min(1024) as usize];
        let at = table * sb.block_size + off;
        ctx.src
            .read_at(at, &mut raw)
            .map_err(|e| io(&format!("ext4 inode {ino} (byte {at})"), e))?;
        Self::from_raw(ctx, ino, raw)
    }

    /// Parse inode `ino` from its on-disk bytes (read elsewhere, as the inode sweep reads
    /// whole runs of a table) and check its checksum.
    pub fn from_raw(ctx: &Ctx, ino: u64, raw: Vec<u8>) -> Result<Inode, FsError> {
        let mut inode = Self::parse(ino, raw);
        if let Some(seed) = ctx.sb.csum_seed {
            inode.verify(seed)?;
        }
        Ok(inode)
    }

    /// Check the inode's `metadata_csum` checksum (crc32c seeded with the filesystem seed, the
    /// inode number and generation, over the inode with its two checksum halves zeroed).
    fn verify(&mut self, fs_seed: u32) -> Result<(), FsError> {
        let raw = &self.raw;
        let ino = u32::try_from(self.ino).unwrap_or(u32::MAX).to_le_bytes();
        let seed = crc32c(fs_seed, &[&ino, &raw[0x64..0x68]]);
        let hi = raw.len() > 128 && 128 + usize::from(le16(raw, 0x80)) >= 0x84;
        let sum = if hi {
            crc32c(
                seed,
                &[
                    &raw[..0x7C],
                    &[0, 0],
                    &raw[0x7E..0x82],
                    &[0, 0],
                    &raw[0x84..],
                ],
            )
        } else {
            crc32c(seed, &[&raw[..0x7C], &[0, 0], &raw[0x7E..]])
        };
        let stored = u32::from(le16(raw, 0x7C))
            | if hi {
                u32::from(le16(raw, 0x82)) << 16
            } else {
                0
            };
        let mask = if hi { u32::MAX } else { 0xFFFF };
        if sum & mask != stored {
            return Err(corrupt(
                &format!("ext4 inode {}", self.ino),
                "checksum mismatch (metadata_csum): the inode is damaged",
            ));
        }
        self.csum_seed = Some(seed);
        Ok(())
    }

    fn parse(ino: u64, raw: Vec<u8>) -> Inode {
        let extra = if raw.len() > 128 {
            usize::from(le16(&raw, 0x80))
        } else {
            0
        };
        let has_extra = |end: usize| raw.len() > 128 && 128 + extra >= end;
        let mut mtime = i64::from(le32(&raw, 0x10) as i32);
        if has_extra(0x8C) {
            mtime += i64::from(le32(&raw, 0x88) & 3) << 32;
        }
        let mut iblock = [0u8; 60];
        iblock.copy_from_slice(&raw[0x28..0x64]);
        Inode {
            ino,
            mode: le16(&raw, 0),
            uid: u32::from(le16(&raw, 0x02)) | u32::from(le16(&raw, 0x78)) << 16,
            gid: u32::from(le16(&raw, 0x18)) | u32::from(le16(&raw, 0x7A)) << 16,
            size: u64::from(le32(&raw, 0x04)) | u64::from(le32(&raw, 0x6C)) << 32,
            mtime,
            flags: le32(&raw, 0x20),
            links: le16(&raw, 0x1A),
            dtime: le32(&raw, 0x14),
            blocks: u64::from(le32(&raw, 0x1C)) | u64::from(le16(&raw, 0x74)) << 32,
            file_acl: u64::from(le32(&raw, 0x68)) | u64::from(le16(&raw, 0x76)) << 32,
            iblock,
            raw,
            csum_seed: None,
        }
    }

    /// Entry type from the mode.
    pub fn kind(&self) -> Option<EntryKind> {
        match self.mode & 0xF000 {
            0x8000 => Some(EntryKind::File),
            0x4000 => Some(EntryKind::Dir),
            0xA000 => Some(EntryKind::Symlink),
            0x1000 | 0x2000 | 0x6000 | 0xC000 => Some(EntryKind::Special),
            _ => None,
        }
    }

    pub fn is_inline(&self) -> bool {
        self.flags & INLINE_DATA_FL != 0
    }

    /// A symlink whose target is stored in `i_block` (ext4's `ext4_inode_is_fast_symlink`).
    pub fn is_fast_symlink(&self, block_size: u64) -> bool {
        let acl_blocks = if self.file_acl != 0 {
            block_size / 512
        } else {
            0
        };
        self.flags & (EXTENTS_FL | INLINE_DATA_FL) == 0
            && self.size < 60
            && self.blocks.saturating_sub(acl_blocks) == 0
    }

    /// The inline content: the first 60 bytes in `i_block`, the rest in the `system.data`
    /// extended attribute inside the inode.
    pub fn inline_data(&self) -> Result<Vec<u8>, FsError> {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        let mut out = self.iblock[..size.min(60)].to_vec();
        if size > 60 {
            let more = self.system_data().ok_or_else(|| {
                corrupt(
                    &format!("ext4 inode {}", self.ino),
                    "inline data larger than i_block without a system.data attribute",
                )
            })?;
            if more.len() < size - 60 {
                return Err(corrupt(
                    &format!("ext4 inode {}", self.ino),
                    "inline data shorter than the file size",
                ));
            }
            out.extend_from_slice(&more[..size - 60]);
        }
        Ok(out)
    }

    /// The value of the in-inode `system.data` attribute (inline data beyond `i_block`).
    pub fn system_data(&self) -> Option<&[u8]> {
        let extra = usize::from(le16(&self.raw, 0x80));
        let start = 128usize.checked_add(extra)?;
        let area = self.raw.get(start..)?;
        if le32(area, 0) != 0xEA02_0000 {
            return None;
        }
        let entries = area.get(4..)?;
        let mut off = 0usize;
        while off + 16 <= entries.len() {
            let name_len = usize::from(entries[off]);
            let index = entries[off + 1];
            if name_len == 0 && index == 0 {
                break;
            }
            let value_off = usize::from(le16(entries, off + 2));
            let value_inum = le32(entries, off + 4);
            let value_size = le32(entries, off + 8) as usize;
            let name = entries.get(off + 16..off + 16 + name_len)?;
            if index == 7 && name == b"data" && value_inum == 0 {
                return entries.get(value_off..value_off.checked_add(value_size)?);
            }
            off += (16 + name_len).next_multiple_of(4);
        }
        None
    }

    /// Where the content lives, as runs sorted by logical block.
    pub fn runs(&self, ctx: &Ctx) -> Result<Vec<Run>, FsError> {
        let mut out = Vec::new();
        if self.flags & EXTENTS_FL != 0 {
            let mut tree = ExtentTree {
                ctx,
                ino: self.ino,
                csum_seed: self.csum_seed,
                seen: HashSet::new(),
                out: &mut out,
            };
            tree.node(&self.iblock, MAX_DEPTH)?;
            out.sort_unstable_by_key(|r| r.logical);
            for w in out.windows(2) {
                if w[0].logical + w[0].len > w[1].logical {
                    return Err(corrupt(
                        &format!("ext4 inode {}", self.ino),
                        format!("overlapping extents at logical block {}", w[1].logical),
                    ));
                }
            }
        } else {
            let needed = self.size.div_ceil(ctx.sb.block_size);
            let mut bm = BlockMap {
                ctx,
                ino: self.ino,
                needed,
                next: 0,
                seen: HashSet::new(),
                out: &mut out,
            };
            for i in 0..15 {
                if bm.next >= needed {
                    break;
                }
                let b = u64::from(le32(&self.iblock, i * 4));
                match i {
                    0..=11 => bm.leaf(b)?,
                    12 => bm.indirect(b, 1)?,
                    13 => bm.indirect(b, 2)?,
                    _ => bm.indirect(b, 3)?,
                }
            }
        }
        // With `shared_blocks` (a read-only filesystem whose identical blocks were merged,
        // as Android's `e2fsdroid -s` builds them) a file may map one block at several
        // offsets: valid, and reading it costs no more than its size. Directories keep the
        // check (their listing is what a loop would multiply).
        if !(ctx.sb.shared_blocks() && self.kind() == Some(EntryKind::File)) {
            shared_blocks(self.ino, &out)?;
        }
        Ok(out)
    }

    /// The first physical byte of the content, when the inode itself says (for read ordering).
    pub fn first_byte(&self, block_size: u64) -> u64 {
        if self.flags & EXTENTS_FL != 0 {
            if le16(&self.iblock, 0) == EXTENT_MAGIC
                && le16(&self.iblock, 2) > 0
                && le16(&self.iblock, 6) == 0
            {
                let phys = u64::from(le32(&self.iblock, 12 + 8))
                    | u64::from(le16(&self.iblock, 12 + 6)) << 32;
                return phys.saturating_mul(block_size);
            }
            return 0;
        }
        if self.is_inline() {
            return 0;
        }
        u64::from(le32(&self.iblock, 0)).saturating_mul(block_size)
    }
}

fn push_run(out: &mut Vec<Run>, run: Run, ino: u64) -> Result<(), FsError> {
    if let Some(last) = out.last_mut()
        && !last.uninit
        && !run.uninit
        && last.logical + last.len == run.logical
        && last.phys + last.len == run.phys
    {
        last.len += run.len;
        return Ok(());
    }
    if out.len() >= MAX_RUNS {
        return Err(corrupt(
            &format!("ext4 inode {ino}"),
            format!("more than {MAX_RUNS} extents"),
        ));
    }
    out.push(run);
    Ok(())
}

/// A block that two runs of one file claim: a loop in the extent tree or block map, or a
/// corruption that would read the same blocks again and again (a directory of 2^20 logical
/// blocks all mapped onto a few physical ones lists millions of entries).
fn shared_blocks(ino: u64, runs: &[Run]) -> Result<(), FsError> {
    let mut by_phys: Vec<&Run> = runs.iter().filter(|r| !r.uninit).collect();
    by_phys.sort_unstable_by_key(|r| r.phys);
    for w in by_phys.windows(2) {
        if w[0].phys + w[0].len > w[1].phys {
            return Err(corrupt(
                &format!("ext4 inode {ino}"),
                format!(
                    "physical block {} mapped at logical blocks {} and {}",
                    w[1].phys,
                    w[0].logical + (w[1].phys - w[0].phys),
                    w[1].logical
                ),
            ));
        }
    }
    Ok(())
}

/// Walks one file's extent tree. Every index or leaf block is read once: a tree whose index
/// entries point at the same block twice (or back at an ancestor) is refused, so the work is
/// bounded by the blocks of the filesystem, never by breadth^depth.
struct ExtentTree<'a> {
    ctx: &'a Ctx,
    ino: u64,
    /// The inode's checksum seed (`metadata_csum`): index blocks carry a tail checksum.
    csum_seed: Option<u32>,
    /// Tree blocks read so far.
    seen: HashSet<u64>,
    out: &'a mut Vec<Run>,
}

impl ExtentTree<'_> {
    fn node(&mut self, node: &[u8], depth_left: u16) -> Result<(), FsError> {
        let ino = self.ino;
        let ctx_s = || format!("ext4 inode {ino} extent tree");
        if le16(node, 0) != EXTENT_MAGIC {
            return Err(corrupt(&ctx_s(), "bad extent header magic"));
        }
        let entries = usize::from(le16(node, 2));
        let depth = le16(node, 6);
        if 12 + entries * 12 > node.len() {
            return Err(corrupt(&ctx_s(), "more extents than fit the node"));
        }
        if depth > depth_left {
            return Err(corrupt(&ctx_s(), format!("tree deeper than {MAX_DEPTH}")));
        }
        let sb = &self.ctx.sb;
        for i in 0..entries {
            let e = &node[12 + i * 12..24 + i * 12];
            if depth == 0 {
                let raw_len = u64::from(le16(e, 4));
                let (len, uninit) = if raw_len > 32768 {
                    (raw_len - 32768, true)
                } else {
                    (raw_len, false)
                };
                let phys = u64::from(le32(e, 8)) | u64::from(le16(e, 6)) << 32;
                if len == 0 {
                    continue;
                }
                if !uninit && phys.saturating_add(len) > sb.blocks {
                    return Err(corrupt(
                        &ctx_s(),
                        format!("extent at block {phys} (+{len}) outside the filesystem"),
                    ));
                }
                let run = Run {
                    logical: u64::from(le32(e, 0)),
                    phys,
                    len,
                    uninit,
                };
                push_run(self.out, run, ino)?;
            } else {
                let child = u64::from(le32(e, 4)) | u64::from(le16(e, 8)) << 32;
                if child == 0 || child >= sb.blocks {
                    return Err(corrupt(
                        &ctx_s(),
                        format!("index to block {child}, outside the filesystem"),
                    ));
                }
                if !self.seen.insert(child) || self.seen.len() > MAX_RUNS {
                    return Err(corrupt(
                        &ctx_s(),
                        format!("block {child} is indexed twice (the tree loops)"),
                    ));
                }
                let mut block = vec![0u8; sb.block_size as usize];
                self.ctx
                    .src
                    .read_at(child * sb.block_size, &mut block)
                    .map_err(|e| io(&format!("{} block {child}", ctx_s()), e))?;
                if let Some(seed) = self.csum_seed {
                    // The tail checksum follows the entries the header has room for.
                    let tail = 12 + 12 * usize::from(le16(&block, 4));
                    if tail + 4 > block.len()
                        || crc32c(seed, &[&block[..tail]]) != le32(&block, tail)
                    {
                        return Err(corrupt(
                            &ctx_s(),
                            format!("block {child}: checksum mismatch (metadata_csum)"),
                        ));
                    }
                }
                self.node(&block, depth - 1)?;
            }
        }
        Ok(())
    }
}

/// The classic (ext2/3) direct and indirect block map.
struct BlockMap<'a> {
    ctx: &'a Ctx,
    ino: u64,
    /// Blocks the file size covers.
    needed: u64,
    /// Next logical block.
    next: u64,
    /// Indirect blocks read so far: each is read once (a map that reuses one loops).
    seen: HashSet<u64>,
    out: &'a mut Vec<Run>,
}

impl BlockMap<'_> {
    fn leaf(&mut self, b: u64) -> Result<(), FsError> {
        if self.next >= self.needed {
            return Ok(());
        }
        if b != 0 {
            if b >= self.ctx.sb.blocks {
                return Err(corrupt(
                    &format!("ext4 inode {} block map", self.ino),
                    format!("block {b} outside the filesystem"),
                ));
            }
            let run = Run {
                logical: self.next,
                phys: b,
                len: 1,
                uninit: false,
            };
            push_run(self.out, run, self.ino)?;
        }
        self.next += 1;
        Ok(())
    }

    /// An indirect block of `level` (1 = single indirect).
    fn indirect(&mut self, b: u64, level: u32) -> Result<(), FsError> {
        let per = self.ctx.sb.block_size / 4;
        let span = per.saturating_pow(level);
        if b == 0 {
            self.next = self.next.saturating_add(span); // a hole
            return Ok(());
        }
        if b >= self.ctx.sb.blocks {
            return Err(corrupt(
                &format!("ext4 inode {} block map", self.ino),
                format!("indirect block {b} outside the filesystem"),
            ));
        }
        if !self.seen.insert(b) {
            return Err(corrupt(
                &format!("ext4 inode {} block map", self.ino),
                format!("indirect block {b} is used twice (the map loops)"),
            ));
        }
        let mut block = vec![0u8; self.ctx.sb.block_size as usize];
        self.ctx
            .src
            .read_at(b * self.ctx.sb.block_size, &mut block)
            .map_err(|e| io(&format!("ext4 inode {} indirect block {b}", self.ino), e))?;
        for i in 0..per as usize {
            if self.next >= self.needed {
                break;
            }
            let child = u64::from(le32(&block, i * 4));
            if level == 1 {
                self.leaf(child)?;
            } else {
                self.indirect(child, level - 1)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testimg::{self, le16 as get16, put16, put32};
    use super::*;

    fn raw() -> Vec<u8> {
        vec![0u8; 256]
    }

    #[test]
    fn fields_parse_with_high_halves() {
        let mut r = raw();
        r[0..2].copy_from_slice(&0o100644u16.to_le_bytes());
        r[2..4].copy_from_slice(&1u16.to_le_bytes());
        r[0x78..0x7A].copy_from_slice(&2u16.to_le_bytes());
        r[0x04..0x08].copy_from_slice(&5u32.to_le_bytes());
        r[0x6C..0x70].copy_from_slice(&1u32.to_le_bytes());
        r[0x10..0x14].copy_from_slice(&(-1i32).to_le_bytes());
        r[0x80..0x82].copy_from_slice(&32u16.to_le_bytes());
        r[0x88..0x8C].copy_from_slice(&1u32.to_le_bytes());
        let i = Inode::parse(7, r);
        assert_eq!(i.kind(), Some(EntryKind::File));
        assert_eq!(i.uid, 0x2_0001);
        assert_eq!(i.size, (1 << 32) + 5);
        assert_eq!(i.mtime, (1i64 << 32) - 1);
    }

    #[test]
    fn system_data_attribute_is_found_and_bounded() {
        let mut r = raw();
        r[0x80..0x82].copy_from_slice(&32u16.to_le_bytes());
        let a = 128 + 32;
        r[a..a + 4].copy_from_slice(&0xEA02_0000u32.to_le_bytes());
        let e = a + 4;
        r[e] = 4; // name length
        r[e + 1] = 7; // system.
        r[e + 2..e + 4].copy_from_slice(&40u16.to_le_bytes());
        r[e + 8..e + 12].copy_from_slice(&3u32.to_le_bytes());
        r[e + 16..e + 20].copy_from_slice(b"data");
        r[e + 40..e + 43].copy_from_slice(b"xyz");
        let mut i = Inode::parse(12, r.clone());
        assert_eq!(i.system_data(), Some(&b"xyz"[..]));
        i.size = 63;
        i.flags = INLINE_DATA_FL;
        i.iblock = [b'a'; 60];
        assert_eq!(&i.inline_data().unwrap()[58..], b"aaxyz");
        i.size = 64;
        assert!(i.inline_data().is_err(), "value shorter than the size");
        // A value size pointing past the inode.
        r[e + 8..e + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Inode::parse(12, r).system_data(), None);
    }

    #[test]
    fn an_extent_index_block_reached_twice_is_refused() {
        // /var/frag: 24 extents under one index block. A second root index entry pointing at
        // the same block makes the tree a DAG; five levels of such entries would read
        // 4 * 340^4 blocks.
        let img = testimg::build("ext4");
        let mut b = img.bytes();
        let root = img.inode_at("/var/frag") + 0x28;
        assert_eq!(
            (get16(&b, root + 2), get16(&b, root + 6)),
            (1, 1),
            "one index entry"
        );
        put16(&mut b, root + 2, 2);
        b.copy_within(root + 12..root + 24, root + 24);
        put32(&mut b, root + 24, 1000); // covers logical blocks from 1000
        let (_fs, r) = testimg::open(b).unwrap();
        let e = testimg::entry(r.as_ref(), b"/var", b"frag");
        let err = testimg::read(r.as_ref(), &e).unwrap_err();
        assert!(err.contains("indexed twice"), "{err}");
    }

    #[test]
    fn a_block_map_reusing_an_indirect_block_is_refused() {
        // ext2 /var/sparse: "tail" at 300 KiB sits under the double-indirect block. Every
        // entry of that block pointing at the same indirect block, in a 64 MiB file, would
        // read it 256 times (1024^2 times under a triple-indirect block of 4 KiB blocks).
        let img = testimg::build("ext2");
        let stat = img.debugfs("stat /var/sparse");
        let num = |tag: &str| -> usize {
            let rest = stat
                .split(tag)
                .nth(1)
                .unwrap_or_else(|| panic!("{tag} in {stat}"));
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (dind, ind) = (num("(DIND):"), num("(IND):"));
        let mut b = img.bytes();
        for i in 0..256 {
            put32(&mut b, dind * 1024 + i * 4, ind as u32);
        }
        put32(&mut b, img.inode_at("/var/sparse") + 4, 64 << 20);
        let (_fs, r) = testimg::open(b).unwrap();
        let e = testimg::entry(r.as_ref(), b"/var", b"sparse");
        let err = testimg::read(r.as_ref(), &e).unwrap_err();
        assert!(err.contains("used twice"), "{err}");
    }

    #[test]
    fn a_directory_mapping_its_blocks_twice_is_refused() {
        // /etc: one extent in the inode. A second extent mapping the same block further on
        // (and a larger size) would list every entry twice; 84 such extents in a leaf, or a
        // 1 GiB size, list millions.
        let img = testimg::build("ext4");
        let mut b = img.bytes();
        let root = img.inode_at("/etc") + 0x28;
        assert_eq!(
            (get16(&b, root + 2), get16(&b, root + 6)),
            (1, 0),
            "one leaf extent"
        );
        let len = get16(&b, root + 12 + 4);
        put16(&mut b, root + 2, 2);
        b.copy_within(root + 12..root + 24, root + 24);
        put32(&mut b, root + 24, u32::from(len));
        put32(&mut b, img.inode_at("/etc") + 4, u32::from(len) * 2 * 1024);
        let (_fs, r) = testimg::open(b).unwrap();
        let err = r.list_dir(b"/etc").unwrap_err().to_string();
        assert!(err.contains("mapped at logical blocks 0 and 1"), "{err}");
    }

    #[test]
    fn an_inode_table_at_the_end_of_the_block_space_is_an_error() {
        // A group descriptor's 64-bit inode table address near 2^64: the block of an inode
        // past the first one overflowed.
        let img = testimg::build("ext4");
        let src: crate::source::SharedSource =
            std::sync::Arc::new(crate::source::MemSource::new(img.bytes(), "test"));
        let sb = super::super::sb::Super::read(src.as_ref()).unwrap();
        let ctx = Ctx {
            src,
            sb,
            inode_tables: vec![u64::MAX],
            warnings: Default::default(),
        };
        let err = Inode::read(&ctx, 12).err().unwrap().to_string();
        assert!(err.contains("outside the filesystem"), "{err}");
    }
}
