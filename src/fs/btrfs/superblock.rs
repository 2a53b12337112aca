//! The btrfs superblock (primary at 64 KiB, mirrors at 64 MiB and 256 GiB): geometry,
//! feature flags, the roots of the root and chunk trees, and the `sys_chunk_array` that maps
//! the chunk tree itself. Every field is read at its offset with bounds checks; a superblock
//! whose checksum, magic or geometry is wrong is refused with a named error.

use super::{Key, corrupt, incompatible, le16, le32, le64};
use crate::fs::FsError;
use crate::source::Source;

/// Offsets of the superblock copies.
pub const SUPER_OFFSETS: [u64; 3] = [0x1_0000, 0x400_0000, 0x40_0000_0000];
/// Size of the superblock.
pub const SUPER_LEN: usize = 4096;
/// `_BHRfS_M`.
const MAGIC: &[u8; 8] = b"_BHRfS_M";
/// Where the `sys_chunk_array` starts in the superblock, and its largest size.
const SYS_ARRAY_OFF: usize = 0x32b;
const SYS_ARRAY_MAX: usize = 2048;

/// Incompatible features this reader handles (`MIXED_BACKREF`, `DEFAULT_SUBVOL`,
/// `MIXED_GROUPS`, `COMPRESS_LZO`, `COMPRESS_ZSTD`, `BIG_METADATA`, `EXTENDED_IREF`,
/// `RAID56` (refused per chunk), `SKINNY_METADATA`, `NO_HOLES`, `METADATA_UUID`, `RAID1C34`,
/// `SIMPLE_QUOTA`).
const INCOMPAT_KNOWN: u64 = 0x0fff | (1 << 16);
/// Names of the incompatible features refused, for the message.
const INCOMPAT_NAMES: [(u64, &str); 3] = [
    (1 << 12, "zoned"),
    (1 << 13, "extent-tree-v2"),
    (1 << 14, "raid-stripe-tree"),
];
const INCOMPAT_METADATA_UUID: u64 = 1 << 10;

pub use super::csum::CsumType;

/// What the reader needs from the superblock.
#[derive(Clone, Debug)]
pub struct Superblock {
    /// The filesystem's UUID, as `blkid` and `UUID=` in `/etc/fstab` name it.
    pub fsid: [u8; 16],
    /// The filesystem id tree blocks carry (the metadata UUID when that feature is on).
    pub meta_fsid: [u8; 16],
    /// Root tree: logical address and level.
    pub root: u64,
    pub root_level: u8,
    /// Chunk tree: logical address and level.
    pub chunk_root: u64,
    pub chunk_root_level: u8,
    /// Log tree (0: none, the last unmount was clean or nothing was fsynced since the commit).
    pub log_root: u64,
    /// Level of the log root tree's root block.
    pub log_root_level: u8,
    /// Devices in the filesystem.
    pub num_devices: u64,
    /// This device's id.
    pub devid: u64,
    /// Data block size and tree block size.
    pub sectorsize: u32,
    pub nodesize: u32,
    /// Tree block checksum.
    pub csum: CsumType,
    /// The `sys_chunk_array`: (key, chunk item bytes) pairs.
    pub sys_chunks: Vec<(Key, Vec<u8>)>,
}

/// Read the primary superblock, or the first valid mirror when the primary is damaged (the
/// second value then says why the primary was not used).
pub fn read(src: &dyn Source) -> Result<(Superblock, Option<String>), FsError> {
    let mut first_err = None;
    for off in SUPER_OFFSETS {
        if off.saturating_add(SUPER_LEN as u64) > src.len() {
            break;
        }
        let mut buf = vec![0u8; SUPER_LEN];
        let parsed = src
            .read_at(off, &mut buf)
            .map_err(|e| super::io("btrfs superblock", off, e))
            .and_then(|()| parse(&buf, off));
        match parsed {
            Ok(sb) => {
                let note = first_err.map(|e: FsError| {
                    format!(
                        "btrfs primary superblock unusable ({e}); read the mirror at byte {off}"
                    )
                });
                return Ok((sb, note));
            }
            // A feature we refuse is refused whichever copy says it.
            Err(e @ FsError::Incompatible { .. }) => return Err(e),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| {
        corrupt(
            "btrfs superblock",
            "the volume is too small to hold a superblock",
        )
    }))
}

/// Parse and validate one superblock copy read at `off`.
pub fn parse(b: &[u8], off: u64) -> Result<Superblock, FsError> {
    let ctx = || format!("btrfs superblock at byte {off}");
    let f64_ = |o: usize| le64(b, o).ok_or_else(|| corrupt(ctx(), "truncated"));
    if b.get(0x40..0x48) != Some(MAGIC.as_slice()) {
        return Err(corrupt(ctx(), "no _BHRfS_M magic"));
    }
    let csum_type = le16(b, 0xc4).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    let csum = match csum_type {
        0 => CsumType::Crc32c,
        1 => CsumType::Xxhash,
        2 => CsumType::Sha256,
        3 => CsumType::Blake2,
        n => return Err(incompatible(ctx(), format!("unknown checksum type {n}"))),
    };
    if let Some(false) = super::csum::csum_matches(csum, b) {
        return Err(corrupt(ctx(), format!("{} checksum mismatch", csum.name())));
    }
    let bytenr = f64_(0x30)?;
    if bytenr != off {
        return Err(corrupt(
            ctx(),
            format!("records its own offset as {bytenr}"),
        ));
    }
    let incompat = f64_(0xbc)?;
    if incompat & !INCOMPAT_KNOWN != 0 {
        let names: Vec<&str> = INCOMPAT_NAMES
            .iter()
            .filter(|(bit, _)| incompat & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        return Err(incompatible(
            ctx(),
            format!(
                "feature flags {:#x} ({}) are not read by amiscan",
                incompat & !INCOMPAT_KNOWN,
                if names.is_empty() {
                    "unknown".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let sectorsize = le32(b, 0x90).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    let nodesize = le32(b, 0x94).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    if !sectorsize.is_power_of_two() || !(4096..=65536).contains(&sectorsize) {
        return Err(corrupt(ctx(), format!("sector size {sectorsize}")));
    }
    if !nodesize.is_power_of_two() || nodesize < sectorsize || nodesize > 65536 {
        return Err(corrupt(ctx(), format!("node size {nodesize}")));
    }
    let root_level = *b.get(0xc6).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    let chunk_root_level = *b.get(0xc7).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    if root_level >= super::csum::MAX_LEVEL || chunk_root_level >= super::csum::MAX_LEVEL {
        return Err(corrupt(ctx(), "tree root level out of range"));
    }
    let mut meta_fsid = [0u8; 16];
    let fsid_off = if incompat & INCOMPAT_METADATA_UUID != 0 {
        0x23b
    } else {
        0x20
    };
    meta_fsid.copy_from_slice(b.get(fsid_off..fsid_off + 16).unwrap_or(&[0; 16]));
    let sys_len = usize::try_from(le32(b, 0xa0).unwrap_or(0)).unwrap_or(usize::MAX);
    if sys_len > SYS_ARRAY_MAX {
        return Err(corrupt(
            ctx(),
            format!("sys_chunk_array of {sys_len} bytes"),
        ));
    }
    let sys = b
        .get(SYS_ARRAY_OFF..SYS_ARRAY_OFF + sys_len)
        .ok_or_else(|| corrupt(ctx(), "truncated sys_chunk_array"))?;
    let sys_chunks = parse_sys_array(sys).map_err(|m| corrupt(ctx(), m))?;
    let mut fsid = [0u8; 16];
    fsid.copy_from_slice(b.get(0x20..0x30).unwrap_or(&[0; 16]));
    Ok(Superblock {
        fsid,
        meta_fsid,
        root: f64_(0x50)?,
        root_level,
        chunk_root: f64_(0x58)?,
        chunk_root_level,
        log_root: f64_(0x60)?,
        log_root_level: *b.get(0xc8).ok_or_else(|| corrupt(ctx(), "truncated"))?,
        num_devices: f64_(0x88)?,
        // dev_item starts at 0xc9 with its devid.
        devid: f64_(0xc9)?,
        sectorsize,
        nodesize,
        csum,
        sys_chunks,
    })
}

/// The `sys_chunk_array`: a disk key then a chunk item (48 bytes and 32 per stripe), repeated.
fn parse_sys_array(mut b: &[u8]) -> Result<Vec<(Key, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = Key::parse(b, 0).ok_or("truncated key in sys_chunk_array")?;
        if key.ty != super::CHUNK_ITEM_KEY {
            return Err(format!("item of type {} in sys_chunk_array", key.ty));
        }
        let rest = b.get(Key::LEN..).ok_or("truncated sys_chunk_array")?;
        let stripes = le16(rest, 44).ok_or("truncated chunk in sys_chunk_array")?;
        if stripes == 0 {
            return Err("chunk with no stripes in sys_chunk_array".into());
        }
        let len = 48usize.saturating_add(32usize.saturating_mul(usize::from(stripes)));
        let item = rest
            .get(..len)
            .ok_or("truncated chunk in sys_chunk_array")?;
        out.push((key, item.to_vec()));
        b = rest.get(len..).unwrap_or(&[]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Vec<u8> {
        let mut b = vec![0u8; SUPER_LEN];
        b[0x30..0x38].copy_from_slice(&0x1_0000u64.to_le_bytes());
        b[0x40..0x48].copy_from_slice(MAGIC);
        b[0x90..0x94].copy_from_slice(&4096u32.to_le_bytes());
        b[0x94..0x98].copy_from_slice(&16384u32.to_le_bytes());
        super::super::csum::set_crc32c(&mut b);
        b
    }

    #[test]
    fn a_valid_superblock_parses_and_a_flipped_byte_is_a_checksum_error() {
        let b = valid();
        let sb = parse(&b, 0x1_0000).unwrap();
        assert_eq!(sb.nodesize, 16384);
        let mut bad = b.clone();
        bad[0x100] ^= 1;
        let e = parse(&bad, 0x1_0000).unwrap_err();
        assert!(e.to_string().contains("crc32c checksum mismatch"), "{e}");
    }

    #[test]
    fn unknown_features_are_refused_by_name() {
        let mut b = valid();
        b[0xbc..0xc4].copy_from_slice(&(1u64 << 13).to_le_bytes());
        super::super::csum::set_crc32c(&mut b);
        let e = parse(&b, 0x1_0000).unwrap_err();
        assert!(matches!(e, FsError::Incompatible { .. }));
        assert!(e.to_string().contains("extent-tree-v2"), "{e}");
    }

    #[test]
    fn a_hostile_sys_array_is_an_error_not_a_panic() {
        assert!(parse_sys_array(&[0xff; 17]).is_err());
        let mut k = vec![0u8; 17 + 48];
        k[8] = super::super::CHUNK_ITEM_KEY;
        k[17 + 44] = 0xff;
        assert!(parse_sys_array(&k).is_err());
    }
}
