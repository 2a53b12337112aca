//! VHD (Virtual PC / Azure): the 512-byte footer at the end of the file (`conectix`), a fixed
//! disk (the data precedes the footer) or a dynamic one (the dynamic header, the block
//! allocation table read whole and capped; each block's sector bitmap is skipped, unallocated
//! blocks read as zeros). Refuses a differencing disk (its parent holds the rest).

use super::{BlockMap, ContainerError, Loc, Mapped, be32, be64, read_table};
use crate::source::{SharedSource, Source};
use std::sync::Arc;

/// The footer's cookie.
pub(super) const COOKIE: &[u8] = b"conectix";
/// Block allocation tables larger than this are refused.
const MAX_BAT: u64 = 64 << 20;

/// Whether the last sector of `file` is a VHD footer.
pub(super) fn has_footer(file: &dyn Source) -> bool {
    let mut f = [0u8; 8];
    file.len()
        .checked_sub(512)
        .is_some_and(|at| file.read_at(at, &mut f).is_ok() && f == COOKIE)
}

struct Dynamic {
    block_bits: u32,
    bitmap: u64,
    bat: Vec<u32>,
}

fn corrupt(file: &dyn Source, offset: u64, message: String) -> ContainerError {
    ContainerError::Corrupt {
        kind: "vhd",
        path: file.describe(),
        offset,
        message,
    }
}

/// Open a VHD.
pub(super) fn open(file: SharedSource) -> Result<SharedSource, ContainerError> {
    let f = &*file;
    let at = f
        .len()
        .checked_sub(512)
        .ok_or_else(|| corrupt(f, 0, "shorter than its footer".into()))?;
    let mut foot = read_table(f, "vhd", "footer", at, 512, 512)?;
    let mut foot_at = at;
    if &foot[..8] != COOKIE {
        // A dynamic disk keeps a copy of the footer at the start.
        foot = read_table(f, "vhd", "footer copy", 0, 512, 512)?;
        foot_at = 0;
        if &foot[..8] != COOKIE {
            return Err(corrupt(f, at, "no footer".into()));
        }
    }
    let sum = foot
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |s, (_, b)| s.wrapping_add(u32::from(*b)));
    if !sum != be32(&foot, 64) {
        return Err(corrupt(
            f,
            foot_at + 64,
            "footer checksum does not match".into(),
        ));
    }
    let size = be64(&foot, 48);
    match be32(&foot, 60) {
        2 => {
            if size > at {
                return Err(corrupt(
                    f,
                    foot_at + 48,
                    format!("fixed disk of {size} bytes in a file of {at} bytes of data"),
                ));
            }
            Ok(Arc::new(super::super::Window::new(
                file.clone(),
                0,
                size,
                format!("{} (vhd)", f.describe()),
            )))
        }
        3 => open_dynamic(file, be64(&foot, 16), size),
        4 => Err(ContainerError::Unsupported {
            kind: "vhd",
            path: f.describe(),
            message:
                "is a differencing disk: its parent holds the unchanged blocks; scan a merged copy"
                    .into(),
        }),
        t => Err(corrupt(f, foot_at + 60, format!("disk type {t}"))),
    }
}

fn open_dynamic(
    file: SharedSource,
    hdr_at: u64,
    size: u64,
) -> Result<SharedSource, ContainerError> {
    let f = &*file;
    let h = read_table(f, "vhd", "dynamic header", hdr_at, 1024, 1024)?;
    if &h[..8] != b"cxsparse" {
        return Err(corrupt(f, hdr_at, "no dynamic header (cxsparse)".into()));
    }
    let bat_at = be64(&h, 16);
    let entries = u64::from(be32(&h, 28));
    let block = u64::from(be32(&h, 32));
    if !(512..=(256 << 20)).contains(&block) || !block.is_power_of_two() {
        return Err(corrupt(f, hdr_at + 32, format!("block size {block}")));
    }
    let needed = size.div_ceil(block);
    if entries < needed {
        return Err(corrupt(
            f,
            hdr_at + 28,
            format!("{entries} table entries cannot cover {size} bytes"),
        ));
    }
    let raw = read_table(
        f,
        "vhd",
        "block allocation table",
        bat_at,
        needed * 4,
        MAX_BAT,
    )?;
    let bat = raw.chunks_exact(4).map(|c| be32(c, 0)).collect();
    // One bit per sector, rounded up to whole sectors.
    let bitmap = (block / 512).div_ceil(8).div_ceil(512) * 512;
    let d = Dynamic {
        block_bits: block.trailing_zeros(),
        bitmap,
        bat,
    };
    Ok(Arc::new(Mapped::new(file, d, size)))
}

impl BlockMap for Dynamic {
    fn kind(&self) -> &'static str {
        "vhd"
    }

    fn block_size(&self) -> u64 {
        1 << self.block_bits
    }

    fn locate(&self, file: &dyn Source, block: u64) -> Result<Loc, String> {
        let e = usize::try_from(block)
            .ok()
            .and_then(|i| self.bat.get(i))
            .copied()
            .ok_or_else(|| format!("block {block} is outside the allocation table"))?;
        if e == u32::MAX {
            return Ok(Loc::Zero);
        }
        let host = u64::from(e) * 512 + self.bitmap;
        if host.saturating_add(self.block_size()) > file.len() {
            return Err(format!(
                "BAT entry {block} points to sector {e}, past the end of the file ({} bytes)",
                file.len()
            ));
        }
        Ok(Loc::Raw(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::Mem;

    /// A fixed VHD of 1024 bytes of data.
    fn fixed() -> Vec<u8> {
        let mut b = vec![7u8; 1024 + 512];
        let f = &mut b[1024..];
        f.fill(0);
        f[..8].copy_from_slice(COOKIE);
        f[48..56].copy_from_slice(&1024u64.to_be_bytes());
        f[60..64].copy_from_slice(&2u32.to_be_bytes());
        let sum = !f.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        b
    }

    #[test]
    fn fixed_disk_is_the_data_before_the_footer_and_a_flip_fails_the_checksum() {
        let s = open(Arc::new(Mem(fixed()))).unwrap();
        assert_eq!(s.len(), 1024);
        let mut b = fixed();
        b[1024 + 60 + 3] = 4; // differencing, checksum now wrong
        let err = open(Arc::new(Mem(b))).err().unwrap();
        assert!(
            matches!(err, ContainerError::Corrupt { offset: 1088, .. }),
            "{err}"
        );
    }
}
