//! VHDX (Hyper-V): the file identifier, the two headers (the valid one with the higher sequence
//! number, CRC-32C checked), the region table (CRC-32C checked), the metadata region (block
//! size, virtual size, logical sector size) and the block allocation table (read whole, capped;
//! a sector-bitmap entry after every chunk of payload entries). Payload blocks not present,
//! zero or unmapped read as zeros. Refuses a log to replay (the file was not closed cleanly),
//! a differencing disk, and any required region or metadata item it does not know.

use super::{BlockMap, ContainerError, Loc, Mapped, le16, le32, le64, read_table};
use crate::source::{SharedSource, Source};
use std::sync::Arc;

/// The file type identifier.
pub(super) const MAGIC: &[u8] = b"vhdxfile";
/// Allocation tables larger than this are refused.
const MAX_BAT: u64 = 64 << 20;

/// A GUID as stored on disk (the first three fields little-endian).
const fn guid(d1: u32, d2: u16, d3: u16, d4: u64) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    let d = d4.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

const BAT: [u8; 16] = guid(0x2DC2_7766, 0xF623, 0x4200, 0x9D64_115E_9BFD_4A08);
const METADATA: [u8; 16] = guid(0x8B7C_A206, 0x4790, 0x4B9A, 0xB8FE_575F_050F_886E);
const FILE_PARAMETERS: [u8; 16] = guid(0xCAA1_6737, 0xFA36, 0x4D43, 0xB3B6_33F0_AA44_E76B);
const VIRTUAL_DISK_SIZE: [u8; 16] = guid(0x2FA5_4224, 0xCD1B, 0x4876, 0xB211_5DBE_D83B_F4B8);
const LOGICAL_SECTOR: [u8; 16] = guid(0x8141_BF1D, 0xA96F, 0x4709, 0xBA47_F233_A8FA_AB5F);
const PHYSICAL_SECTOR: [u8; 16] = guid(0xCDA3_48C7, 0x445D, 0x4471, 0x9CC9_E988_5251_C556);
const PAGE83: [u8; 16] = guid(0xBECA_12AB, 0xB2E6, 0x4523, 0x93EF_C309_E000_C746);

struct Vhdx {
    block_bits: u32,
    chunk_ratio: u64,
    bat: Vec<u64>,
}

fn corrupt(file: &dyn Source, offset: u64, message: String) -> ContainerError {
    ContainerError::Corrupt {
        kind: "vhdx",
        path: file.describe(),
        offset,
        message,
    }
}

fn unsupported(file: &dyn Source, message: String) -> ContainerError {
    ContainerError::Unsupported {
        kind: "vhdx",
        path: file.describe(),
        message,
    }
}

/// CRC-32C of `b` with the four bytes at 4 (the checksum field) taken as zero.
fn checksum_ok(b: &[u8]) -> bool {
    const C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut d = C.digest();
    d.update(b.get(..4).unwrap_or_default());
    d.update(&[0; 4]);
    d.update(b.get(8..).unwrap_or_default());
    d.finalize() == le32(b, 4)
}

/// Open a VHDX.
pub(super) fn open(file: SharedSource) -> Result<SharedSource, ContainerError> {
    let f = &*file;
    // The current header: the valid one with the higher sequence number.
    let mut best: Option<(u64, Vec<u8>)> = None;
    for at in [64u64 << 10, 128 << 10] {
        let Ok(h) = read_table(f, "vhdx", "header", at, 4096, 4096) else {
            continue;
        };
        if &h[..4] == b"head"
            && checksum_ok(&h)
            && best.as_ref().is_none_or(|(_, b)| le64(&h, 8) > le64(b, 8))
        {
            best = Some((at, h));
        }
    }
    let (hat, h) = best.ok_or_else(|| corrupt(f, 64 << 10, "neither header is valid".into()))?;
    if le16(&h, 66) != 1 {
        return Err(unsupported(f, format!("version {}", le16(&h, 66))));
    }
    if h[48..64].iter().any(|&b| b != 0) {
        return Err(unsupported(
            f,
            format!(
                "header at byte {hat} names a log to replay (the image was not closed cleanly): open it once with Hyper-V or qemu-img check -r all to apply it"
            ),
        ));
    }
    let mut regions = None;
    for at in [192u64 << 10, 256 << 10] {
        if let Ok(r) = read_table(f, "vhdx", "region table", at, 64 << 10, 64 << 10)
            && &r[..4] == b"regi"
            && checksum_ok(&r)
        {
            regions = Some(r);
            break;
        }
    }
    let r = regions.ok_or_else(|| corrupt(f, 192 << 10, "neither region table is valid".into()))?;
    let count = usize::try_from(le32(&r, 8)).unwrap_or(usize::MAX).min(2047);
    let (mut bat_region, mut meta_region) = (None, None);
    for i in 0..count {
        let e = r.get(16 + i * 32..48 + i * 32).unwrap_or_default();
        if e.len() < 32 {
            break;
        }
        let place = (le64(e, 16), u64::from(le32(e, 24)));
        if e[..16] == BAT {
            bat_region = Some(place);
        } else if e[..16] == METADATA {
            meta_region = Some(place);
        } else if le32(e, 28) & 1 != 0 {
            return Err(unsupported(f, "a required region it does not know".into()));
        }
    }
    let (bat_at, bat_len) =
        bat_region.ok_or_else(|| corrupt(f, 192 << 10, "no BAT region".into()))?;
    let (meta_at, meta_len) =
        meta_region.ok_or_else(|| corrupt(f, 192 << 10, "no metadata region".into()))?;
    let meta = read_table(f, "vhdx", "metadata region", meta_at, meta_len, 1 << 20)?;
    if meta.get(..8) != Some(b"metadata".as_slice()) {
        return Err(corrupt(f, meta_at, "no metadata table".into()));
    }
    let (mut block, mut size, mut sector, mut has_parent) = (None, None, None, false);
    for i in 0..usize::from(le16(&meta, 10)).min(2047) {
        let e = meta.get(32 + i * 32..64 + i * 32).unwrap_or_default();
        if e.len() < 32 {
            return Err(corrupt(
                f,
                meta_at,
                "metadata table runs past its region".into(),
            ));
        }
        let off = usize::try_from(le32(e, 16)).unwrap_or(usize::MAX);
        let item = |n: usize| {
            meta.get(off..off.saturating_add(n))
                .ok_or_else(|| corrupt(f, meta_at, "metadata item outside its region".into()))
        };
        let id: [u8; 16] = e[..16].try_into().unwrap_or_default();
        match id {
            FILE_PARAMETERS => {
                let v = item(8)?;
                block = Some(u64::from(le32(v, 0)));
                has_parent = le32(v, 4) & 2 != 0;
            }
            VIRTUAL_DISK_SIZE => size = Some(le64(item(8)?, 0)),
            LOGICAL_SECTOR => sector = Some(u64::from(le32(item(4)?, 0))),
            PHYSICAL_SECTOR | PAGE83 => {}
            _ if le32(e, 24) & 4 != 0 => {
                return Err(unsupported(
                    f,
                    "a required metadata item it does not know (a parent locator?)".into(),
                ));
            }
            _ => {}
        }
    }
    if has_parent {
        return Err(unsupported(
            f,
            "is a differencing disk: its parent holds the unchanged blocks; scan a merged copy"
                .into(),
        ));
    }
    let (Some(block), Some(size), Some(sector)) = (block, size, sector) else {
        return Err(corrupt(
            f,
            meta_at,
            "block size, virtual size or sector size missing".into(),
        ));
    };
    if !(1 << 20..=256 << 20).contains(&block) || !block.is_power_of_two() {
        return Err(corrupt(f, meta_at, format!("block size {block}")));
    }
    if sector != 512 && sector != 4096 {
        return Err(corrupt(f, meta_at, format!("logical sector size {sector}")));
    }
    let chunk_ratio = ((1u64 << 23) * sector) / block;
    let blocks = size.div_ceil(block);
    let entries = blocks.saturating_add(blocks.saturating_sub(1) / chunk_ratio);
    let want = entries.saturating_mul(8);
    if want > bat_len {
        return Err(corrupt(
            f,
            bat_at,
            format!("BAT region of {bat_len} bytes cannot cover {size} bytes"),
        ));
    }
    let raw = read_table(f, "vhdx", "block allocation table", bat_at, want, MAX_BAT)?;
    let bat = raw.chunks_exact(8).map(|c| le64(c, 0)).collect();
    let v = Vhdx {
        block_bits: block.trailing_zeros(),
        chunk_ratio,
        bat,
    };
    Ok(Arc::new(Mapped::new(file, v, size)))
}

impl BlockMap for Vhdx {
    fn kind(&self) -> &'static str {
        "vhdx"
    }

    fn block_size(&self) -> u64 {
        1 << self.block_bits
    }

    fn locate(&self, file: &dyn Source, block: u64) -> Result<Loc, String> {
        let i = block.saturating_add(block / self.chunk_ratio);
        let e = usize::try_from(i)
            .ok()
            .and_then(|i| self.bat.get(i))
            .copied()
            .ok_or_else(|| format!("block {block} is outside the BAT"))?;
        match e & 7 {
            0..=3 => Ok(Loc::Zero),
            6 => {
                let host = (e >> 20) << 20;
                if host.saturating_add(self.block_size()) > file.len() {
                    return Err(format!(
                        "BAT entry {i} for block {block} points to file offset {host}, past the end of the file ({} bytes)",
                        file.len()
                    ));
                }
                Ok(Loc::Raw(host))
            }
            s => Err(format!("BAT entry {i} for block {block} has state {s}")),
        }
    }
}
