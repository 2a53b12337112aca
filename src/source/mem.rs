//! An image held in memory: for tests, fuzzing and small embedded images.

use super::{Source, SourceError, check_bounds};

/// Bytes in memory as a [`Source`].
pub struct MemSource {
    data: Vec<u8>,
    name: String,
}

impl MemSource {
    /// Wrap `data`, named `name` in errors.
    pub fn new(data: Vec<u8>, name: &str) -> Self {
        MemSource {
            data,
            name: name.to_string(),
        }
    }
}

impl Source for MemSource {
    fn len(&self) -> u64 {
        u64::try_from(self.data.len()).unwrap_or(u64::MAX)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_bounds(&|| self.name.clone(), offset, buf.len(), self.len())?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.data.get(start..end))
            .ok_or_else(|| SourceError::OutOfBounds {
                what: self.name.clone(),
                offset,
                len: buf.len() as u64,
                size: self.len(),
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
