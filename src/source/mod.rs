//! Byte sources: everything above this module reads an image through [`Source`], so a local raw
//! image and (later) an EBS snapshot look the same to the partition and filesystem parsers.

pub mod container;
#[cfg(feature = "aws")]
pub mod ebs;
mod file;
mod mem;
mod window;

pub use container::{ContainerError, Opened, open_image};
pub use file::FileSource;
pub use mem::MemSource;
pub use window::Window;

use std::sync::Arc;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The read asked for bytes past the end of the source: the image is truncated or a structure
    /// points outside it.
    #[error("read of {len} bytes at offset {offset} goes past the end of {what} ({size} bytes)")]
    OutOfBounds {
        /// Which source.
        what: String,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Size of the source.
        size: u64,
    },
    /// The underlying read failed.
    #[error("I/O error reading {what} at offset {offset}: {source}")]
    Io {
        /// Which source.
        what: String,
        /// Requested offset.
        offset: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A disk-image container's table maps this offset somewhere it cannot be (past the end of
    /// the file, a compressed block that does not inflate).
    #[error("{what}: cannot read offset {offset}: {message}")]
    Corrupt {
        /// Which source (the image and its container format).
        what: String,
        /// Offset in the virtual disk.
        offset: u64,
        /// The table entry and what is wrong with it.
        message: String,
    },
}

/// A fixed-length sequence of bytes readable at any offset from many threads at once.
pub trait Source: Send + Sync {
    /// Length in bytes.
    fn len(&self) -> u64;

    /// True when the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` with the bytes at `offset`. Reads past [`Source::len`] fail with
    /// [`SourceError::OutOfBounds`]; a short read is never returned.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError>;

    /// A short human name for errors (`disk.img`, `disk.img p2`).
    fn describe(&self) -> String;

    /// Hint that `[offset, offset+len)` will be read soon. A remote source starts fetching it
    /// without waiting (the filesystem walk names the next directories' blocks this way);
    /// the default does nothing.
    fn prefetch(&self, _offset: u64, _len: u64) {}

    /// Whether each read may cost a network round trip and goes through a bounded block cache
    /// (an EBS snapshot). A full scan then walks with more threads, hands the source its plan
    /// ([`Source::will_read`]) and scans the files whose blocks have arrived while the walk
    /// goes on; a `--quick` scan runs the volume checks before the content scan (their
    /// scattered reads alongside its forward stream would make the cache drop blocks the
    /// stream still needs).
    fn remote(&self) -> bool {
        false
    }

    /// Hint that the caller will read most of this source's data (a full scan, not `--quick`):
    /// a remote source may read ahead freely. The default does nothing.
    fn will_read_most(&self) {}

    /// Hint that the caller will read nearly all the bytes in `plan` (byte ranges: a
    /// filesystem's allocated space less its journal, or the files left to scan), in an order
    /// of its own: a remote source may fetch them in the background, lowest first, within its
    /// memory bound, whenever it has nothing more urgent to fetch, and keep each until it is
    /// read. A later call replaces the plan; an empty one ends it. The default does nothing.
    fn will_read(&self, _plan: &[std::ops::Range<u64>]) {}

    /// Hint that the full scan which gave the plans has read what it reads of this source (its
    /// content scan ended; what follows is a few lookups): a remote source ends its plan, gives
    /// its share of memory back and stops reading ahead until a new plan comes. Distinct from
    /// an empty plan, which a scan also gives while it goes on (every file was scanned during
    /// the walk, or a physical volume the plan does not touch). The default does nothing.
    fn scan_ended(&self) {}

    /// Whether `[offset, offset+len)` can be read now without waiting for the network (a remote
    /// source holds all of it in memory). Always true for a local source.
    fn ready(&self, _offset: u64, _len: u64) -> bool {
        true
    }
}

/// Shared handle to a source.
pub type SharedSource = Arc<dyn Source>;

/// Check that `[offset, offset+len)` lies inside a source of `size` bytes.
pub(crate) fn check_bounds(
    what: &dyn Fn() -> String,
    offset: u64,
    len: usize,
    size: u64,
) -> Result<(), SourceError> {
    let len64 = u64::try_from(len).unwrap_or(u64::MAX);
    match offset.checked_add(len64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(SourceError::OutOfBounds {
            what: what(),
            offset,
            len: len64,
            size,
        }),
    }
}

/// Adapts a [`Source`] to `std::io::{Read, Seek}` for parsers that want a cursor (the GPT, MBR
/// and FAT crates). Writes always fail. Reads can be capped so a hostile structure that makes a
/// parser loop (a long chain of extended boot records) ends in an error instead of running on.
#[derive(Debug)]
pub struct Cursor {
    src: SharedSource,
    pos: u64,
    reads_left: u64,
}

impl std::fmt::Debug for dyn Source + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Cursor {
    /// A cursor at offset 0 with no practical limit on reads.
    pub fn new(src: SharedSource) -> Self {
        Cursor {
            src,
            pos: 0,
            reads_left: u64::MAX,
        }
    }

    /// Allow at most `max_reads` further reads.
    pub fn with_read_limit(mut self, max_reads: u64) -> Self {
        self.reads_left = max_reads;
        self
    }
}

impl std::io::Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads_left = self.reads_left.checked_sub(1).ok_or_else(|| {
            std::io::Error::other("too many reads: the structure is too long or loops")
        })?;
        let remaining = self.src.len().saturating_sub(self.pos);
        let n = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let dst = buf
            .get_mut(..n)
            .ok_or_else(|| std::io::Error::other("buffer"))?;
        self.src
            .read_at(self.pos, dst)
            .map_err(std::io::Error::other)?;
        self.pos = self
            .pos
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }
}

impl std::io::Seek for Cursor {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            std::io::SeekFrom::Start(p) => Some(p),
            std::io::SeekFrom::End(d) => self.src.len().checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

impl std::io::Write for Cursor {
    fn write(&mut self, _buf: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("amiscan sources are read-only"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};
    use std::sync::Arc;

    /// An in-memory source for tests.
    #[allow(non_snake_case)]
    pub(crate) fn Mem(data: Vec<u8>) -> MemSource {
        MemSource::new(data, "mem")
    }

    #[test]
    fn cursor_reads_to_the_end_then_zero() {
        let m: SharedSource = Arc::new(Mem((0u8..10).collect()));
        let mut c = Cursor::new(m).with_read_limit(100);
        c.seek(SeekFrom::Start(7)).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], &[7, 8, 9]);
        assert_eq!(c.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn cursor_caps_the_number_of_reads() {
        let m: SharedSource = Arc::new(Mem(vec![0; 4096]));
        let mut c = Cursor::new(m).with_read_limit(2);
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).unwrap(), 1);
        assert_eq!(c.read(&mut buf).unwrap(), 1);
        let err = c.read(&mut buf).unwrap_err();
        assert!(err.to_string().contains("too many reads"));
    }

    #[test]
    fn out_of_bounds_names_the_offset() {
        let m = Mem(vec![0; 10]);
        let err = m.read_at(8, &mut [0u8; 4]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("offset 8") && msg.contains("past the end"),
            "{msg}"
        );
    }
}
