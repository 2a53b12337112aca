//! A bounded big-endian reader for the binary key and keystore formats the detectors decode
//! (OpenSSH and SSH2 key blobs, OpenPGP packets, Java keystores). Every read checks what is left:
//! a short or hostile input gives `None`, never a panic.

/// Reads big-endian values from a byte slice, front to back.
pub(crate) struct Reader<'a> {
    /// What is left to read.
    pub data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// The next `n` bytes, if there are that many.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    /// A big-endian u16, as a length.
    pub fn u16(&mut self) -> Option<usize> {
        let b = self.take(2)?;
        Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// A big-endian u32, as a length.
    pub fn u32(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()
    }

    /// An SSH wire string: a u32 length, then that many bytes.
    pub fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_of_the_data() {
        let mut r = Reader::new(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 9, 1]);
        assert_eq!(r.string(), Some(&b"hi"[..]));
        assert_eq!(r.string(), None);
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Some(0x0102));
        assert_eq!(r.u16(), None);
        assert_eq!(r.u8(), Some(3));
        assert_eq!(r.u8(), None);
    }
}
