//! Tree-block and data checksums and the tree depth bound: what the superblock's checks, the
//! tree reader and the data reader use (a leaf, so none imports another).

use super::le32;

/// Levels of a btrfs tree (0 = leaf).
pub const MAX_LEVEL: u8 = 8;

/// Checksum algorithms of tree blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumType {
    /// CRC32C: verified.
    Crc32c,
    /// xxhash64: not verified (said so in the report).
    Xxhash,
    /// SHA-256: verified.
    Sha256,
    /// BLAKE2b: not verified (said so in the report).
    Blake2,
}

impl CsumType {
    /// The name `btrfs inspect-internal` uses.
    pub fn name(self) -> &'static str {
        match self {
            CsumType::Crc32c => "crc32c",
            CsumType::Xxhash => "xxhash64",
            CsumType::Sha256 => "sha256",
            CsumType::Blake2 => "blake2b",
        }
    }
}

const CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// Whether the checksum at the start of `b` matches the rest (`None`: an algorithm amiscan
/// does not verify).
pub fn csum_matches(csum: CsumType, b: &[u8]) -> Option<bool> {
    let body = b.get(0x20..)?;
    match csum {
        CsumType::Crc32c => Some(le32(b, 0) == Some(CRC32C.checksum(body))),
        CsumType::Sha256 => {
            use sha2::Digest;
            let d = sha2::Sha256::digest(body);
            Some(b.get(..32) == Some(d.as_slice()))
        }
        CsumType::Xxhash | CsumType::Blake2 => None,
    }
}

impl CsumType {
    /// Bytes of one checksum as the checksum tree stores it (one per data sector).
    pub fn size(self) -> usize {
        match self {
            CsumType::Crc32c => 4,
            CsumType::Xxhash => 8,
            CsumType::Sha256 | CsumType::Blake2 => 32,
        }
    }

    /// Whether amiscan computes this checksum (crc32c, sha256).
    pub fn verified(self) -> bool {
        matches!(self, CsumType::Crc32c | CsumType::Sha256)
    }
}

/// Whether the data sector `data` has the checksum `want` (its first [`CsumType::size`]
/// bytes); `None`: an algorithm amiscan does not verify.
pub fn sector_matches(csum: CsumType, data: &[u8], want: &[u8]) -> Option<bool> {
    match csum {
        CsumType::Crc32c => Some(want.get(..4) == Some(&CRC32C.checksum(data).to_le_bytes()[..])),
        CsumType::Sha256 => {
            use sha2::Digest;
            let d = sha2::Sha256::digest(data);
            Some(want.get(..32) == Some(d.as_slice()))
        }
        CsumType::Xxhash | CsumType::Blake2 => None,
    }
}

/// Store the crc32c of `b` at its start (tests build blocks with it).
#[cfg(test)]
pub fn set_crc32c(b: &mut [u8]) {
    let c = CRC32C.checksum(&b[0x20..]);
    b[..4].copy_from_slice(&c.to_le_bytes());
}
