//! Files with long holes, read without their holes.
//!
//! A hole (or an unwritten extent) reads as zeros, and zeros hold no secret. A file whose size
//! says terabytes over a few blocks — a sparse file, or an inode whose size field is damaged or
//! hostile — would otherwise be read, and matched, as terabytes of zeros: in practice a hang.
//! [`Dense`] shows such a file with every hole longer than [`GAP`] shortened to `GAP` zero
//! bytes: the data keeps its order and its neighbours, a match never runs across a hole it could
//! not have run across, and the bytes read are the data plus at most `GAP` per hole.

use crate::fs::SeekRead;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

/// The longest run of zeros a hole is shown as (and the shortest hole that is shortened).
pub const GAP: u64 = 64 * 1024;

/// Files smaller than this are read whole: asking for their data ranges costs more than the
/// zeros it could save.
pub const MIN_SIZE: u64 = 16 << 20;

/// One piece of the shortened file: `len` bytes at shown offset `at`, read from file offset
/// `from`, or zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    at: u64,
    len: u64,
    from: Option<u64>,
}

/// The pieces of a file of `size` bytes whose data lies in `data` (in order, within the size):
/// data and short holes as they are, each hole longer than [`GAP`] as `GAP` zeros. `None` when
/// no hole is long enough to shorten.
fn pieces(data: &[Range<u64>], size: u64) -> Option<Vec<Piece>> {
    let mut out: Vec<Piece> = Vec::new();
    let mut at = 0u64;
    let mut shortened = false;
    // Bytes `from..from + len` of the file (a long hole as GAP zeros), after the last piece.
    let mut push = |from: u64, len: u64, hole: bool| {
        let (from, len) = if hole && len > GAP {
            shortened = true;
            (None, GAP)
        } else {
            (Some(from), len)
        };
        if len == 0 {
            return;
        }
        match (out.last_mut(), from) {
            (Some(last), Some(f)) if last.from.is_some_and(|lf| lf + last.len == f) => {
                last.len += len
            }
            _ => out.push(Piece { at, len, from }),
        }
        at += len;
    };
    let mut pos = 0u64;
    for r in data {
        let (start, end) = (r.start.clamp(pos, size), r.end.clamp(pos, size));
        push(pos, start - pos, true);
        push(start, end - start, false);
        pos = pos.max(end);
    }
    push(pos, size.saturating_sub(pos), true);
    shortened.then_some(out)
}

/// A file's content with its long holes shortened (see the module).
pub struct Dense<'a> {
    inner: Box<dyn SeekRead + 'a>,
    pieces: Vec<Piece>,
    len: u64,
    pos: u64,
    /// The inner reader's position, when known, to seek it only when it is elsewhere.
    inner_pos: Option<u64>,
}

impl<'a> Dense<'a> {
    /// `inner` shown without its long holes, if it has any (else `inner` back).
    pub fn new(
        inner: Box<dyn SeekRead + 'a>,
        data: &[Range<u64>],
        size: u64,
    ) -> Result<Dense<'a>, Box<dyn SeekRead + 'a>> {
        match pieces(data, size) {
            Some(pieces) => {
                let len = pieces.last().map_or(0, |p| p.at + p.len);
                Ok(Dense {
                    inner,
                    pieces,
                    len,
                    pos: 0,
                    inner_pos: None,
                })
            }
            None => Err(inner),
        }
    }

    /// Length of the shortened file.
    pub fn len(&self) -> u64 {
        self.len
    }
}

impl Read for Dense<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.pieces.partition_point(|p| p.at + p.len <= self.pos);
        let Some(p) = self.pieces.get(i).copied() else {
            return Ok(0);
        };
        let within = self.pos - p.at;
        let want = usize::try_from(p.len - within)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = match p.from {
            None => {
                buf[..want].fill(0);
                want
            }
            Some(from) => {
                let real = from + within;
                if self.inner_pos != Some(real) {
                    self.inner.seek(SeekFrom::Start(real))?;
                }
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the file ends at byte {real}, before its size"),
                    ));
                }
                self.inner_pos = Some(real + n as u64);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Dense<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| std::io::Error::other("seek before the start of the file"))?;
        self.pos = pos;
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A sparse file in memory: `data` at its offsets, zeros elsewhere.
    fn file(size: usize, data: &[(usize, &[u8])]) -> Vec<u8> {
        let mut f = vec![0u8; size];
        for (at, d) in data {
            f[*at..*at + d.len()].copy_from_slice(d);
        }
        f
    }

    fn dense(bytes: Vec<u8>, ranges: &[Range<u64>]) -> Option<Vec<u8>> {
        let size = bytes.len() as u64;
        let d = Dense::new(Box::new(Cursor::new(bytes)), ranges, size).ok()?;
        let len = d.len();
        let mut out = Vec::new();
        let mut d = d;
        d.read_to_end(&mut out).unwrap();
        assert_eq!(out.len() as u64, len);
        Some(out)
    }

    #[test]
    fn long_holes_become_gap_zeros_and_the_data_keeps_its_order() {
        let size = 10 * GAP as usize;
        let f = file(size, &[(100, b"HEAD"), (5 * GAP as usize, b"MIDDLE")]);
        let out = dense(f, &[0..4096, 5 * GAP..5 * GAP + 4096]).unwrap();
        // 4 KiB of data, the hole up to 5 GAP as GAP zeros, 4 KiB, the tail hole as GAP zeros.
        assert_eq!(out.len() as u64, 4096 + GAP + 4096 + GAP);
        assert_eq!(&out[100..104], b"HEAD");
        let mid = (4096 + GAP) as usize;
        assert_eq!(&out[mid..mid + 6], b"MIDDLE");
        assert!(out[4096..mid].iter().all(|&b| b == 0));
    }

    #[test]
    fn short_holes_stay_and_a_file_without_long_holes_is_given_back() {
        let f = file(3 * GAP as usize, &[(0, b"a"), (GAP as usize + 10, b"b")]);
        // Holes of under GAP between and after: nothing to shorten.
        assert!(dense(f.clone(), &[0..4096, GAP..GAP + 4096, 2 * GAP..3 * GAP]).is_none());
        // A long hole at the start is shortened; the data after it is intact.
        let out = dense(f, &[GAP + 8..GAP + 16, 2 * GAP + 1..3 * GAP]).unwrap();
        assert_eq!(
            out.len() as u64,
            8 + (2 * GAP + 1 - (GAP + 16)) + GAP - 1 + GAP
        );
        assert_eq!(out[GAP as usize + 2], b'b');
    }

    #[test]
    fn seeks_land_on_the_shortened_offsets() {
        let size = 8 * GAP as usize;
        let f = file(size, &[(7 * GAP as usize, b"tail!")]);
        let mut d = Dense::new(
            Box::new(Cursor::new(f)),
            std::slice::from_ref(&(7 * GAP..7 * GAP + 5)),
            size as u64,
        )
        .ok()
        .unwrap();
        // GAP zeros for the hole before, the five bytes, the short tail hole as it is.
        assert_eq!(d.len(), GAP + 5 + (GAP - 5));
        d.seek(SeekFrom::Start(GAP)).unwrap();
        let mut b = [0u8; 5];
        d.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"tail!");
        d.seek(SeekFrom::End(-(GAP as i64))).unwrap();
        d.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"tail!");
    }

    #[test]
    fn a_terabyte_over_one_block_is_read_as_the_block_and_two_gaps() {
        // The size alone: the reader never serves the hole, so a Cursor over one block stands
        // in for the file (reading past it would fail the test).
        let block = file(4096, &[(10, b"key")]);
        let size = 1u64 << 40;
        let mid = 1u64 << 39;
        struct At(u64, Cursor<Vec<u8>>);
        impl Read for At {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                self.1.read(b)
            }
        }
        impl Seek for At {
            fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
                let SeekFrom::Start(n) = to else {
                    return Err(std::io::Error::other("only seeks from the start"));
                };
                let n = n
                    .checked_sub(self.0)
                    .ok_or_else(|| std::io::Error::other("a hole"))?;
                self.1.seek(SeekFrom::Start(n)).map(|p| p + self.0)
            }
        }
        let mut d = Dense::new(
            Box::new(At(mid, Cursor::new(block))),
            std::slice::from_ref(&(mid..mid + 4096)),
            size,
        )
        .ok()
        .unwrap();
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(out.len() as u64, GAP + 4096 + GAP);
        assert_eq!(&out[GAP as usize + 10..GAP as usize + 13], b"key");
    }
}
