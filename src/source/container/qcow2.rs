//! qcow2 (QEMU copy-on-write, versions 2 and 3): the header, the L1 table (read whole, capped)
//! and the L2 entries (read one at a time as blocks are located). Handles plain clusters,
//! unallocated and zero clusters (zeros), and compressed clusters (deflate, or zstd in v3).
//! Refuses a backing file (named in the error), encryption, an external data file and extended
//! L2 entries (subclusters). Internal snapshots are ignored: the active L1 table is the disk.

use super::{BlockMap, ContainerError, Loc, Mapped, be32, be64, read_bounded, read_table};
use crate::source::{SharedSource, Source};
use std::sync::Arc;

/// `QFI\xfb`.
pub(super) const MAGIC: &[u8] = b"QFI\xfb";

/// L1 tables larger than this are refused (32 MiB: a 2 PiB disk at 64 KiB clusters).
const MAX_L1: u64 = 32 << 20;

/// Bits 9..=55 of an L1 or L2 entry: a host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L2 entry: the cluster is compressed.
const COMPRESSED: u64 = 1 << 62;
/// L2 entry (v3): the cluster reads as zeros.
const ZERO: u64 = 1;

struct Qcow2 {
    cluster_bits: u32,
    l1: Vec<u64>,
    zstd: bool,
}

fn unsupported(file: &dyn Source, message: String) -> ContainerError {
    ContainerError::Unsupported {
        kind: "qcow2",
        path: file.describe(),
        message,
    }
}

fn corrupt(file: &dyn Source, offset: u64, message: String) -> ContainerError {
    ContainerError::Corrupt {
        kind: "qcow2",
        path: file.describe(),
        offset,
        message,
    }
}

/// Open a qcow2 image.
pub(super) fn open(file: SharedSource) -> Result<SharedSource, ContainerError> {
    let f = &*file;
    let h = read_table(f, "qcow2", "header", 0, 112.min(f.len()), 112)?;
    if h.len() < 72 {
        return Err(corrupt(f, 0, "header shorter than 72 bytes".into()));
    }
    let version = be32(&h, 4);
    if !(2..=3).contains(&version) {
        return Err(unsupported(
            f,
            format!("version {version} (only 2 and 3 are read)"),
        ));
    }
    let backing_off = be64(&h, 8);
    let backing_len = be32(&h, 16);
    if backing_off != 0 {
        let len = u64::from(backing_len.min(1023));
        let name = read_table(f, "qcow2", "backing file name", backing_off, len, 1023)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| "(unreadable name)".into());
        return Err(unsupported(
            f,
            format!(
                "has a backing file {name:?}; its unwritten clusters are in that file, which amiscan does not read: scan a flattened copy (qemu-img convert -O qcow2 IMAGE FLAT.qcow2)"
            ),
        ));
    }
    let cluster_bits = be32(&h, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(corrupt(
            f,
            20,
            format!("cluster_bits {cluster_bits} outside 9..=21"),
        ));
    }
    let size = be64(&h, 24);
    if be32(&h, 32) != 0 {
        return Err(unsupported(f, "is encrypted".into()));
    }
    let l1_size = u64::from(be32(&h, 36));
    let l1_off = be64(&h, 40);
    let mut zstd = false;
    if version == 3 {
        if h.len() < 104 {
            return Err(corrupt(f, 0, "v3 header shorter than 104 bytes".into()));
        }
        let incompat = be64(&h, 72);
        // Bit 0 (dirty: refcounts may be stale) and bit 1 (corrupt: flagged by QEMU) do not
        // change how data is found; bit 3 is the compression type, read below.
        if incompat & (1 << 2) != 0 {
            return Err(unsupported(f, "uses an external data file".into()));
        }
        if incompat & (1 << 4) != 0 {
            return Err(unsupported(
                f,
                "uses extended L2 entries (subclusters)".into(),
            ));
        }
        let unknown = incompat & !0b1_1011;
        if unknown != 0 {
            return Err(unsupported(
                f,
                format!("unknown incompatible features {unknown:#x}"),
            ));
        }
        let header_len = be32(&h, 100);
        if incompat & (1 << 3) != 0 {
            if header_len <= 104 || h.len() <= 104 {
                return Err(corrupt(
                    f,
                    100,
                    "compression type bit set without the field".into(),
                ));
            }
            zstd = match h[104] {
                0 => false,
                1 => true,
                t => return Err(unsupported(f, format!("compression type {t}"))),
            };
        }
    }
    let cluster = 1u64 << cluster_bits;
    // Every cluster of the disk needs an L2 slot: clusters / (cluster / 8) L1 entries.
    let needed = size.div_ceil(cluster).div_ceil(cluster / 8);
    if l1_size < needed {
        return Err(corrupt(
            f,
            36,
            format!("L1 table of {l1_size} entries cannot cover {size} bytes ({needed} needed)"),
        ));
    }
    let l1_bytes = needed
        .checked_mul(8)
        .ok_or_else(|| corrupt(f, 36, "L1 size overflows".into()))?;
    let raw = read_table(f, "qcow2", "L1 table", l1_off, l1_bytes, MAX_L1)?;
    let l1 = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();
    let q = Qcow2 {
        cluster_bits,
        l1,
        zstd,
    };
    Ok(Arc::new(Mapped::new(file, q, size)))
}

impl BlockMap for Qcow2 {
    fn kind(&self) -> &'static str {
        "qcow2"
    }

    fn block_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    fn locate(&self, file: &dyn Source, block: u64) -> Result<Loc, String> {
        let per_l2 = self.block_size() / 8;
        let l1i = block / per_l2;
        let l1e = usize::try_from(l1i)
            .ok()
            .and_then(|i| self.l1.get(i))
            .copied()
            .ok_or_else(|| format!("cluster {block} is outside the L1 table"))?;
        let l2_off = l1e & OFFSET_MASK;
        if l2_off == 0 {
            return Ok(Loc::Zero);
        }
        if !l2_off.is_multiple_of(self.block_size()) {
            return Err(format!(
                "L1 entry {l1i} points to unaligned L2 table offset {l2_off}"
            ));
        }
        let at = l2_off
            .checked_add((block % per_l2) * 8)
            .filter(|a| a.saturating_add(8) <= file.len())
            .ok_or_else(|| {
                format!(
                    "L1 entry {l1i} points to L2 table offset {l2_off}, past the end of the file"
                )
            })?;
        let mut e = [0u8; 8];
        file.read_at(at, &mut e).map_err(|e| e.to_string())?;
        let e = u64::from_be_bytes(e);
        if e & COMPRESSED != 0 {
            // Bits 0..x: host offset; x..62: additional 512-byte sectors, x = 62 - (bits - 8).
            let x = 62 - (self.cluster_bits - 8);
            let at = e & ((1u64 << x) - 1);
            let sectors = (e & ((1u64 << 62) - 1)) >> x;
            let len = (sectors + 1) * 512 - (at & 511);
            return Ok(Loc::Compressed { at, len });
        }
        let host = e & OFFSET_MASK;
        if e & ZERO != 0 || host == 0 {
            return Ok(Loc::Zero);
        }
        if !host.is_multiple_of(self.block_size()) {
            return Err(format!(
                "L2 entry at file offset {at} points to unaligned cluster offset {host}"
            ));
        }
        if host.saturating_add(self.block_size()) > file.len() {
            return Err(format!(
                "L2 entry at file offset {at} points to cluster offset {host}, past the end of the file ({} bytes)",
                file.len()
            ));
        }
        Ok(Loc::Raw(host))
    }

    fn inflate(&self, data: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
        if self.zstd {
            let d = ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| e.to_string())?;
            read_bounded(d, out_len)
        } else {
            read_bounded(flate2::read::DeflateDecoder::new(data), out_len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceError;
    use crate::source::tests::Mem;

    /// A v3 image of 512-byte clusters: header (cluster 0), L1 (cluster 1), L2 (cluster 2),
    /// data (cluster 3) mapped at virtual cluster 1 of a 4-cluster disk.
    fn image() -> Vec<u8> {
        let mut b = vec![0u8; 4 * 512];
        b[..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        b[20..24].copy_from_slice(&9u32.to_be_bytes());
        b[24..32].copy_from_slice(&2048u64.to_be_bytes());
        b[36..40].copy_from_slice(&1u32.to_be_bytes());
        b[40..48].copy_from_slice(&512u64.to_be_bytes());
        b[100..104].copy_from_slice(&104u32.to_be_bytes());
        b[512..520].copy_from_slice(&(1024u64 | 1 << 63).to_be_bytes());
        b[1024 + 8..1024 + 16].copy_from_slice(&(1536u64 | 1 << 63).to_be_bytes());
        b[1536..2048].fill(0xab);
        b
    }

    fn open_bytes(b: Vec<u8>) -> Result<SharedSource, ContainerError> {
        open(Arc::new(Mem(b)))
    }

    #[test]
    fn maps_clusters_and_reads_holes_as_zeros() {
        let s = open_bytes(image()).unwrap();
        assert_eq!(s.len(), 2048);
        let mut buf = [1u8; 1024];
        s.read_at(256, &mut buf).unwrap();
        assert!(buf[..256].iter().all(|&x| x == 0));
        assert!(buf[256..768].iter().all(|&x| x == 0xab));
        assert!(buf[768..].iter().all(|&x| x == 0));
    }

    #[test]
    fn one_flipped_field_gives_the_exact_error() {
        let mut b = image();
        b[35] = 1; // crypt_method AES
        assert!(
            matches!(open_bytes(b), Err(ContainerError::Unsupported { message, .. }) if message == "is encrypted")
        );
        let mut b = image();
        b[23] = 30; // cluster_bits
        assert!(matches!(
            open_bytes(b),
            Err(ContainerError::Corrupt { offset: 20, .. })
        ));
        let mut b = image();
        b[79] = 1 << 4; // extended L2 entries
        assert!(
            matches!(open_bytes(b), Err(ContainerError::Unsupported { message, .. }) if message.contains("subclusters"))
        );
        let mut b = image();
        b[24..32].copy_from_slice(&(1u64 << 50).to_be_bytes()); // disk larger than L1 covers
        assert!(matches!(
            open_bytes(b),
            Err(ContainerError::Corrupt { offset: 36, .. })
        ));
        let mut b = image();
        b[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        b[24..32].copy_from_slice(&(1u64 << 38).to_be_bytes()); // L1 past the cap
        assert!(
            matches!(open_bytes(b), Err(ContainerError::Corrupt { message, .. }) if message.contains("limit"))
        );
        let mut b = image();
        b[1024 + 8..1024 + 16].copy_from_slice(&(1u64 << 40 | 1 << 63).to_be_bytes());
        let s = open_bytes(b).unwrap();
        let err = s.read_at(512, &mut [0u8; 8]).unwrap_err();
        assert!(
            matches!(err, SourceError::Corrupt { offset: 512, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("L2 entry at file offset 1032"),
            "{err}"
        );
    }

    #[test]
    fn a_backing_file_is_refused_by_name() {
        let mut b = image();
        b[8..16].copy_from_slice(&300u64.to_be_bytes());
        b[16..20].copy_from_slice(&8u32.to_be_bytes());
        b[300..308].copy_from_slice(b"base.img");
        let err = open_bytes(b).err().unwrap().to_string();
        assert!(err.contains("backing file \"base.img\""), "{err}");
    }
}
