//! The primary superblock (sector 0): geometry, features, and the inode/block address math.

use super::{be16, be32, be64, corrupt, crc_ok, incompatible};
use crate::fs::FsError;
use crate::source::Source;

const MAGIC: u32 = 0x5846_5342; // "XFSB"
const SB_CRC_OFF: usize = 224;
/// Bytes of the superblock fields this reader looks at (v5 layout up to `sb_meta_uuid`).
const SB_LEN: usize = 264;

const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_DIRV2BIT: u16 = 0x2000;
const VERSION_MOREBITSBIT: u16 = 0x8000;
const VERSION2_FTYPE: u32 = 0x0200;

const INCOMPAT_FTYPE: u32 = 0x1;
const INCOMPAT_SPINODES: u32 = 0x2;
const INCOMPAT_META_UUID: u32 = 0x4;
const INCOMPAT_BIGTIME: u32 = 0x8;
const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
const INCOMPAT_NREXT64: u32 = 0x20;
const INCOMPAT_EXCHRANGE: u32 = 0x40;
const INCOMPAT_PARENT: u32 = 0x80;
const INCOMPAT_METADIR: u32 = 0x100;
/// Incompat features that do not change how files and directories are read.
const INCOMPAT_KNOWN: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NEEDSREPAIR
    | INCOMPAT_NREXT64
    | INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT
    | INCOMPAT_METADIR;

/// The superblock fields the reader uses, validated.
#[derive(Clone, Debug)]
pub(crate) struct Superblock {
    /// 4 or 5 (5 = CRC-protected metadata, self-describing headers).
    pub(crate) version: u8,
    pub(crate) blocksize: u32,
    pub(crate) blocklog: u8,
    pub(crate) inodesize: u16,
    pub(crate) inopblog: u8,
    pub(crate) agblocks: u32,
    pub(crate) agblklog: u8,
    pub(crate) agcount: u32,
    pub(crate) dblocks: u64,
    pub(crate) rootino: u64,
    /// Directory block size in bytes (`blocksize << dirblklog`).
    pub(crate) dirblksize: u32,
    /// Directory entries carry a file-type byte.
    pub(crate) ftype: bool,
    /// Internal log: first block (AG-encoded) and length in blocks; `logstart == 0` is external.
    pub(crate) logstart: u64,
    pub(crate) logblocks: u32,
}

impl Superblock {
    /// Read and validate the primary superblock at byte 0 of `src`.
    pub(crate) fn read(src: &dyn Source) -> Result<Superblock, FsError> {
        let io = |e: crate::source::SourceError| FsError::Io {
            context: "xfs superblock".into(),
            message: e.to_string(),
            at: Default::default(),
        };
        let mut head = vec![0u8; 512];
        src.read_at(0, &mut head).map_err(io)?;
        // The v5 CRC covers the whole sector: reread it at its real size.
        let sectsize = be16(&head, 102).unwrap_or(512);
        if sectsize > 512 && sectsize.is_power_of_two() && sectsize <= 32768 {
            head = vec![0u8; usize::from(sectsize)];
            src.read_at(0, &mut head).map_err(io)?;
        }
        Self::parse(&head)
    }

    /// Validate a superblock sector.
    pub(crate) fn parse(buf: &[u8]) -> Result<Superblock, FsError> {
        let ctx = "xfs superblock";
        let bad =
            |field: &str, value: u64, why: &str| corrupt(ctx, format!("{field} = {value}: {why}"));
        if buf.len() < SB_LEN {
            return Err(corrupt(ctx, format!("only {} bytes", buf.len())));
        }
        let f16 = |o| be16(buf, o).unwrap_or(0);
        let f32_ = |o| be32(buf, o).unwrap_or(0);
        let f64_ = |o| be64(buf, o).unwrap_or(0);
        let f8 = |o: usize| buf.get(o).copied().unwrap_or(0);

        let magic = f32_(0);
        if magic != MAGIC {
            return Err(bad("sb_magicnum", magic.into(), "not XFSB"));
        }
        let versionnum = f16(100);
        let version = (versionnum & VERSION_NUMBITS) as u8;
        if !(4..=5).contains(&version) {
            return Err(incompatible(
                ctx,
                format!("sb_versionnum = {versionnum:#x}: version {version}"),
            ));
        }
        if version == 4 && versionnum & VERSION_DIRV2BIT == 0 {
            return Err(incompatible(ctx, "version 1 directories (no DIRV2 bit)"));
        }
        if version == 5 && !crc_ok(buf, SB_CRC_OFF) {
            return Err(corrupt(ctx, "sb_crc mismatch"));
        }

        let blocksize = f32_(4);
        let blocklog = f8(120);
        if !blocksize.is_power_of_two() || !(512..=65536).contains(&blocksize) {
            return Err(bad(
                "sb_blocksize",
                blocksize.into(),
                "not a power of two in 512..=65536",
            ));
        }
        if u32::from(blocklog) != blocksize.trailing_zeros() {
            return Err(bad(
                "sb_blocklog",
                blocklog.into(),
                "does not match sb_blocksize",
            ));
        }
        let sectsize = f16(102);
        if !sectsize.is_power_of_two()
            || !(512..=32768).contains(&sectsize)
            || u32::from(sectsize) > blocksize
        {
            return Err(bad(
                "sb_sectsize",
                sectsize.into(),
                "not a power of two in 512..=32768 and <= block size",
            ));
        }
        if u32::from(f8(121)) != sectsize.trailing_zeros() {
            return Err(bad(
                "sb_sectlog",
                f8(121).into(),
                "does not match sb_sectsize",
            ));
        }
        let inodesize = f16(104);
        let min_inode = if version == 5 { 512 } else { 256 };
        if !inodesize.is_power_of_two()
            || !(min_inode..=2048).contains(&inodesize)
            || u32::from(inodesize) > blocksize
        {
            return Err(bad(
                "sb_inodesize",
                inodesize.into(),
                "not a power of two in 256..=2048 (512 on v5) and <= block size",
            ));
        }
        if u32::from(f8(122)) != inodesize.trailing_zeros() {
            return Err(bad(
                "sb_inodelog",
                f8(122).into(),
                "does not match sb_inodesize",
            ));
        }
        let inopblock = f16(106);
        if u32::from(inopblock) != blocksize / u32::from(inodesize) {
            return Err(bad(
                "sb_inopblock",
                inopblock.into(),
                "is not block size / inode size",
            ));
        }
        let inopblog = f8(123);
        if u32::from(inopblog) != u32::from(inopblock).trailing_zeros() {
            return Err(bad(
                "sb_inopblog",
                inopblog.into(),
                "does not match sb_inopblock",
            ));
        }
        let agcount = f32_(88);
        if agcount == 0 {
            return Err(bad("sb_agcount", 0, "no allocation groups"));
        }
        let agblocks = f32_(84);
        if agblocks < 64 {
            return Err(bad(
                "sb_agblocks",
                agblocks.into(),
                "allocation group too small",
            ));
        }
        let agblklog = f8(124);
        let want_agblklog = 32 - (agblocks - 1).leading_zeros();
        if u32::from(agblklog) != want_agblklog {
            return Err(bad(
                "sb_agblklog",
                agblklog.into(),
                "does not match sb_agblocks",
            ));
        }
        if u32::from(agblklog) + u32::from(inopblog) > 32 {
            return Err(bad(
                "sb_agblklog",
                agblklog.into(),
                "AG inode numbers exceed 32 bits",
            ));
        }
        let dblocks = f64_(8);
        let max_blocks = u64::from(agcount) * u64::from(agblocks);
        if dblocks > max_blocks || dblocks <= max_blocks - u64::from(agblocks) {
            return Err(bad(
                "sb_dblocks",
                dblocks,
                "does not match sb_agcount * sb_agblocks",
            ));
        }
        let dirblklog = f8(192);
        let dirblksize = u64::from(blocksize) << dirblklog.min(16);
        if dirblklog > 16 || dirblksize > 65536 {
            return Err(bad(
                "sb_dirblklog",
                dirblklog.into(),
                "directory blocks larger than 64 KiB",
            ));
        }
        if f8(126) != 0 {
            return Err(incompatible(
                ctx,
                "sb_inprogress is set: mkfs did not finish",
            ));
        }

        let features2 = if versionnum & VERSION_MOREBITSBIT != 0 {
            f32_(200)
        } else {
            0
        };
        let ftype = if version == 5 {
            let incompat = f32_(216);
            let unknown = incompat & !INCOMPAT_KNOWN;
            if unknown != 0 {
                return Err(incompatible(
                    ctx,
                    format!("sb_features_incompat = {incompat:#x}: unknown features {unknown:#x}"),
                ));
            }
            incompat & INCOMPAT_FTYPE != 0
        } else {
            features2 & VERSION2_FTYPE != 0
        };

        let sb = Superblock {
            version,
            blocksize,
            blocklog,
            inodesize,
            inopblog,
            agblocks,
            agblklog,
            agcount,
            dblocks,
            rootino: f64_(56),
            dirblksize: dirblksize as u32,
            ftype,
            logstart: f64_(48),
            logblocks: f32_(96),
        };
        sb.inode_offset(sb.rootino)
            .map_err(|_| bad("sb_rootino", sb.rootino, "not a valid inode number"))?;
        Ok(sb)
    }

    /// True on v5 (CRC) filesystems.
    pub(crate) fn crc(&self) -> bool {
        self.version == 5
    }

    /// Byte offset of inode `ino`: `ino = agno << (agblklog + inopblog) | agbno << inopblog | idx`.
    pub(crate) fn inode_offset(&self, ino: u64) -> Result<u64, FsError> {
        let shift = u32::from(self.agblklog) + u32::from(self.inopblog);
        let agno = ino.checked_shr(shift).unwrap_or(0);
        let agino = ino & ((1u64 << shift) - 1);
        let agbno = agino >> self.inopblog;
        let idx = agino & ((1u64 << self.inopblog) - 1);
        if agno >= u64::from(self.agcount) || agbno >= u64::from(self.agblocks) || ino == 0 {
            return Err(corrupt(
                format!("xfs inode {ino}"),
                "inode number outside the filesystem",
            ));
        }
        let block = agno * u64::from(self.agblocks) + agbno;
        block
            .checked_mul(u64::from(self.blocksize))
            .and_then(|b| b.checked_add(idx * u64::from(self.inodesize)))
            .ok_or_else(|| {
                corrupt(
                    format!("xfs inode {ino}"),
                    "inode number outside the filesystem",
                )
            })
    }

    /// Byte offset of filesystem block `fsb` (AG-encoded: `agno << agblklog | agbno`).
    pub(crate) fn fsb_offset(&self, fsb: u64) -> Option<u64> {
        let agno = fsb.checked_shr(u32::from(self.agblklog))?;
        let agbno = fsb & ((1u64 << self.agblklog) - 1);
        if agno >= u64::from(self.agcount) || agbno >= u64::from(self.agblocks) {
            return None;
        }
        let block = agno * u64::from(self.agblocks) + agbno;
        if block >= self.dblocks {
            return None;
        }
        block.checked_mul(u64::from(self.blocksize))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fs::xfs::set_crc;

    /// A valid v5 superblock sector: 4 KiB blocks, 512-byte inodes, 4 AGs of 16384 blocks.
    pub(crate) fn v5_sb() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(b"XFSB");
        b[4..8].copy_from_slice(&4096u32.to_be_bytes());
        b[8..16].copy_from_slice(&(4u64 * 16384).to_be_bytes());
        b[56..64].copy_from_slice(&128u64.to_be_bytes());
        b[84..88].copy_from_slice(&16384u32.to_be_bytes());
        b[88..92].copy_from_slice(&4u32.to_be_bytes());
        b[100..102].copy_from_slice(&0xb4a5u16.to_be_bytes());
        b[102..104].copy_from_slice(&512u16.to_be_bytes());
        b[104..106].copy_from_slice(&512u16.to_be_bytes());
        b[106..108].copy_from_slice(&8u16.to_be_bytes());
        b[120] = 12;
        b[121] = 9;
        b[122] = 9;
        b[123] = 3;
        b[124] = 14;
        b[216..220].copy_from_slice(&(INCOMPAT_FTYPE | INCOMPAT_BIGTIME).to_be_bytes());
        set_crc(&mut b, SB_CRC_OFF);
        b
    }

    fn err(b: &[u8]) -> String {
        Superblock::parse(b).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_valid_superblock() {
        let sb = Superblock::parse(&v5_sb()).unwrap();
        assert_eq!(
            (sb.version, sb.blocksize, sb.agcount, sb.dirblksize),
            (5, 4096, 4, 4096)
        );
        assert!(sb.ftype);
        assert_eq!(sb.inode_offset(128).unwrap(), 16 * 4096);
        // AG 1, block 2, slot 3.
        assert_eq!(
            sb.inode_offset((1 << 17) | (2 << 3) | 3).unwrap(),
            (16384 + 2) * 4096 + 3 * 512
        );
        assert_eq!(sb.fsb_offset((1 << 14) | 5), Some((16384 + 5) * 4096));
        assert_eq!(sb.fsb_offset(4 << 14), None, "agno past sb_agcount");
        assert!(sb.inode_offset(4 << 17).is_err());
    }

    #[test]
    fn flipped_crc_byte_is_reported() {
        let mut b = v5_sb();
        b[300] ^= 1;
        assert_eq!(err(&b), "xfs superblock: corrupt: sb_crc mismatch");
    }

    #[test]
    fn bad_magic_names_the_field() {
        let mut b = v5_sb();
        b[0] = b'Y';
        assert_eq!(
            err(&b),
            "xfs superblock: corrupt: sb_magicnum = 1497781058: not XFSB"
        );
    }

    #[test]
    fn bad_geometry_names_field_and_value() {
        let mut b = v5_sb();
        b[4..8].copy_from_slice(&3000u32.to_be_bytes());
        set_crc(&mut b, SB_CRC_OFF);
        assert_eq!(
            err(&b),
            "xfs superblock: corrupt: sb_blocksize = 3000: not a power of two in 512..=65536"
        );
        let mut b = v5_sb();
        b[124] = 13;
        set_crc(&mut b, SB_CRC_OFF);
        assert_eq!(
            err(&b),
            "xfs superblock: corrupt: sb_agblklog = 13: does not match sb_agblocks"
        );
        let mut b = v5_sb();
        b[88..92].copy_from_slice(&0u32.to_be_bytes());
        set_crc(&mut b, SB_CRC_OFF);
        assert_eq!(
            err(&b),
            "xfs superblock: corrupt: sb_agcount = 0: no allocation groups"
        );
        let mut b = v5_sb();
        b[104..106].copy_from_slice(&256u16.to_be_bytes());
        set_crc(&mut b, SB_CRC_OFF);
        assert!(err(&b).starts_with("xfs superblock: corrupt: sb_inodesize = 256"));
        let mut b = v5_sb();
        b[102..104].copy_from_slice(&8192u16.to_be_bytes());
        set_crc(&mut b, SB_CRC_OFF);
        assert!(err(&b).starts_with("xfs superblock: corrupt: sb_sectsize = 8192"));
    }

    #[test]
    fn unknown_features_and_versions_are_incompatible() {
        let mut b = v5_sb();
        b[216..220].copy_from_slice(&0x8000_0001u32.to_be_bytes());
        set_crc(&mut b, SB_CRC_OFF);
        assert_eq!(
            err(&b),
            "xfs superblock: unsupported: sb_features_incompat = 0x80000001: unknown features 0x80000000"
        );
        let mut b = v5_sb();
        b[101] = 0xa3;
        assert_eq!(
            err(&b),
            "xfs superblock: unsupported: sb_versionnum = 0xb4a3: version 3"
        );
        assert!(Superblock::parse(&b[..100]).is_err());
    }
}
