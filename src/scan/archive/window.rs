//! Random access to one file for the archive readers: the file (a `Read + Seek` from the
//! filesystem, or bytes held in memory) is shared, and each reader gets a [`Window`] onto a
//! byte range of it with its own position. A zip, a stored zip inside it, and the member being
//! read are windows onto the same file, read by offset; nothing is copied.
//!
//! Limits: single-threaded (one file is scanned by one worker); every read seeks the shared
//! file first when another window moved it.

use crate::fs::SeekRead;
use std::cell::RefCell;
use std::io::{self, Read, Seek, SeekFrom};

/// A file read at offsets by several windows in turn.
pub struct Shared<'f> {
    inner: RefCell<(&'f mut dyn SeekRead, Option<u64>)>,
    len: u64,
}

impl<'f> Shared<'f> {
    /// Share `file`, `len` bytes long.
    pub fn new(file: &'f mut dyn SeekRead, len: u64) -> Self {
        Shared {
            inner: RefCell::new((file, None)),
            len,
        }
    }

    /// The whole file.
    pub fn all(&self) -> Span<'_, 'f> {
        Span {
            file: self,
            start: 0,
            len: self.len,
        }
    }

    /// Read at `offset` into `buf` (one read call).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut guard = self
            .inner
            .try_borrow_mut()
            .map_err(|_| io::Error::other("archive file read re-entered"))?;
        let (file, pos) = &mut *guard;
        if *pos != Some(offset) {
            *pos = None;
            file.seek(SeekFrom::Start(offset))?;
        }
        let n = file.read(buf)?;
        *pos = offset.checked_add(n as u64);
        Ok(n)
    }
}

/// A byte range of a [`Shared`] file.
#[derive(Clone, Copy)]
pub struct Span<'s, 'f> {
    file: &'s Shared<'f>,
    /// First byte in the file.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl<'s, 'f> Span<'s, 'f> {
    /// The part `[offset, offset + len)` of this span; `None` when it does not fit inside.
    pub fn sub(&self, offset: u64, len: u64) -> Option<Span<'s, 'f>> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        Some(Span {
            file: self.file,
            start: self.start.checked_add(offset)?,
            len,
        })
    }

    /// A reader over this span, at its start.
    pub fn window(&self) -> Window<'s, 'f> {
        Window {
            span: *self,
            pos: 0,
        }
    }
}

/// A `Read + Seek` over a [`Span`], with its own position.
pub struct Window<'s, 'f> {
    span: Span<'s, 'f>,
    pos: u64,
}

impl Read for Window<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.span.len.saturating_sub(self.pos);
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let at = self
            .span
            .start
            .checked_add(self.pos)
            .ok_or_else(|| io::Error::other("offset overflow"))?;
        let n = self.span.file.read_at(at, &mut buf[..want])?;
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

impl Seek for Window<'_, '_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.span.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = pos;
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn windows_share_one_file_and_keep_their_own_position() {
        let mut c = Cursor::new(b"0123456789".to_vec());
        let f = Shared::new(&mut c, 10);
        let all = f.all();
        let mid = all.sub(3, 4).unwrap();
        assert!(all.sub(8, 3).is_none());
        assert!(all.sub(u64::MAX, 2).is_none());
        let (mut a, mut b) = (all.window(), mid.window());
        let mut two = [0u8; 2];
        a.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"01");
        b.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"34");
        a.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"23");
        let mut rest = vec![];
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"56");
        assert_eq!(b.seek(SeekFrom::End(-1)).unwrap(), 3);
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"566");
        assert!(b.seek(SeekFrom::Current(-10)).is_err());
        // Past the end reads nothing.
        b.seek(SeekFrom::Start(100)).unwrap();
        assert_eq!(b.read(&mut two).unwrap(), 0);
        // A sub-span of a sub-span is in file offsets.
        let inner = mid.sub(1, 2).unwrap();
        assert_eq!((inner.start, inner.len), (4, 2));
    }
}
