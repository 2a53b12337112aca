//! The geometry every part of detection agrees on: the chunk a streamed file is scanned in, the
//! overlap between chunks, the window around a keyword hit in which a signature's regex may match
//! ([`BACK`], [`FWD`]), the per-rule cap on matches and the text probe. The catalog checks its
//! examples against it, the engine and the streamer scan by it; it imports nothing.

/// Bytes scanned per chunk of a streamed file.
pub(crate) const CHUNK: usize = 1024 * 1024;
/// Bytes shared by consecutive chunks: a match starting in a chunk and no longer than this
/// (a 4096-bit RSA PEM is ~3.3 KiB, 8192-bit ~6.5 KiB) is always seen whole.
pub(crate) const OVERLAP: usize = 16 * 1024;
/// How far before a keyword hit a match may start.
pub(crate) const BACK: usize = 1024;
/// How far after a keyword hit a match may extend.
pub(crate) const FWD: usize = OVERLAP;
/// At most this many raw matches of one rule are kept per file (bounds memory on adversarial
/// input). Per rule, so a flood of one rule (say documentation keys) cannot hide another.
pub(crate) const MAX_MATCHES_PER_RULE: usize = 4096;

/// A file is text when its first this-many bytes hold no NUL.
pub(crate) const TEXT_PROBE: usize = 8 * 1024;

/// Whether a file starting with `head` is text (no NUL in its first [`TEXT_PROBE`] bytes).
pub(crate) fn is_text(head: &[u8]) -> bool {
    !head[..head.len().min(TEXT_PROBE)].contains(&0)
}
