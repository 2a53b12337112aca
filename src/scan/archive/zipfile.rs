//! Zip archives (zip, jar, war, ear, apk, whl) through the `zip` crate, over any `Read + Seek`:
//! the central directory is read where the end record says it is, and each member is read
//! from its own offset, stored members as they are and deflated ones through a streaming
//! decoder (members are never held whole in memory). Every call into the crate is guarded: a
//! panic on malformed input becomes a [`ZipError`], as does every error the crate reports.
//!
//! Limits: the compression methods are those the crate is built with (stored and deflate);
//! a member compressed otherwise, or encrypted, is an error naming it. Multi-disk archives are
//! refused by the crate. The crate reserves its table of members from the count in the end
//! record, which it checks against the bytes before the end record (one 46-byte header per
//! member at least).

use std::io::{self, Read, Seek};

/// Why a zip archive or one of its members could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// The crate refused the archive or the member (damaged, unsupported, encrypted).
    #[error("{0}")]
    Refused(String),
    /// The crate failed (panicked) on malformed input.
    #[error("the zip reader failed on malformed input")]
    Failed,
}

/// Run a call into the crate, a panic becoming [`ZipError::Failed`].
fn guarded<T>(f: impl FnOnce() -> zip::result::ZipResult<T>) -> Result<T, ZipError> {
    match crate::model::caught::catch(f) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ZipError::Refused(e.to_string())),
        Err(_) => Err(ZipError::Failed),
    }
}

/// What the central directory says of one member.
#[derive(Clone, Debug)]
pub struct Member {
    /// Name as stored.
    pub name: Vec<u8>,
    /// A regular file (not a directory or a symlink).
    pub file: bool,
    /// Uncompressed size.
    pub size: u64,
    /// Size of its data in the archive.
    pub compressed: u64,
    /// Mode bits (0o644 when the archive does not record them).
    pub mode: u32,
    /// Where its data starts in the archive, when stored uncompressed and unencrypted: its
    /// bytes can then be read there directly (a nested archive opened by offset).
    pub stored_at: Option<u64>,
}

/// An opened zip archive.
pub struct Zip<R: Read + Seek> {
    inner: zip::ZipArchive<R>,
}

impl<R: Read + Seek> Zip<R> {
    /// Read the central directory of the archive in `r`.
    pub fn open(r: R) -> Result<Self, ZipError> {
        guarded(|| zip::ZipArchive::new(r)).map(|inner| Zip { inner })
    }

    /// Number of entries in the central directory.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// The name of entry `i` for a message (`#i` when the crate gives none).
    pub fn name(&self, i: usize) -> String {
        self.inner
            .name_for_index(i)
            .map_or_else(|| format!("#{i}"), str::to_string)
    }

    /// Entry `i`: what the directory says of it, and a reader over its uncompressed content.
    pub fn member(&mut self, i: usize) -> Result<(Member, impl Read + '_), ZipError> {
        let f = guarded(|| self.inner.by_index(i))?;
        let stored = f.compression() == zip::CompressionMethod::Stored && !f.encrypted();
        let m = Member {
            name: f.name_raw().to_vec(),
            file: f.is_file(),
            size: f.size(),
            compressed: f.compressed_size(),
            mode: f.unix_mode().unwrap_or(0o100644) & 0o7777,
            stored_at: f.data_start().filter(|_| stored),
        };
        Ok((m, Guarded(f)))
    }
}

/// A member's reader, a panic in it becoming an error.
struct Guarded<R>(R);

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::model::caught::catch(|| self.0.read(buf))
            .unwrap_or_else(|_| Err(io::Error::other("the zip reader failed on malformed input")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip(members: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(vec![]));
        for (name, data, method) in members {
            let o = zip::write::SimpleFileOptions::default().compression_method(*method);
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn members_are_read_and_stored_ones_located() {
        let data = zip(&[
            (
                "a.txt",
                b"deflated deflated deflated",
                zip::CompressionMethod::Deflated,
            ),
            ("b.bin", b"stored bytes", zip::CompressionMethod::Stored),
        ]);
        let mut z = Zip::open(Cursor::new(&data[..])).unwrap();
        assert_eq!(z.len(), 2);
        let (m, mut r) = z.member(0).unwrap();
        let mut out = vec![];
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"deflated deflated deflated");
        assert!(m.file && m.stored_at.is_none());
        drop(r);
        let (m, _) = z.member(1).unwrap();
        let at = usize::try_from(m.stored_at.unwrap()).unwrap();
        assert_eq!(&data[at..at + 12], b"stored bytes");
        assert_eq!((m.size, m.compressed, m.name), (12, 12, b"b.bin".to_vec()));
        assert!(z.member(2).is_err());
    }

    #[test]
    fn damaged_archives_are_errors_not_panics() {
        let good = zip(&[("a", b"x", zip::CompressionMethod::Deflated)]);
        for cut in 0..good.len() {
            let _ = Zip::open(Cursor::new(&good[..cut])).map(|mut z| {
                for i in 0..z.len() {
                    if let Ok((_, mut r)) = z.member(i) {
                        let _ = r.read_to_end(&mut vec![]);
                    }
                }
            });
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            if let Ok(mut z) = Zip::open(Cursor::new(&bad[..])) {
                for i in 0..z.len() {
                    if let Ok((_, mut r)) = z.member(i) {
                        let _ = r.read_to_end(&mut vec![]);
                    }
                }
            }
        }
        assert!(matches!(
            Zip::open(Cursor::new(&b"PK\x03\x04garbage"[..])),
            Err(ZipError::Refused(_))
        ));
    }
}
