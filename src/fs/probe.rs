//! Recognise what a volume holds from the magic numbers at the start of it: the filesystems
//! amiscan reads, and the formats it names without reading (their bytes are scanned raw, and the
//! report says which format it was rather than "no filesystem recognised"), and the areas that
//! hold no files by design (swap, a dm-verity hash tree).

use crate::source::Source;

/// What a probe found at the start of a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// ext2/3/4 (superblock magic 0xEF53 at byte 1080).
    Ext4,
    /// XFS (`XFSB` at byte 0).
    Xfs,
    /// An LVM2 physical volume (`LABELONE` in one of the first four sectors).
    LvmPv,
    /// Linux swap (`SWAPSPACE2` at the end of the first page).
    Swap,
    /// FAT12/16/32 (an EFI system partition).
    Fat,
    /// Btrfs (`_BHRfS_M` at 64 KiB + 0x40).
    Btrfs,
    /// NTFS (`NTFS    ` at byte 3).
    Ntfs,
    /// A dm-crypt / LUKS container.
    Luks,
    /// ISO 9660 (`CD001` at 32769).
    Iso9660,
    /// squashfs (`hsqs` at 0).
    Squashfs,
    /// EROFS (magic `0xE0F5E1E2`, little-endian, at 1024).
    Erofs,
    /// F2FS (magic `0xF2F52010`, little-endian, at 1024).
    F2fs,
    /// A dm-verity hash tree with its superblock (`verity\0\0` at 0): hashes of another
    /// partition's blocks, no files.
    Verity,
}

impl FsKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::LvmPv => "LVM2_member",
            FsKind::Swap => "swap",
            FsKind::Fat => "vfat",
            FsKind::Btrfs => "btrfs",
            FsKind::Ntfs => "ntfs",
            FsKind::Luks => "crypto_LUKS",
            FsKind::Iso9660 => "iso9660",
            FsKind::Squashfs => "squashfs",
            FsKind::Erofs => "erofs",
            FsKind::F2fs => "f2fs",
            FsKind::Verity => "verity",
        }
    }

    /// What the format is, in words, for messages (`erofs filesystem`, `LUKS encrypted
    /// volume`).
    pub fn describe(self) -> String {
        match self {
            FsKind::Luks => "LUKS encrypted volume".to_string(),
            FsKind::LvmPv => "LVM physical volume".to_string(),
            FsKind::Swap => "swap area".to_string(),
            FsKind::Verity => "dm-verity hash tree".to_string(),
            k => format!("{} filesystem", k.name()),
        }
    }
}

/// Magic of a Linux swap area, at the end of its first page (`SWAPSPACE2`, or the old
/// `SWAP-SPACE`), for the page sizes Linux uses.
const SWAP_MAGIC_ENDS: [usize; 4] = [4096, 8192, 16384, 65536];

/// The length of a swap area's header (its first page), from the bytes at the start of the
/// volume; `None` when it is not a swap area.
pub fn swap_header_len(buf: &[u8]) -> Option<u64> {
    SWAP_MAGIC_ENDS
        .iter()
        .find(|&&end| at(buf, end - 10, b"SWAPSPACE2") || at(buf, end - 10, b"SWAP-SPACE"))
        .map(|&end| end as u64)
}

/// Bytes read from the start of a volume to probe it: enough for every magic above.
pub const PROBE_LEN: usize = 64 * 1024 + 4096;

/// Outcome of probing a volume.
#[derive(Debug)]
pub enum Probe {
    /// A known on-disk format.
    Known(FsKind),
    /// Every probed byte is zero: nothing was ever written there.
    Zeroed,
    /// Non-zero bytes in no format amiscan knows.
    Unknown,
}

/// Probe `src` for a filesystem. Reads at most [`PROBE_LEN`] bytes (fewer if the volume is
/// smaller); a read error is returned to the caller.
pub fn probe(src: &dyn Source) -> Result<Probe, crate::source::SourceError> {
    let len = usize::try_from(src.len())
        .unwrap_or(usize::MAX)
        .min(PROBE_LEN);
    let mut buf = vec![0u8; len];
    src.read_at(0, &mut buf)?;
    let found = probe_bytes(&buf);
    if matches!(found, Probe::Known(_)) {
        return Ok(found);
    }
    // An ext2/3/4 whose primary superblock is gone is still found by its backup in group 1
    // (where `e2fsck -b` looks), for each block size: a few 1 KiB reads, only here.
    let mut sb = [0u8; 1024];
    for at in super::ext4::backup_offsets() {
        if at.saturating_add(1024) <= src.len()
            && src.read_at(at, &mut sb).is_ok()
            && super::ext4::is_backup_super(at, &sb)
        {
            return Ok(Probe::Known(FsKind::Ext4));
        }
    }
    Ok(found)
}

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    off.checked_add(magic.len())
        .and_then(|end| buf.get(off..end))
        .is_some_and(|b| b == magic)
}

/// Probe a buffer holding the first bytes of a volume.
pub fn probe_bytes(buf: &[u8]) -> Probe {
    // Four-byte magics at 1024 first: the two-byte ext4 magic at 1080 falls inside their
    // superblocks.
    let kind = if at(buf, 1024, &0xE0F5_E1E2u32.to_le_bytes()) {
        Some(FsKind::Erofs)
    } else if at(buf, 1024, &0xF2F5_2010u32.to_le_bytes()) {
        Some(FsKind::F2fs)
    } else if at(buf, 0, b"verity\0\0") {
        Some(FsKind::Verity)
    } else if at(buf, 1080, &[0x53, 0xEF]) {
        Some(FsKind::Ext4)
    } else if at(buf, 0, b"XFSB") {
        Some(FsKind::Xfs)
    } else if (0..4)
        .any(|s: usize| at(buf, s * 512, b"LABELONE") && at(buf, s * 512 + 24, b"LVM2 001"))
    {
        Some(FsKind::LvmPv)
    } else if at(buf, 0, b"LUKS\xba\xbe") {
        Some(FsKind::Luks)
    } else if swap_header_len(buf).is_some() {
        Some(FsKind::Swap)
    } else if at(buf, 65536 + 64, b"_BHRfS_M") {
        Some(FsKind::Btrfs)
    } else if at(buf, 3, b"NTFS    ") {
        Some(FsKind::Ntfs)
    } else if at(buf, 0, b"hsqs") {
        Some(FsKind::Squashfs)
    } else if at(buf, 32769, b"CD001") {
        Some(FsKind::Iso9660)
    } else if at(buf, 510, &[0x55, 0xAA])
        && (at(buf, 82, b"FAT32   ") || at(buf, 54, b"FAT1") || at(buf, 54, b"FAT     "))
    {
        Some(FsKind::Fat)
    } else {
        None
    };
    match kind {
        Some(k) => Probe::Known(k),
        None if buf.iter().all(|&b| b == 0) => Probe::Zeroed,
        None => Probe::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_magics() {
        let mut b = vec![0u8; PROBE_LEN];
        assert!(matches!(probe_bytes(&b), Probe::Zeroed));
        b[1080] = 0x53;
        b[1081] = 0xEF;
        assert!(matches!(probe_bytes(&b), Probe::Known(FsKind::Ext4)));
        let mut x = vec![0u8; 4096];
        x[..4].copy_from_slice(b"XFSB");
        assert!(matches!(probe_bytes(&x), Probe::Known(FsKind::Xfs)));
        let mut s = vec![0u8; 4096];
        s[4086..].copy_from_slice(b"SWAPSPACE2");
        assert!(matches!(probe_bytes(&s), Probe::Known(FsKind::Swap)));
        let mut l = vec![0u8; 4096];
        l[512..520].copy_from_slice(b"LABELONE");
        l[536..544].copy_from_slice(b"LVM2 001");
        assert!(matches!(probe_bytes(&l), Probe::Known(FsKind::LvmPv)));
        let mut v = vec![0u8; 4096];
        v[..8].copy_from_slice(b"verity\0\0");
        assert!(matches!(probe_bytes(&v), Probe::Known(FsKind::Verity)));
        let mut e = vec![0u8; 4096];
        e[1024..1028].copy_from_slice(&[0xE2, 0xE1, 0xF5, 0xE0]);
        assert!(matches!(probe_bytes(&e), Probe::Known(FsKind::Erofs)));
        let mut f = vec![0u8; 4096];
        f[1024..1028].copy_from_slice(&[0x10, 0x20, 0xF5, 0xF2]);
        f[1080..1082].copy_from_slice(&[0x53, 0xEF]);
        assert!(matches!(probe_bytes(&f), Probe::Known(FsKind::F2fs)));
        assert_eq!(swap_header_len(&s), Some(4096));
        assert_eq!(swap_header_len(&f), None);
    }

    #[test]
    fn short_buffers_do_not_panic() {
        for n in [0, 1, 3, 511, 1081] {
            let b = vec![0xffu8; n];
            let _ = probe_bytes(&b);
        }
        assert!(matches!(probe_bytes(&[1, 2, 3]), Probe::Unknown));
    }
}
