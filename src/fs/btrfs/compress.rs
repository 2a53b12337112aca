//! Decompression of btrfs extents: zlib (a zlib stream, `flate2`), zstd (frames, `ruzstd`) and
//! LZO (btrfs's own framing: a 4-byte total length, then per-sector segments, each a 4-byte
//! length and an LZO1X block, a segment header never straddling a sector; the LZO1X decoder is
//! here, [`lzo1x`], written after the format as LZO and lzokay document it). Output is capped at
//! the extent's `ram_bytes` (itself capped by the caller); an LZO segment decodes to at most one
//! sector, every read and back-reference is checked, so hostile input is an error, never a
//! panic.

use super::items::Compression;
use std::io::Read;

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
        let dec = lzo1x(seg, sectorsize).map_err(|e| format!("lzo: segment at {pos}: {e}"))?;
        out.extend_from_slice(&dec);
        pos = start + seg_len;
    }
    out.truncate(out_len);
    Ok(out)
}

/// Decode one LZO1X block into at most `max_out` bytes.
pub fn lzo1x(src: &[u8], max_out: usize) -> Result<Vec<u8>, &'static str> {
    const SHORT: &str = "truncated block";
    const LONG: &str = "decodes to more than a sector";
    let mut out: Vec<u8> = Vec::new();
    let mut ip = 0usize;
    let byte = |ip: &mut usize| -> Result<usize, &'static str> {
        let b = *src.get(*ip).ok_or(SHORT)?;
        *ip += 1;
        Ok(usize::from(b))
    };
    // A length continued in zero bytes (255 each) and a final byte.
    let long = |ip: &mut usize, base: usize| -> Result<usize, &'static str> {
        let mut n = base;
        loop {
            let b = usize::from(*src.get(*ip).ok_or(SHORT)?);
            *ip += 1;
            if b != 0 {
                return Ok(n + b);
            }
            n += 255;
        }
    };
    let literals = |out: &mut Vec<u8>, ip: &mut usize, n: usize| -> Result<(), &'static str> {
        let lit = src.get(*ip..ip.checked_add(n).ok_or(SHORT)?).ok_or(SHORT)?;
        if out.len() + n > max_out {
            return Err(LONG);
        }
        out.extend_from_slice(lit);
        *ip += n;
        Ok(())
    };
    let mut state = 0usize;
    match src.first().copied().map(usize::from) {
        Some(b @ 22..) => {
            ip = 1;
            literals(&mut out, &mut ip, b - 17)?;
            state = 4;
        }
        Some(b @ 18..=21) => {
            ip = 1;
            literals(&mut out, &mut ip, b - 17)?;
            state = b - 17;
        }
        _ => {}
    }
    loop {
        let inst = byte(&mut ip)?;
        let (dist, len, next);
        if inst & 0xc0 != 0 {
            dist = (byte(&mut ip)? << 3) + ((inst >> 2) & 7) + 1;
            len = (inst >> 5) + 1;
            next = inst & 3;
        } else if inst & 0x20 != 0 {
            len = match inst & 0x1f {
                0 => long(&mut ip, 31)? + 2,
                l => l + 2,
            };
            let d = byte(&mut ip)? | (byte(&mut ip)? << 8);
            dist = (d >> 2) + 1;
            next = d & 3;
        } else if inst & 0x10 != 0 {
            len = match inst & 7 {
                0 => long(&mut ip, 7)? + 2,
                l => l + 2,
            };
            let d = byte(&mut ip)? | (byte(&mut ip)? << 8);
            let far = ((inst & 8) << 11) + (d >> 2);
            if far == 0 {
                // The end-of-stream marker.
                return if len == 3 {
                    Ok(out)
                } else {
                    Err("bad end marker")
                };
            }
            dist = far + 16384;
            next = d & 3;
        } else if state == 0 {
            let n = match inst {
                0 => long(&mut ip, 15)? + 3,
                l => l + 3,
            };
            literals(&mut out, &mut ip, n)?;
            state = 4;
            continue;
        } else if state != 4 {
            dist = (inst >> 2) + (byte(&mut ip)? << 2) + 1;
            len = 2;
            next = inst & 3;
        } else {
            dist = (inst >> 2) + (byte(&mut ip)? << 2) + 2049;
            len = 3;
            next = inst & 3;
        }
        if dist > out.len() {
            return Err("back-reference before the start");
        }
        if out.len() + len > max_out {
            return Err(LONG);
        }
        let from = out.len() - dist;
        for i in 0..len {
            let b = out[from + i];
            out.push(b);
        }
        literals(&mut out, &mut ip, next)?;
        state = next;
    }
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

    #[test]
    fn random_lzo1x_blocks_are_errors_or_bounded_output_never_panics() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 64) as usize;
            let block: Vec<u8> = (0..n)
                .map(|i| (x.rotate_left(i as u32 * 7) >> 3) as u8)
                .collect();
            if let Ok(out) = lzo1x(&block, 4096) {
                assert!(out.len() <= 4096);
            }
        }
        // A literal run longer than the cap is refused.
        let mut big = vec![
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x01,
        ];
        big.resize(big.len() + 5000, b'a');
        assert_eq!(lzo1x(&big, 4096), Err("decodes to more than a sector"));
    }
}
