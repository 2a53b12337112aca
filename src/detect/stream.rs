//! Streaming a file through the matcher in overlapping chunks, with line numbers.
//!
//! Memory stays bounded whatever the file size: one buffer of [`CHUNK`] + [`OVERLAP`] bytes.
//! Consecutive chunks share [`OVERLAP`] bytes; a match belongs to the chunk it starts in before
//! the overlap, so a match spanning a boundary is seen whole exactly once.

use super::credfiles::keystore::is_java_keystore;
use super::engine::{Chunk, Matcher, RawMatch, dedupe};
use super::window::{CHUNK, OVERLAP, is_text as text_probe};
use std::io::{ErrorKind, Read};

/// Bytes of a Java keystore kept for the keystore check.
const KEYSTORE_HEAD: usize = 1024 * 1024;

/// Consecutive `Interrupted` reads tolerated before giving up.
const MAX_INTERRUPTS: u32 = 64;

/// What streaming one file produced.
#[derive(Debug)]
pub(crate) struct Streamed {
    /// Matches, deduplicated, sorted by start.
    pub matches: Vec<RawMatch>,
    /// The first `head_cap` bytes of the file (for path-based checks).
    pub head: Vec<u8>,
    /// Whether the file holds more than `head`.
    pub head_truncated: bool,
    /// A read failed before `head` was complete: it is not the file's first bytes, only the
    /// part that could be read, and no check may judge the file by it.
    pub head_failed: bool,
    /// Bytes read.
    pub bytes: u64,
    /// The read error that stopped the scan, if any (matches so far are kept).
    pub error: Option<std::io::Error>,
}

/// Fill `buf[*len..]` from `r`. Returns whether end of file was reached, or the read error.
fn fill(r: &mut dyn Read, buf: &mut [u8], len: &mut usize) -> Result<bool, std::io::Error> {
    let mut interrupts = 0;
    while *len < buf.len() {
        let Some(dst) = buf.get_mut(*len..) else {
            break;
        };
        match r.read(dst) {
            Ok(0) => return Ok(true),
            Ok(n) => *len += n.min(dst.len()),
            Err(e) if e.kind() == ErrorKind::Interrupted && interrupts < MAX_INTERRUPTS => {
                interrupts += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

thread_local! {
    /// One chunk buffer per worker thread, reused from file to file: allocating and zeroing
    /// 1 MiB for every small file was a large share of a scan's time.
    static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Stream `content` through `matcher`; keep its first `head_cap` bytes for checks.
/// `text_tier`: search the keywords only text-only rules have (false for package data).
pub(crate) fn stream(
    matcher: &Matcher,
    content: &mut dyn Read,
    head_cap: usize,
    text_tier: bool,
) -> Streamed {
    // Taken out of the thread-local for the duration (a nested call, for an archive member, finds
    // it empty and allocates its own), and put back after.
    let mut buf = BUFFER.with(std::cell::Cell::take);
    buf.resize(CHUNK + OVERLAP, 0);
    let out = stream_with(matcher, content, head_cap, text_tier, &mut buf);
    BUFFER.with(|b| b.set(buf));
    out
}

fn stream_with(
    matcher: &Matcher,
    content: &mut dyn Read,
    head_cap: usize,
    text_tier: bool,
    buf: &mut [u8],
) -> Streamed {
    let mut len = 0usize;
    let mut base = 0u64;
    let mut newlines_before = 0u64;
    let mut budget = matcher.budget();
    let mut matches = Vec::new();
    let mut head = Vec::new();
    let mut head_truncated = false;
    let mut is_text = true;
    let mut error = None;
    let mut first = true;
    let mut head_failed = false;
    loop {
        let eof = match fill(content, buf, &mut len) {
            Ok(eof) => eof,
            Err(e) => {
                error = Some(e);
                head_failed |= first && len <= head_cap;
                true
            }
        };
        let chunk = buf.get(..len).unwrap_or(&[]);
        if first {
            first = false;
            is_text = text_probe(chunk);
            // A Java keystore is judged by content wherever it lives: keep its head too.
            let head_cap = if is_java_keystore(chunk) {
                head_cap.max(KEYSTORE_HEAD)
            } else {
                head_cap
            };
            head = chunk[..len.min(head_cap)].to_vec();
            head_truncated = !eof || len > head_cap;
        }
        // Matches starting in the overlap belong to the next chunk, unless there is none.
        let owned_end = if eof { len + 1 } else { CHUNK };
        let before = matches.len();
        let piece = Chunk {
            buf: chunk,
            base,
            owned_end,
            is_text,
            text_tier,
        };
        matcher.scan_chunk(piece, &mut budget, &mut matches);
        if is_text {
            number_lines(chunk, base, newlines_before, &mut matches[before..]);
        }
        if eof {
            break;
        }
        // A non-final chunk is full, so it holds more than CHUNK bytes.
        newlines_before += memchr::memchr_iter(b'\n', &chunk[..CHUNK]).count() as u64;
        buf.copy_within(CHUNK..len, 0);
        len -= CHUNK;
        base += CHUNK as u64;
    }
    dedupe(&mut matches);
    Streamed {
        matches,
        head,
        head_truncated,
        head_failed,
        bytes: base + len as u64,
        error,
    }
}

/// Give each match its 1-based line, counting newlines incrementally in start order.
fn number_lines(chunk: &[u8], base: u64, newlines_before: u64, found: &mut [RawMatch]) {
    found.sort_by_key(|m| m.start);
    let mut pos = 0usize;
    let mut count = newlines_before;
    for m in found {
        let at = usize::try_from(m.start.saturating_sub(base))
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        if at > pos {
            count += memchr::memchr_iter(b'\n', &chunk[pos..at]).count() as u64;
            pos = at;
        }
        m.line = Some(count + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::catalog::{BUILTIN_FILES, compile};

    const KEY: &str = "AKIACPCZW4FLKEW5GOHI";

    fn matcher() -> Matcher {
        Matcher::new(&compile(BUILTIN_FILES, &crate::detect::registry::reserved_ids()).0).unwrap()
    }

    /// A reader that hands out at most 7 bytes per call, then fails if asked to.
    struct Dribble<'a> {
        data: &'a [u8],
        fail_at: Option<usize>,
        pos: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(std::io::Error::other("disk went away"));
            }
            let n = out.len().min(7).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn a_match_across_a_chunk_boundary_is_found_once() {
        let m = matcher();
        for shift in [0usize, 5, 10, 19, 20, 21, OVERLAP - 3, OVERLAP + 5] {
            let mut data = vec![b'.'; CHUNK - 10 + shift];
            data.extend_from_slice(KEY.as_bytes());
            data.extend_from_slice(&vec![b'.'; CHUNK]);
            let s = stream(&m, &mut data.as_slice(), 0, true);
            assert_eq!(s.matches.len(), 1, "shift {shift}");
            assert_eq!(s.matches[0].start, (CHUNK - 10 + shift) as u64);
            assert_eq!(s.matches[0].secret, KEY.as_bytes());
            assert_eq!(s.bytes, data.len() as u64);
        }
    }

    #[test]
    fn line_numbers_span_chunks() {
        let m = matcher();
        let mut data = "line\n".repeat(300_000).into_bytes();
        data.extend_from_slice(format!("key {KEY}\n").as_bytes());
        let s = stream(
            &m,
            &mut Dribble {
                data: &data,
                fail_at: None,
                pos: 0,
            },
            16,
            true,
        );
        assert_eq!(s.matches[0].line, Some(300_001));
        assert_eq!(s.head, b"line\nline\nline\nl");
        assert!(s.head_truncated);
    }

    #[test]
    fn binary_files_have_no_lines() {
        let m = matcher();
        let data = [b"\0\n\n".as_slice(), KEY.as_bytes()].concat();
        let s = stream(&m, &mut data.as_slice(), 1 << 20, true);
        assert_eq!(s.matches[0].line, None);
        assert_eq!(s.matches[0].start, 3);
        assert!(!s.head_truncated);
    }

    #[test]
    fn a_read_error_keeps_what_was_found() {
        let m = matcher();
        let data = format!("{KEY}\n{}", "x".repeat(100));
        let mut r = Dribble {
            data: data.as_bytes(),
            fail_at: Some(30),
            pos: 0,
        };
        let s = stream(&m, &mut r, 0, true);
        assert!(s.error.is_some());
        assert_eq!(s.matches.len(), 1);
        assert_eq!(s.bytes, 35);
    }

    #[test]
    fn empty_input() {
        let s = stream(&matcher(), &mut std::io::empty(), 10, true);
        assert!(s.matches.is_empty() && s.head.is_empty() && s.bytes == 0);
    }
}
