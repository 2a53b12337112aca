//! The ext2/3/4 superblock and group descriptors: where every group's inode table is.

use super::{corrupt, crc32c, incompatible, io, le16, le32};
use crate::source::Source;

/// Byte offset of the primary superblock.
pub(super) const SB_OFF: u64 = 1024;
const MAGIC: u16 = 0xEF53;

/// `s_feature_incompat` bits.
pub(super) mod incompat {
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const JOURNAL_DEV: u32 = 0x8;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x1_0000;
    pub const CASEFOLD: u32 = 0x2_0000;
    /// Every bit the native reader understands.
    pub const KNOWN: u32 = FILETYPE
        | RECOVER
        | META_BG
        | EXTENTS
        | BIT64
        | MMP
        | FLEX_BG
        | EA_INODE
        | CSUM_SEED
        | LARGEDIR
        | INLINE_DATA
        | ENCRYPT
        | CASEFOLD;
}

const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
/// `bigalloc`: the block bitmaps count clusters of `2^(s_log_cluster_size - s_log_block_size)`
/// blocks; extents, inode tables and descriptors still count blocks.
const RO_COMPAT_BIGALLOC: u32 = 0x200;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// `shared_blocks`: blocks may be mapped by several files, or several times by one.
const RO_COMPAT_SHARED_BLOCKS: u32 = 0x4000;
/// `s_feature_compat`: the filesystem has a journal (an inode of its own, or a device).
const COMPAT_HAS_JOURNAL: u32 = 0x4;
/// `s_feature_compat`: the orphan list lives in a file (`s_orphan_file_inum`).
const COMPAT_ORPHAN_FILE: u32 = 0x1000;
/// Groups handled (a 1 PiB filesystem of 4 KiB blocks has 8 Mi groups).
const MAX_GROUPS: u64 = 1 << 24;

/// Where the backup superblocks of [`BACKUP_GROUPS`] are for each block size (1 KiB to 64 KiB) with the
/// default `8 × block size` blocks per group: what `e2fsck` tries when the primary is gone.
pub(crate) fn backup_offsets() -> impl Iterator<Item = u64> {
    BACKUP_GROUPS.into_iter().flat_map(|group| {
        (0..=6u32).map(move |log| {
            let bs = 1024u64 << log;
            let first_data_block = u64::from(bs == 1024);
            (first_data_block + group * 8 * bs) * bs
        })
    })
}

/// The groups whose backup superblocks are looked for, in order: with `sparse_super` the
/// backups sit in groups 1 and the powers of 3, 5 and 7, so when group 1's copy is damaged
/// too the next ones are tried, as `e2fsck -b` lets one do by hand.
const BACKUP_GROUPS: [u64; 5] = [1, 3, 5, 7, 9];

/// Whether the bytes at one of [`backup_offsets`] look like an ext2/3/4 backup superblock
/// (magic, a `s_block_group_nr` of a backup group, and the geometry it states puts that group
/// at `at`): for the probe.
pub(crate) fn is_backup_super(at: u64, sb: &[u8]) -> bool {
    backup_group(at, sb).is_some()
}

/// The group whose backup superblock `sb` (read at `at`) is, when its geometry agrees.
fn backup_group(at: u64, sb: &[u8]) -> Option<u64> {
    let log = le32(sb, 0x18);
    let group = u64::from(le16(sb, 0x5A));
    if log > 6 || le16(sb, 0x38) != MAGIC || !BACKUP_GROUPS.contains(&group) {
        return None;
    }
    let bs = 1024u64 << log;
    let first =
        u64::from(le32(sb, 0x14)).checked_add(group.checked_mul(u64::from(le32(sb, 0x20)))?)?;
    (first.checked_mul(bs) == Some(at)).then_some(first)
}

/// `bg_flags` of a descriptor taken from a backup table, which the kernel never updates:
/// its `INODE_UNINIT`/`BLOCK_UNINIT`/`bg_itable_unused` are from `mke2fs` time, so they are
/// cleared (every inode and bitmap is read), as `libext2fs` does when it opens from a backup.
const UNINIT_FLAGS: u16 = 0x1 | 0x2;

/// A group descriptor's fields amiscan uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Desc {
    /// Block of the group's block bitmap.
    pub block_bitmap: u64,
    /// Block of the group's inode bitmap.
    pub inode_bitmap: u64,
    /// First block of the group's inode table.
    pub inode_table: u64,
    /// `bg_flags` (`BLOCK_UNINIT` = 0x2: the bitmap was never written, every block is free;
    /// `INODE_UNINIT` = 0x1: no inode of the group was ever used).
    pub flags: u16,
    /// `bg_itable_unused`: inodes at the end of the group's table never used (meaningful with
    /// group checksums only).
    pub itable_unused: u64,
}

/// What the reader needs from the superblock.
#[derive(Debug, Clone)]
pub(crate) struct Super {
    pub block_size: u64,
    pub blocks: u64,
    pub first_data_block: u64,
    pub blocks_per_group: u64,
    /// Blocks per cluster, the unit of the block bitmaps (1 without `bigalloc`).
    pub cluster_ratio: u64,
    pub inodes_per_group: u64,
    pub inodes: u64,
    pub inode_size: u64,
    pub desc_size: u64,
    pub incompat: u32,
    ro_compat: u32,
    /// Inode of the internal journal (0: none, or on another device).
    pub journal_inum: u64,
    /// The journal's device, when it is external (`has_journal` with no journal inode): its
    /// UUID and device number, as `dumpe2fs` names them.
    pub external_journal: Option<String>,
    /// Seed of the metadata checksums, when the filesystem has them (`metadata_csum`).
    pub csum_seed: Option<u32>,
    first_meta_bg: u64,
    /// Read from the backup superblock of group 1 ([`Self::find`]).
    pub backup: bool,
    /// `s_uuid` (seeds the `gdt_csum` descriptor checksums).
    uuid: [u8; 16],
    /// Blocks reserved after the descriptor table for growing it (`resize_inode`).
    pub reserved_gdt: u64,
    /// First inode number not reserved for the filesystem's own use (11 on ext2 rev 0).
    pub first_ino: u64,
    /// Head of the orphan list (`s_last_orphan`, chained through `i_dtime`).
    pub last_orphan: u64,
    /// Inode of the orphan file (`orphan_file` feature), 0 without one.
    pub orphan_file: u64,
    /// Inodes the filesystem uses for itself that no directory names: journal, quota files,
    /// orphan file (0 where absent).
    pub hidden: [u64; 5],
}

impl Super {
    /// Parse and sanity-check the primary superblock.
    pub(crate) fn read(src: &dyn Source) -> Result<Self, crate::fs::FsError> {
        let mut sb = vec![0u8; 1024];
        src.read_at(SB_OFF, &mut sb)
            .map_err(|e| io("ext4 superblock", e))?;
        Self::parse(&sb)
    }

    /// The primary superblock, or when it is unusable (no magic, a checksum or geometry that
    /// does not hold, unreadable) the first usable backup of groups 1, 3, 5, 7 and 9, as
    /// `e2fsck -b` reads one: then the second value says so (a warning of the volume). A
    /// backup counts only where the geometry it states puts the group its
    /// `s_block_group_nr` names. The primary's error is returned when no backup is usable.
    pub(crate) fn find(src: &dyn Source) -> Result<(Self, Option<String>), crate::fs::FsError> {
        let err = match Self::read(src) {
            Ok(s) => return Ok((s, None)),
            Err(e @ crate::fs::FsError::Incompatible { .. }) => return Err(e),
            Err(e) => e,
        };
        let mut buf = vec![0u8; 1024];
        for at in backup_offsets() {
            if at.saturating_add(1024) > src.len() || src.read_at(at, &mut buf).is_err() {
                continue;
            }
            let Some(block) = backup_group(at, &buf) else {
                continue;
            };
            let Ok(mut s) = Self::parse(&buf) else {
                continue;
            };
            if block >= s.blocks {
                continue;
            }
            s.backup = true;
            let group = le16(&buf, 0x5A);
            let w = format!(
                "primary superblock unusable ({err}): read with the backup superblock of \
                 group {group} (block {block} of {} bytes), as `e2fsck -b {block}` would",
                s.block_size
            );
            return Ok((s, Some(w)));
        }
        Err(err)
    }

    fn parse(sb: &[u8]) -> Result<Self, crate::fs::FsError> {
        let sb = sb.get(..1024).unwrap_or(sb);
        if le16(sb, 0x38) != MAGIC {
            return Err(corrupt("ext4 superblock", "no ext2/3/4 magic"));
        }
        let log = le32(sb, 0x18);
        if log > 6 {
            return Err(corrupt(
                "ext4 superblock",
                format!("block size 2^{log} KiB"),
            ));
        }
        let incompat = le32(sb, 0x60);
        let is64 = incompat & incompat::BIT64 != 0;
        let rev = le32(sb, 0x4C);
        let s = Super {
            block_size: 1024u64 << log,
            blocks: u64::from(le32(sb, 0x04))
                | if is64 {
                    u64::from(le32(sb, 0x150)) << 32
                } else {
                    0
                },
            first_data_block: u64::from(le32(sb, 0x14)),
            blocks_per_group: u64::from(le32(sb, 0x20)),
            cluster_ratio: 1,
            inodes_per_group: u64::from(le32(sb, 0x28)),
            inodes: u64::from(le32(sb, 0x00)),
            inode_size: if rev == 0 {
                128
            } else {
                u64::from(le16(sb, 0x58))
            },
            desc_size: if is64 { u64::from(le16(sb, 0xFE)) } else { 32 },
            incompat,
            ro_compat: le32(sb, 0x64),
            journal_inum: u64::from(le32(sb, 0xE0)),
            external_journal: (le32(sb, 0x5C) & COMPAT_HAS_JOURNAL != 0 && le32(sb, 0xE0) == 0)
                .then(|| {
                    let u = &sb[0xD0..0xE0];
                    let hex = |r: std::ops::Range<usize>| {
                        u[r].iter().map(|b| format!("{b:02x}")).collect::<String>()
                    };
                    format!(
                        "UUID {}-{}-{}-{}-{}, device {:#06x}",
                        hex(0..4),
                        hex(4..6),
                        hex(6..8),
                        hex(8..10),
                        hex(10..16),
                        le32(sb, 0xE4)
                    )
                }),
            csum_seed: None,
            first_meta_bg: u64::from(le32(sb, 0x104)),
            backup: false,
            uuid: sb[0x68..0x78].try_into().unwrap_or([0; 16]),
            reserved_gdt: u64::from(le16(sb, 0xCE)),
            first_ino: if rev == 0 {
                11
            } else {
                u64::from(le32(sb, 0x54))
            },
            last_orphan: u64::from(le32(sb, 0xE8)),
            orphan_file: if le32(sb, 0x5C) & COMPAT_ORPHAN_FILE != 0 {
                u64::from(le32(sb, 0x280))
            } else {
                0
            },
            hidden: [
                u64::from(le32(sb, 0xE0)),
                u64::from(le32(sb, 0x240)),
                u64::from(le32(sb, 0x244)),
                u64::from(le32(sb, 0x26C)),
                u64::from(le32(sb, 0x280)),
            ],
        };
        let mut s = s;
        if s.ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
            if crc32c(!0, &[&sb[..0x3FC]]) != le32(sb, 0x3FC) {
                return Err(corrupt(
                    "ext4 superblock",
                    "checksum mismatch (metadata_csum)",
                ));
            }
            s.csum_seed = Some(if incompat & incompat::CSUM_SEED != 0 {
                le32(sb, 0x270)
            } else {
                crc32c(!0, &[&sb[0x68..0x78]])
            });
        }
        if incompat & incompat::JOURNAL_DEV != 0 {
            return Err(incompatible(
                "ext4 superblock",
                "an external ext4 journal device, not a filesystem",
            ));
        }
        let mut clusters_per_group = s.blocks_per_group;
        if s.ro_compat & RO_COMPAT_BIGALLOC != 0 {
            let log_cluster = le32(sb, 0x1C);
            if log_cluster < log || log_cluster - log > 16 {
                return Err(corrupt(
                    "ext4 superblock",
                    format!("bigalloc clusters of 2^{log_cluster} KiB with blocks of 2^{log} KiB"),
                ));
            }
            s.cluster_ratio = 1 << (log_cluster - log);
            clusters_per_group = u64::from(le32(sb, 0x24));
            if clusters_per_group.checked_mul(s.cluster_ratio) != Some(s.blocks_per_group) {
                return Err(corrupt(
                    "ext4 superblock",
                    format!(
                        "bigalloc: {} blocks per group is not {clusters_per_group} clusters of {} blocks",
                        s.blocks_per_group, s.cluster_ratio
                    ),
                ));
            }
        }
        if clusters_per_group == 0
            || clusters_per_group > s.block_size * 8
            || !(32..=1024).contains(&s.desc_size)
            || !s.desc_size.is_power_of_two()
            || s.inodes_per_group == 0
            || s.inodes_per_group > s.block_size * 8
            || !(128..=s.block_size.min(65536)).contains(&s.inode_size)
            || !s.inode_size.is_power_of_two()
            || s.first_data_block >= s.blocks
        {
            return Err(corrupt(
                "ext4 superblock",
                "implausible geometry (group sizes, inode size or descriptor size)",
            ));
        }
        if s.groups() > MAX_GROUPS {
            return Err(corrupt(
                "ext4 superblock",
                format!("{} block groups", s.groups()),
            ));
        }
        Ok(s)
    }

    /// Whether the group descriptors carry checksums (`gdt_csum` or `metadata_csum`): only then
    /// do `INODE_UNINIT` and `bg_itable_unused` mean anything.
    pub(crate) fn group_csums(&self) -> bool {
        self.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0
    }

    /// Whether files may share blocks (`shared_blocks`).
    pub(crate) fn shared_blocks(&self) -> bool {
        self.ro_compat & RO_COMPAT_SHARED_BLOCKS != 0
    }

    /// Number of block groups.
    pub(crate) fn groups(&self) -> u64 {
        (self.blocks - self.first_data_block).div_ceil(self.blocks_per_group)
    }

    /// Whether `group` holds a superblock copy (every group, or 0, 1 and powers of 3, 5, 7).
    pub(crate) fn has_super(&self, group: u64) -> bool {
        if self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 || group <= 1 {
            return true;
        }
        [3u64, 5, 7].iter().any(|&b| {
            let mut p = b;
            while p < group {
                p = p.saturating_mul(b);
            }
            p == group
        })
    }

    /// The blocks of group `group` that hold the superblock copy and descriptor table (and its
    /// reserved growth blocks), as the kernel marks them in a bitmap it never wrote
    /// (`BLOCK_UNINIT`): `(first block, count)`.
    pub(crate) fn group_metadata(&self, group: u64) -> Vec<(u64, u64)> {
        let first = self.first_data_block + group * self.blocks_per_group;
        let sb = u64::from(self.has_super(group));
        let per_block = self.block_size / self.desc_size;
        let desc_blocks = self.groups().div_ceil(per_block);
        let mut out = Vec::new();
        if sb == 1 {
            out.push((first, 1));
        }
        if self.incompat & incompat::META_BG == 0 {
            if sb == 1 {
                out.push((first + 1, desc_blocks + self.reserved_gdt));
            }
            return out;
        }
        let meta_group = group / per_block;
        if meta_group < self.first_meta_bg {
            if sb == 1 {
                out.push((first + 1, self.first_meta_bg + self.reserved_gdt));
            }
        } else if matches!(group % per_block, 0 | 1) || group % per_block == per_block - 1 {
            out.push((first + sb, 1));
        }
        out
    }

    /// The block holding descriptor block `i` of the table (classic layout, or `meta_bg`).
    /// The table follows the block holding the primary superblock (block 1 with 1 KiB blocks,
    /// else 0), which is `s_first_data_block` but with `bigalloc` on 1 KiB blocks (where
    /// that is 0), as the kernel's `descriptor_loc` reads it.
    fn desc_block(&self, i: u64) -> u64 {
        let per_block = self.block_size / self.desc_size;
        let sb_block = SB_OFF / self.block_size;
        if self.incompat & incompat::META_BG == 0 || i < self.first_meta_bg {
            return sb_block + 1 + i;
        }
        let group = i * per_block;
        let bigalloc_1k = group == 0 && self.block_size == 1024 && self.first_data_block == 0;
        self.first_data_block
            + group * self.blocks_per_group
            + u64::from(self.has_super(group))
            + u64::from(bigalloc_1k)
    }

    /// Every group's descriptor ([`Self::descriptors_checked`] without its warnings).
    pub(crate) fn descriptors(&self, src: &dyn Source) -> Result<Vec<Desc>, crate::fs::FsError> {
        self.descriptors_checked(src).map(|(d, _)| d)
    }

    /// Every group's descriptor, each checked: its checksum (`gdt_csum` or `metadata_csum`)
    /// and that its bitmaps and inode table lie inside the filesystem. One that fails, or
    /// whose block cannot be read, is taken from the first backup table whose copy passes
    /// (the tables after the backup superblocks, as `e2fsck` reads them), with the
    /// never-updated `UNINIT` flags and `bg_itable_unused` of a backup cleared; when no backup
    /// copy passes, the primary is used as it is (its damage then shows as errors of what it
    /// locates), or its read error is returned. The strings are warnings of the volume.
    pub(crate) fn descriptors_checked(
        &self,
        src: &dyn Source,
    ) -> Result<(Vec<Desc>, Vec<String>), crate::fs::FsError> {
        let groups = self.groups();
        let per_block = self.block_size / self.desc_size;
        let desc_blocks = groups.div_ceil(per_block);
        let bs = usize::try_from(self.block_size).unwrap_or(usize::MAX);
        let ds = self.desc_size as usize;
        // Grown as descriptor blocks are read: a superblock claiming 2^24 groups on a small
        // (or truncated) volume fails at its first missing block, not after a 128 MiB
        // allocation.
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let mut block = vec![0u8; bs];
        let mut copy = Vec::new();
        for i in 0..desc_blocks {
            let at = self.desc_block(i);
            let first = i * per_block;
            let n = usize::try_from(per_block.min(groups - first)).unwrap_or(0);
            let primary = if at >= self.blocks {
                Err(corrupt(
                    "ext4 group descriptors",
                    format!("descriptor block {i} at block {at}, outside the filesystem"),
                ))
            } else {
                src.read_at(at * self.block_size, &mut block)
                    .map_err(|e| io(&format!("ext4 group descriptor block {at}"), e))
            };
            let slot = |b: &[u8], k: usize| b.get(k * ds..(k + 1) * ds).unwrap_or(&[]).to_vec();
            let mut bad: Vec<Option<String>> = (0..n)
                .map(|k| match &primary {
                    Err(e) => Some(e.to_string()),
                    Ok(()) => self.check_desc(first + k as u64, &slot(&block, k)).err(),
                })
                .collect();
            let mut descs: Vec<Option<Desc>> = (0..n)
                .map(|k| primary.is_ok().then(|| self.parse_desc(&slot(&block, k))))
                .collect();
            if bad.iter().all(Option::is_none) {
                out.extend(descs.into_iter().flatten());
                continue;
            }
            let mut from = vec![None; n];
            for b in self.desc_backups(i) {
                if (0..n).all(|k| bad[k].is_none() || from[k].is_some()) {
                    break;
                }
                copy.resize(bs, 0);
                if b >= self.blocks || src.read_at(b * self.block_size, &mut copy).is_err() {
                    continue;
                }
                for k in 0..n {
                    let d = slot(&copy, k);
                    if bad[k].is_some()
                        && from[k].is_none()
                        && self.check_desc(first + k as u64, &d).is_ok()
                    {
                        let mut p = self.parse_desc(&d);
                        p.flags &= !UNINIT_FLAGS;
                        p.itable_unused = 0;
                        descs[k] = Some(p);
                        from[k] = Some(b);
                    }
                }
            }
            for k in 0..n {
                let Some(why) = bad[k].take() else { continue };
                let g = first + k as u64;
                match (from[k], &descs[k]) {
                    (Some(b), _) => warnings.push(format!(
                        "ext4 group descriptor of group {g}: {why}; read from the backup \
                         descriptor table at block {b}, as e2fsck would"
                    )),
                    (None, Some(_)) => warnings.push(format!(
                        "ext4 group descriptor of group {g}: {why}, and no backup copy passes: \
                         used as it is"
                    )),
                    (None, None) => {
                        return Err(primary
                            .err()
                            .unwrap_or_else(|| corrupt("ext4 group descriptors", why)));
                    }
                }
            }
            out.extend(descs.into_iter().flatten());
        }
        Ok((out, warnings))
    }

    /// Descriptor `d` of group `g` parsed.
    fn parse_desc(&self, d: &[u8]) -> Desc {
        let hi = |off| {
            if self.desc_size >= 64 {
                u64::from(le32(d, off)) << 32
            } else {
                0
            }
        };
        Desc {
            block_bitmap: u64::from(le32(d, 0x00)) | hi(0x20),
            inode_bitmap: u64::from(le32(d, 0x04)) | hi(0x24),
            inode_table: u64::from(le32(d, 0x08)) | hi(0x28),
            flags: le16(d, 0x12),
            itable_unused: u64::from(le16(d, 0x1C))
                | if self.desc_size >= 64 {
                    u64::from(le16(d, 0x32)) << 16
                } else {
                    0
                },
        }
    }

    /// Whether descriptor `d` of group `g` holds: its checksum, and bitmaps and inode table
    /// inside the filesystem (past the superblock's block). `Err` says why not.
    fn check_desc(&self, g: u64, d: &[u8]) -> Result<(), String> {
        if d.len() != self.desc_size as usize {
            return Err("short descriptor".into());
        }
        let group = u32::try_from(g).unwrap_or(u32::MAX).to_le_bytes();
        let stored = le16(d, 0x1E);
        let rest = d.get(0x20..).unwrap_or(&[]);
        let want = if let Some(seed) = self.csum_seed {
            Some(crc32c(seed, &[&group, &d[..0x1E], &[0, 0], rest]) as u16)
        } else if self.ro_compat & RO_COMPAT_GDT_CSUM != 0 {
            const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);
            let mut c = CRC16.digest();
            for p in [&self.uuid[..], &group, &d[..0x1E], rest] {
                c.update(p);
            }
            Some(c.finalize())
        } else {
            None
        };
        if let Some(want) = want
            && want != stored
        {
            return Err(format!(
                "checksum {stored:#06x}, computed {want:#06x} (the descriptor is damaged)"
            ));
        }
        let p = self.parse_desc(d);
        let itable = (self.inodes_per_group * self.inode_size).div_ceil(self.block_size);
        let inside =
            |b: u64, n: u64| b > self.first_data_block && b.saturating_add(n) <= self.blocks;
        if !inside(p.block_bitmap, 1)
            || !inside(p.inode_bitmap, 1)
            || !inside(p.inode_table, itable)
        {
            return Err(format!(
                "implausible: block bitmap at {}, inode bitmap at {}, inode table at {} of a \
                 filesystem of {} blocks",
                p.block_bitmap, p.inode_bitmap, p.inode_table, self.blocks
            ));
        }
        Ok(())
    }

    /// Where the backup copies of descriptor block `i` are (first 16): after each backup
    /// superblock in the classic layout; in the second and last group of its meta group with
    /// `meta_bg`.
    fn desc_backups(&self, i: u64) -> Vec<u64> {
        let per_block = self.block_size / self.desc_size;
        let start = |g: u64| self.first_data_block + g * self.blocks_per_group;
        if self.incompat & incompat::META_BG == 0 || i < self.first_meta_bg {
            return (1..self.groups())
                .filter(|&g| self.has_super(g))
                .take(16)
                .map(|g| start(g) + 1 + i)
                .collect();
        }
        [i * per_block + 1, i * per_block + per_block - 1]
            .into_iter()
            .filter(|&g| g < self.groups())
            .map(|g| start(g) + u64::from(self.has_super(g)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::tests::Mem;

    fn sb(f: impl FnOnce(&mut [u8])) -> Mem {
        let mut img = vec![0u8; 64 * 1024];
        let s = &mut img[1024..2048];
        s[0x38..0x3A].copy_from_slice(&MAGIC.to_le_bytes());
        s[0x04..0x08].copy_from_slice(&64u32.to_le_bytes()); // blocks (1 KiB)
        s[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        s[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes());
        s[0x28..0x2C].copy_from_slice(&16u32.to_le_bytes());
        s[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes());
        s[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        f(s);
        Mem(img)
    }

    #[test]
    fn a_minimal_superblock_parses() {
        let s = Super::read(&sb(|_| {})).unwrap();
        assert_eq!((s.block_size, s.groups(), s.inode_size), (1024, 1, 256));
    }

    #[test]
    fn hostile_geometry_is_refused() {
        for (off, v) in [(0x18usize, 9u32), (0x20, 0), (0x28, 0), (0x14, 64)] {
            let m = sb(|s| s[off..off + 4].copy_from_slice(&v.to_le_bytes()));
            assert!(Super::read(&m).is_err(), "offset {off:#x} = {v}");
        }
        let m = sb(|s| s[0x58..0x5A].copy_from_slice(&100u16.to_le_bytes()));
        assert!(Super::read(&m).is_err(), "inode size 100");
        let m = sb(|s| s[0x60..0x64].copy_from_slice(&incompat::JOURNAL_DEV.to_le_bytes()));
        assert!(matches!(
            Super::read(&m),
            Err(crate::fs::FsError::Incompatible { .. })
        ));
    }

    #[test]
    fn sparse_super_groups() {
        let mut s = Super::read(&sb(|s| s[0x64] = 1)).unwrap();
        let with: Vec<u64> = (0..30).filter(|&g| s.has_super(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27]);
        s.ro_compat = 0;
        assert!(s.has_super(4));
    }

    #[test]
    fn a_huge_group_count_on_a_small_volume_is_a_read_error() {
        // 2^24 groups of 8192 blocks (64bit): the descriptor table runs past the 64 KiB
        // volume long before its 2^24 entries, and nothing is sized by the claimed count.
        let m = sb(|s| {
            s[0x60..0x64].copy_from_slice(&incompat::BIT64.to_le_bytes());
            s[0x04..0x08].copy_from_slice(&1u32.to_le_bytes());
            s[0x150..0x154].copy_from_slice(&(1u32 << 5).to_le_bytes()); // 2^37 + 1 blocks
            s[0xFE..0x100].copy_from_slice(&64u16.to_le_bytes());
        });
        let s = Super::read(&m).unwrap();
        assert_eq!(s.groups(), 1 << 24);
        let err = s.descriptors(&m).unwrap_err();
        assert!(
            matches!(&err, crate::fs::FsError::Io { context, .. } if context.contains("group descriptor block 64")),
            "{err}"
        );
    }

    /// The primary gone, the copy of group 1 (1 KiB blocks: block 8193) is used, with a
    /// warning; a copy that says it belongs to another group, or whose geometry puts group 1
    /// elsewhere, is not.
    #[test]
    fn a_zeroed_primary_is_replaced_by_the_backup_of_group_1() {
        let at = 8193 * 1024;
        let mut img = sb(|s| {
            s[0x04..0x08].copy_from_slice(&16384u32.to_le_bytes());
            s[0x5A..0x5C].copy_from_slice(&1u16.to_le_bytes());
        })
        .0;
        img.resize(16384 * 1024, 0);
        let copy: Vec<u8> = img[1024..2048].to_vec();
        img[at..at + 1024].copy_from_slice(&copy);
        img[1024..2048].fill(0);
        assert_eq!(backup_offsets().next(), Some(at as u64));
        assert!(is_backup_super(at as u64, &copy));
        let (s, w) = Super::find(&Mem(img.clone())).unwrap();
        assert!(s.backup && s.blocks == 16384, "{s:?}");
        assert!(w.unwrap().contains("e2fsck -b 8193"));
        // Another group's copy (s_block_group_nr 3) at that place is no backup of group 1.
        img[at + 0x5A] = 3;
        assert!(!is_backup_super(at as u64, &img[at..at + 1024]));
        assert!(Super::find(&Mem(img)).is_err());
    }
}
