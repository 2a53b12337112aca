//! A raw image file read with positioned reads (`pread`), shared by every worker thread.

use super::{Source, SourceError, check_bounds};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A raw disk image on the local filesystem.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
    name: String,
}

impl FileSource {
    /// Open `path` read-only. Fails when it cannot be opened or is not a regular file or block
    /// device.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::other("is a directory, not a disk image"));
        }
        // Block devices report 0 in metadata; seek to the end to learn their size.
        let len = if meta.len() == 0 {
            use std::io::Seek;
            (&file).seek(std::io::SeekFrom::End(0))?
        } else {
            meta.len()
        };
        Ok(FileSource {
            file,
            len,
            name: path.display().to_string(),
        })
    }
}

impl FileSource {
    /// A source over an open regular file (a spooled temporary file), named `name`.
    pub fn from_file(file: File, name: String) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len, name })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_bounds(&|| self.name.clone(), offset, buf.len(), self.len)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| SourceError::Io {
                what: self.name.clone(),
                offset,
                source,
            })
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_at_offsets_and_refuses_past_the_end() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(b"0123456789").unwrap();
        let src = FileSource::open(tmp.path()).unwrap();
        assert_eq!(src.len(), 10);
        let mut buf = [0u8; 3];
        src.read_at(4, &mut buf).unwrap();
        assert_eq!(&buf, b"456");
        assert!(matches!(
            src.read_at(9, &mut buf),
            Err(SourceError::OutOfBounds { .. })
        ));
    }
}
