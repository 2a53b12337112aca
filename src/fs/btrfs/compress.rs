//! Decompression of btrfs extents: zlib (a zlib stream, `flate2`), zstd (frames, `ruzstd`) and
//! LZO (btrfs's own framing: a 4-byte total length, then per-sector segments, each a 4-byte
//! length and an LZO1X block, a segment header never straddling a sector; `lzokay-native`,
//! MIT). Output is capped at the extent's `ram_bytes` (itself capped by the caller), the LZO
//! decoder runs under `catch_unwind` (it indexes without checks on hostile input) and
//! decodes at most one sector per segment.

use super::items::Compression;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Largest compressed segment accepted in an LZO extent (the worst case of one sector of
/// 64 KiB is a little over 64 KiB).
const LZO_SEGMENT_MAX: usize = 68 * 1024;

/// Decompress `data` into exactly `out_len` bytes (a shorter stream is padded with zeros, as the
/// kernel does; a longer one is cut).
pub fn decompress(
    kind: Compression,
    data: &[u8],
    out_len: usize,
    sectorsize: usize,
) -> Result<Vec<u8>, String> {
    let mut out = match kind {
        Compression::None => data.get(..out_len.min(data.len())).unwrap_or(&[]).to_vec(),
        Compression::Zlib => bounded(flate2::read::ZlibDecoder::new(data), out_len)
            .map_err(|e| format!("zlib: {e}"))?,
        Compression::Zstd => {
            let d =
                ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| format!("zstd: {e}"))?;
            bounded(d, out_len).map_err(|e| format!("zstd: {e}"))?
        }
        Compression::Lzo => lzo(data, out_len, sectorsize)?,
    };
    out.resize(out_len, 0);
    Ok(out)
}

fn bounded(r: impl Read, out_len: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(out_len);
    r.take(out_len as u64).read_to_end(&mut out)?;
    Ok(out)
}

fn le32(b: &[u8], at: usize) -> Option<usize> {
    let v = u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?);
    usize::try_from(v).ok()
}

/// btrfs LZO framing.
fn lzo(data: &[u8], out_len: usize, sectorsize: usize) -> Result<Vec<u8>, String> {
    let total = le32(data, 0).ok_or("lzo: no header")?;
    if total > data.len() || total < 4 {
        return Err(format!(
            "lzo: header says {total} bytes, the extent holds {}",
            data.len()
        ));
    }
    let data = data.get(..total).unwrap_or(&[]);
    let mut out = Vec::with_capacity(out_len);
    let mut pos = 4usize;
    while out.len() < out_len && pos < total {
        let in_sector = sectorsize - pos % sectorsize;
        if in_sector < 4 {
            pos = pos.saturating_add(in_sector);
            if pos >= total {
                break;
            }
        }
        let seg_len = le32(data, pos).ok_or("lzo: truncated segment header")?;
        if seg_len == 0 || seg_len > LZO_SEGMENT_MAX {
            return Err(format!("lzo: segment of {seg_len} bytes at {pos}"));
        }
        let start = pos + 4;
        let seg = start
            .checked_add(seg_len)
            .and_then(|end| data.get(start..end))
            .ok_or_else(|| format!("lzo: segment at {pos} runs past the extent"))?;
        let dec = catch_unwind(AssertUnwindSafe(|| {
            lzokay_native::decompress_all(seg, Some(sectorsize))
        }))
        .map_err(|_| format!("lzo: malformed segment at {pos}"))?
        .map_err(|e| format!("lzo: segment at {pos}: {e}"))?;
        if dec.len() > sectorsize {
            return Err(format!(
                "lzo: segment at {pos} decompresses to {} bytes, more than a sector",
                dec.len()
            ));
        }
        out.extend_from_slice(&dec);
        pos = start + seg_len;
    }
    out.truncate(out_len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_round_trips_and_is_capped() {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&[7u8; 10_000]).unwrap();
        let z = e.finish().unwrap();
        assert_eq!(
            decompress(Compression::Zlib, &z, 10_000, 4096).unwrap(),
            vec![7u8; 10_000]
        );
        assert_eq!(
            decompress(Compression::Zlib, &z, 100, 4096).unwrap().len(),
            100
        );
    }

    #[test]
    fn lzo_segments_decode_and_garbage_is_an_error() {
        // A hand-made LZO1X block: a run of 5 literals, then the end-of-stream marker.
        let seg = b"\x16hello\x11\x00\x00";
        let mut x = vec![0u8; 4];
        x.extend_from_slice(&(seg.len() as u32).to_le_bytes());
        x.extend_from_slice(seg);
        x.extend_from_slice(&(seg.len() as u32).to_le_bytes());
        x.extend_from_slice(seg);
        let n = x.len() as u32;
        x[..4].copy_from_slice(&n.to_le_bytes());
        assert_eq!(
            decompress(Compression::Lzo, &x, 10, 4096).unwrap(),
            b"hellohello"
        );
        for flip in [4usize, 8, 9, 12, 14, 17, 22] {
            let mut bad = x.clone();
            bad[flip] ^= 0xff;
            let _ = decompress(Compression::Lzo, &bad, 10, 4096);
        }
        assert!(decompress(Compression::Lzo, &[0xff; 64], 8192, 4096).is_err());
    }
}
