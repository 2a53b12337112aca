//! Decoders for the compression layers, each a `Read` over a `Read`: gzip (flate2, pure Rust),
//! bzip2 (libbz2-rs-sys, pure Rust), xz (lzma-rust2, with a dictionary memory limit), zstd
//! (ruzstd, with a window limit checked before any allocation, and concatenated and skippable
//! frames handled here).

use super::limit::Limits;
use super::magic::Kind;
use std::io::{self, ErrorKind, Read};

/// A reader that can look ahead.
pub struct Peek<R> {
    buf: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R: Read> Peek<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        Peek {
            buf: Vec::new(),
            pos: 0,
            inner,
        }
    }

    /// The next `n` bytes without consuming them (fewer at the end of the stream).
    pub fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        while self.buf.len() < n {
            let at = self.buf.len();
            self.buf.resize(n, 0);
            match self.inner.read(&mut self.buf[at..]) {
                Ok(0) => {
                    self.buf.truncate(at);
                    break;
                }
                Ok(k) => self.buf.truncate(at + k.min(n - at)),
                Err(e) if e.kind() == ErrorKind::Interrupted => self.buf.truncate(at),
                Err(e) => {
                    self.buf.truncate(at);
                    return Err(e);
                }
            }
        }
        Ok(self.buf.get(..n.min(self.buf.len())).unwrap_or(&[]))
    }
}

impl<R: Read> Read for Peek<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(pending) = self.buf.get(self.pos..).filter(|p| !p.is_empty()) {
            let n = pending.len().min(out.len());
            out[..n].copy_from_slice(&pending[..n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(out)
    }
}

/// Zstandard magic number (little-endian).
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// The window a zstd frame needs, from its header (`head` starts at the magic).
fn zstd_window(head: &[u8]) -> Option<u64> {
    let fhd = *head.get(4)?;
    if fhd & 0x20 == 0 {
        let wd = *head.get(5)?;
        let base = 1u64 << (10 + u32::from(wd >> 3));
        return Some(base + (base / 8) * u64::from(wd & 7));
    }
    let dict = [0usize, 1, 2, 4][usize::from(fhd & 3)];
    let fcs = [1usize, 2, 4, 8][usize::from(fhd >> 6)];
    let v = le(head.get(5 + dict..5 + dict + fcs)?);
    Some(if fcs == 2 { v + 256 } else { v })
}

/// A zstd stream of one or more frames (skippable frames skipped).
pub struct Zstd<R: Read> {
    dec: Option<ruzstd::decoding::StreamingDecoder<Peek<R>, ruzstd::decoding::FrameDecoder>>,
    src: Option<Peek<R>>,
    max_window: u64,
}

impl<R: Read> Zstd<R> {
    /// A decoder over `inner` refusing frames whose window exceeds `max_window` bytes.
    pub fn new(inner: R, max_window: u64) -> Self {
        Zstd {
            dec: None,
            src: Some(Peek::new(inner)),
            max_window,
        }
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

impl<R: Read> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Each pass returns, or consumes a frame header or a skippable frame.
        loop {
            if let Some(d) = self.dec.as_mut() {
                let n = d.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if let Some(d) = self.dec.take() {
                    self.src = Some(d.into_parts().0);
                }
            }
            let Some(mut src) = self.src.take() else {
                return Ok(0);
            };
            let head = src.peek(18)?;
            if head.is_empty() {
                return Ok(0);
            }
            let magic = u32::try_from(le(head.get(..4).unwrap_or(head))).unwrap_or(0);
            if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
                let len = le(head.get(4..8).unwrap_or(&[])).saturating_add(8);
                let got = io::copy(&mut (&mut src).take(len), &mut io::sink())?;
                if got < len {
                    return Err(bad("zstd: truncated skippable frame".into()));
                }
                self.src = Some(src);
                continue;
            }
            if magic != ZSTD_MAGIC {
                return Err(bad("zstd: data after the last frame is not a frame".into()));
            }
            let window = zstd_window(head).ok_or_else(|| bad("zstd: truncated header".into()))?;
            if window > self.max_window {
                return Err(bad(format!(
                    "zstd: frame window of {window} bytes exceeds the {} allowed",
                    self.max_window
                )));
            }
            let d = ruzstd::decoding::StreamingDecoder::new(src)
                .map_err(|e| bad(format!("zstd: {e}")))?;
            self.dec = Some(d);
        }
    }
}

/// The decoder for compression `kind` over `r`.
pub fn decoder<'a>(kind: Kind, r: impl Read + 'a, limits: &Limits) -> Box<dyn Read + 'a> {
    match kind {
        Kind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Kind::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Kind::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            r,
            true,
            u32::try_from(limits.max_window >> 10).unwrap_or(u32::MAX),
        )),
        Kind::Zstd => Box::new(Zstd::new(r, limits.max_window)),
        // Not compression layers: pass through (never called for them).
        Kind::Tar | Kind::Zip => Box::new(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_then_read_gives_every_byte_once() {
        let mut p = Peek::new(b"abcdef".as_slice());
        assert_eq!(p.peek(3).unwrap(), b"abc");
        let mut two = [0u8; 2];
        p.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"ab");
        assert_eq!(p.peek(10).unwrap(), b"cdef");
        let mut rest = vec![];
        p.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"cdef");
    }

    #[test]
    fn zstd_window_sizes() {
        // Window descriptor: exponent 3, mantissa 0 -> 8 KiB.
        assert_eq!(
            zstd_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 3 << 3]),
            Some(8192)
        );
        // Single segment, 1-byte content size.
        assert_eq!(zstd_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x20, 100]), Some(100));
        // Single segment, 2-byte content size is offset by 256.
        assert_eq!(
            zstd_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x60, 0, 1]),
            Some(512)
        );
        assert_eq!(zstd_window(&[0x28, 0xb5, 0x2f, 0xfd]), None);
    }

    #[test]
    fn a_huge_zstd_window_is_refused_before_allocating() {
        // Window log 10 + 31 = 2 TiB.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 31 << 3, 0, 0, 0];
        let mut z = Zstd::new(frame.as_slice(), 1 << 20);
        let err = z.read(&mut [0u8; 16]).unwrap_err();
        assert!(err.to_string().contains("window"), "{err}");
    }

    #[test]
    fn garbage_in_every_decoder_is_an_error_not_a_panic() {
        let limits = Limits::default();
        for kind in [Kind::Gzip, Kind::Bzip2, Kind::Xz, Kind::Zstd] {
            for data in [
                &b""[..],
                b"\x1f\x8b\x08\0garbage",
                b"BZh91AY&SYxx",
                b"\xfd7zXZ\0zz",
            ] {
                let mut d = decoder(kind, data, &limits);
                let mut out = vec![];
                let _ = d.read_to_end(&mut out);
            }
        }
    }
}
