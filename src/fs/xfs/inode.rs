//! Inode cores (v1/v2 dinodes on v4, v3 dinodes with CRC on v5) and their data forks.

use super::{Ctx, be16, be32, be64, corrupt, crc_ok, incompatible};
use crate::fs::{EntryKind, FsError};

const MAGIC: u16 = 0x494e; // "IN"
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;
const CRC_OFF: usize = 100;

pub(crate) const FMT_LOCAL: u8 = 1;
pub(crate) const FMT_EXTENTS: u8 = 2;
pub(crate) const FMT_BTREE: u8 = 3;

const S_IFMT: u16 = 0o170000;
const S_IFREG: u16 = 0o100000;
const S_IFDIR: u16 = 0o040000;
const S_IFLNK: u16 = 0o120000;

const DIFLAG_REALTIME: u16 = 0x1;
const DIFLAG2_BIGTIME: u64 = 0x8;
const DIFLAG2_NREXT64: u64 = 0x10;
/// Bigtime timestamps count nanoseconds from this many seconds before the Unix epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

/// A parsed inode: the core fields the reader uses and a copy of its data fork.
#[derive(Clone, Debug)]
pub(crate) struct Inode {
    pub(crate) ino: u64,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    /// Data fork format (`FMT_*`).
    pub(crate) format: u8,
    /// Data fork extent count.
    pub(crate) nextents: u64,
    pub(crate) realtime: bool,
    /// The data fork's bytes (inline data, extent records or bmap btree root).
    pub(crate) fork: Vec<u8>,
}

impl Inode {
    /// Read and validate inode `ino`.
    pub(crate) fn read(ctx: &Ctx, ino: u64) -> Result<Inode, FsError> {
        let off = ctx.sb.inode_offset(ino)?;
        let raw = ctx.read_vec(off, usize::from(ctx.sb.inodesize), &|| {
            format!("xfs inode {ino}")
        })?;
        Self::parse(&raw, ino, ctx.sb.crc())
    }

    /// Parse the raw bytes of inode `ino` (`v5`: the filesystem has CRCs).
    pub(crate) fn parse(raw: &[u8], ino: u64, v5: bool) -> Result<Inode, FsError> {
        let ctx = || format!("xfs inode {ino}");
        let short = || corrupt(ctx(), "inode shorter than its core");
        let magic = be16(raw, 0).ok_or_else(short)?;
        if magic != MAGIC {
            return Err(corrupt(
                ctx(),
                format!("di_magic = {magic:#06x}, not IN (0x494e)"),
            ));
        }
        let version = raw.get(4).copied().ok_or_else(short)?;
        let core = match (version, v5) {
            (3, true) => CORE_V3,
            (1 | 2, false) => CORE_V2,
            _ => {
                return Err(corrupt(
                    ctx(),
                    format!(
                        "di_version = {version} on a v{} filesystem",
                        if v5 { 5 } else { 4 }
                    ),
                ));
            }
        };
        if raw.len() < core {
            return Err(short());
        }
        let mut flags2 = 0;
        if version == 3 {
            if !crc_ok(raw, CRC_OFF) {
                return Err(corrupt(ctx(), "di_crc mismatch"));
            }
            let self_ino = be64(raw, 152).ok_or_else(short)?;
            if self_ino != ino {
                return Err(corrupt(
                    ctx(),
                    format!("di_ino = {self_ino}: inode is not where its number points"),
                ));
            }
            flags2 = be64(raw, 120).ok_or_else(short)?;
        }
        let mode = be16(raw, 2).ok_or_else(short)?;
        let format = raw.get(5).copied().ok_or_else(short)?;
        let (uid, gid) = (
            be32(raw, 8).ok_or_else(short)?,
            be32(raw, 12).ok_or_else(short)?,
        );
        let mtime = if flags2 & DIFLAG2_BIGTIME != 0 {
            let ns = be64(raw, 40).ok_or_else(short)?;
            i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX) - BIGTIME_EPOCH_OFFSET
        } else {
            i64::from(be32(raw, 40).ok_or_else(short)? as i32)
        };
        let size = be64(raw, 56).ok_or_else(short)?;
        if size > i64::MAX as u64 {
            return Err(corrupt(ctx(), format!("di_size = {size}: negative")));
        }
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 {
            be64(raw, 24).ok_or_else(short)?
        } else {
            u64::from(be32(raw, 76).ok_or_else(short)?)
        };
        let forkoff = usize::from(raw.get(82).copied().ok_or_else(short)?) * 8;
        let flags = be16(raw, 90).ok_or_else(short)?;
        let literal = raw.len() - core;
        let fork_len = if forkoff == 0 { literal } else { forkoff };
        if fork_len > literal {
            return Err(corrupt(
                ctx(),
                format!("di_forkoff = {}: past the end of the inode", forkoff / 8),
            ));
        }
        let fork = raw.get(core..core + fork_len).ok_or_else(short)?.to_vec();
        let inode = Inode {
            ino,
            mode: u32::from(mode),
            uid,
            gid,
            size,
            mtime,
            format,
            nextents,
            realtime: flags & DIFLAG_REALTIME != 0,
            fork,
        };
        let data_kind = matches!(
            inode.kind(),
            EntryKind::File | EntryKind::Dir | EntryKind::Symlink
        );
        if data_kind && !matches!(format, FMT_LOCAL | FMT_EXTENTS | FMT_BTREE) {
            return Err(corrupt(
                ctx(),
                format!("di_format = {format}: not local, extents or btree"),
            ));
        }
        if format == FMT_LOCAL && (inode.kind() == EntryKind::File) && size > 0 {
            return Err(corrupt(ctx(), "a regular file in local format"));
        }
        Ok(inode)
    }

    /// The entry type from `di_mode`.
    pub(crate) fn kind(&self) -> EntryKind {
        match (self.mode as u16) & S_IFMT {
            S_IFREG => EntryKind::File,
            S_IFDIR => EntryKind::Dir,
            S_IFLNK => EntryKind::Symlink,
            _ => EntryKind::Special,
        }
    }

    /// A readable file's blocks must be on the data device.
    pub(crate) fn check_not_realtime(&self) -> Result<(), FsError> {
        if self.realtime {
            return Err(incompatible(
                format!("xfs inode {}", self.ino),
                "file data lives on the realtime device, which amiscan does not read",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fs::xfs::set_crc;

    /// A valid v3 inode of 512 bytes: a regular file with one extent record in its fork.
    pub(crate) fn v3_inode(ino: u64, mode: u16, format: u8, fork: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        b[2..4].copy_from_slice(&mode.to_be_bytes());
        b[4] = 3;
        b[5] = format;
        b[8..12].copy_from_slice(&1000u32.to_be_bytes());
        b[12..16].copy_from_slice(&1001u32.to_be_bytes());
        b[120..128].copy_from_slice(&DIFLAG2_BIGTIME.to_be_bytes());
        // mtime 2040-01-01T00:00:00Z, past 2038.
        let ns = (2_208_988_800u64 + (1 << 31)) * 1_000_000_000;
        b[40..48].copy_from_slice(&ns.to_be_bytes());
        b[152..160].copy_from_slice(&ino.to_be_bytes());
        b[CORE_V3..CORE_V3 + fork.len()].copy_from_slice(fork);
        set_crc(&mut b, CRC_OFF);
        b
    }

    #[test]
    fn parses_a_v3_inode_with_bigtime() {
        let raw = v3_inode(131, 0o100640, FMT_EXTENTS, &[]);
        let ino = Inode::parse(&raw, 131, true).unwrap();
        assert_eq!(
            (ino.kind(), ino.mode & 0o7777, ino.uid, ino.gid),
            (EntryKind::File, 0o640, 1000, 1001)
        );
        assert_eq!(ino.mtime, 2_208_988_800);
        assert_eq!(ino.fork.len(), 512 - CORE_V3);
    }

    #[test]
    fn parses_a_v2_inode_with_a_negative_time() {
        let mut raw = vec![0u8; 256];
        raw[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        raw[2..4].copy_from_slice(&0o040755u16.to_be_bytes());
        raw[4] = 2;
        raw[5] = FMT_LOCAL;
        raw[40..44].copy_from_slice(&(-5i32).to_be_bytes());
        raw[82] = 10;
        let ino = Inode::parse(&raw, 99, false).unwrap();
        assert_eq!(
            (ino.kind(), ino.mtime, ino.fork.len()),
            (EntryKind::Dir, -5, 80)
        );
    }

    #[test]
    fn flipped_byte_fails_the_crc() {
        let mut raw = v3_inode(131, 0o100644, FMT_EXTENTS, &[]);
        raw[300] ^= 0x40;
        assert_eq!(
            Inode::parse(&raw, 131, true).unwrap_err().to_string(),
            "xfs inode 131: corrupt: di_crc mismatch"
        );
    }

    #[test]
    fn structural_errors_name_the_field() {
        let mut raw = v3_inode(131, 0o100644, FMT_EXTENTS, &[]);
        raw[0] = 0;
        assert_eq!(
            Inode::parse(&raw, 131, true).unwrap_err().to_string(),
            "xfs inode 131: corrupt: di_magic = 0x004e, not IN (0x494e)"
        );
        let raw = v3_inode(131, 0o100644, FMT_EXTENTS, &[]);
        assert_eq!(
            Inode::parse(&raw, 132, true).unwrap_err().to_string(),
            "xfs inode 132: corrupt: di_ino = 131: inode is not where its number points"
        );
        let mut raw = v3_inode(131, 0o100644, FMT_EXTENTS, &[]);
        raw[82] = 255;
        set_crc(&mut raw, CRC_OFF);
        assert_eq!(
            Inode::parse(&raw, 131, true).unwrap_err().to_string(),
            "xfs inode 131: corrupt: di_forkoff = 255: past the end of the inode"
        );
        let raw = v3_inode(131, 0o100644, 9, &[]);
        assert_eq!(
            Inode::parse(&raw, 131, true).unwrap_err().to_string(),
            "xfs inode 131: corrupt: di_format = 9: not local, extents or btree"
        );
        assert!(Inode::parse(&raw[..50], 131, true).is_err());
    }
}
