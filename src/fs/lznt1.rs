//! LZNT1, the compression of NTFS compressed files (the `compressed` attribute, what
//! `compact /c` and ntfs-3g's `compression` write): decompresses one compression unit.
//!
//! A compression unit (16 clusters) is stored as a sequence of chunks, each a 2-byte header
//! (bits 0–11: the chunk's length less 3; bit 15: compressed) and its data, decompressing to at
//! most 4096 bytes. An uncompressed chunk is 4096 bytes as they are. A compressed chunk is
//! groups of a flag byte and eight items: a literal byte (flag bit 0) or a 16-bit
//! back-reference (flag bit 1) whose split between offset and length depends on how far into
//! the 4096-byte block the output is (4 to 12 offset bits). A header of 0 ends the unit; a
//! chunk that decompresses to less than 4096 bytes is followed by zeros up to the block's end,
//! as ntfs-3g and Windows read it.
//!
//! Bounded: the output never exceeds the unit size the caller gives; a back-reference before
//! the start of its block, a chunk running past the input, a truncated token are errors.

use thiserror::Error;

/// Bytes one chunk decompresses to at most.
const BLOCK: usize = 4096;

/// Why a compression unit could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Lznt1Error {
    /// A chunk's length runs past the compressed data.
    #[error("LZNT1 chunk at byte {0} runs past the compressed data")]
    Truncated(usize),
    /// A back-reference points before the start of its block.
    #[error("LZNT1 back-reference before the start of its block at byte {0}")]
    BadReference(usize),
}

/// Decompress `input` (the allocated clusters of one compression unit) into at most `unit`
/// bytes; the result is `unit` bytes long, zeros after the last chunk.
pub fn decompress(input: &[u8], unit: usize) -> Result<Vec<u8>, Lznt1Error> {
    let mut out: Vec<u8> = Vec::with_capacity(unit);
    let mut at = 0usize;
    while out.len() < unit {
        let Some(h) = input.get(at..at.saturating_add(2)) else {
            break;
        };
        let header = u16::from_le_bytes([h[0], h[1]]);
        if header == 0 {
            break;
        }
        let len = usize::from(header & 0x0fff).saturating_add(1);
        let start = at.saturating_add(2);
        let data = input
            .get(start..start.saturating_add(len))
            .ok_or(Lznt1Error::Truncated(at))?;
        let block_start = out.len();
        let block_end = block_start.saturating_add(BLOCK).min(unit);
        if header & 0x8000 == 0 {
            // Stored: the block as it is.
            let n = data.len().min(block_end.saturating_sub(block_start));
            out.extend_from_slice(data.get(..n).unwrap_or(&[]));
        } else {
            block(data, &mut out, block_start, block_end, start)?;
        }
        // A short block is followed by zeros up to its end.
        out.resize(block_end, 0);
        at = start.saturating_add(len);
    }
    out.resize(unit, 0);
    Ok(out)
}

/// One compressed chunk's tokens into `out` (which ends at `block_end`).
fn block(
    data: &[u8],
    out: &mut Vec<u8>,
    block_start: usize,
    block_end: usize,
    base: usize,
) -> Result<(), Lznt1Error> {
    let mut i = 0usize;
    while i < data.len() && out.len() < block_end {
        let flags = data.get(i).copied().unwrap_or(0);
        i = i.saturating_add(1);
        for bit in 0..8 {
            if i >= data.len() || out.len() >= block_end {
                break;
            }
            if flags & (1 << bit) == 0 {
                out.push(data.get(i).copied().unwrap_or(0));
                i = i.saturating_add(1);
                continue;
            }
            let t = data
                .get(i..i.saturating_add(2))
                .ok_or(Lznt1Error::Truncated(base.saturating_add(i)))?;
            let token = u16::from_le_bytes([t[0], t[1]]);
            i = i.saturating_add(2);
            let pos = out.len().saturating_sub(block_start);
            if pos == 0 {
                return Err(Lznt1Error::BadReference(base.saturating_add(i)));
            }
            // Offset bits grow with the position in the block: 4 at its start, up to 12.
            let mut shift = 12u32;
            let mut p = pos.saturating_sub(1);
            while p >= 0x10 {
                shift = shift.saturating_sub(1);
                p >>= 1;
            }
            let offset = usize::from(token >> shift).saturating_add(1);
            let length = usize::from(token & (0x0fff >> (12 - shift))).saturating_add(3);
            if offset > pos {
                return Err(Lznt1Error::BadReference(base.saturating_add(i)));
            }
            let from = out.len().saturating_sub(offset);
            for k in 0..length {
                if out.len() >= block_end {
                    break;
                }
                let b = out.get(from.saturating_add(k)).copied().unwrap_or(0);
                out.push(b);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_compressed_chunks() {
        // "abcabcabcabc" as literals a, b, c then a back-reference: offset 3, length 9. At
        // position 3, 4 offset bits: token = ((3-1) << 12) | (9-3).
        let token: u16 = (2 << 12) | 6;
        let mut chunk = vec![0b0000_1000, b'a', b'b', b'c'];
        chunk.extend(token.to_le_bytes());
        let mut input = (0x8000u16 | u16::try_from(chunk.len() - 1).unwrap())
            .to_le_bytes()
            .to_vec();
        input.extend(&chunk);
        input.extend([0, 0]);
        let out = decompress(&input, 8192).unwrap();
        assert_eq!(&out[..12], b"abcabcabcabc");
        assert!(out[12..].iter().all(|&b| b == 0));
        assert_eq!(out.len(), 8192);

        // A stored chunk.
        let mut input = (u16::try_from(BLOCK - 1).unwrap()).to_le_bytes().to_vec();
        input.extend(vec![7u8; BLOCK]);
        assert_eq!(decompress(&input, BLOCK).unwrap(), vec![7u8; BLOCK]);
    }

    #[test]
    fn damage_is_an_error() {
        // A chunk longer than the input.
        assert_eq!(
            decompress(&[0xff, 0x8f, 0, 1], 4096),
            Err(Lznt1Error::Truncated(0))
        );
        // A back-reference at the start of a block.
        assert!(matches!(
            decompress(&[0x02, 0x80, 0x01, 0x00, 0x00], 4096),
            Err(Lznt1Error::BadReference(_))
        ));
        // Anything else: an answer or an error, never a panic or more than the unit.
        for seed in 0..2000u32 {
            let data: Vec<u8> = (0..64u32)
                .map(|i| {
                    u8::try_from((seed.wrapping_mul(2_654_435_761) ^ i.wrapping_mul(97)) % 256)
                        .unwrap()
                })
                .collect();
            if let Ok(o) = decompress(&data, 65536) {
                assert_eq!(o.len(), 65536);
            }
        }
    }
}
