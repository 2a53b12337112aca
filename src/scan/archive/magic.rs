//! Recognise compressed streams and archives by their first bytes, never by the file name.

/// Bytes of a stream looked at to decide its format (a tar header is 512 bytes).
pub const PROBE: usize = 512;

/// A container format amiscan opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// gzip (RFC 1952), possibly several members back to back.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
    /// POSIX/GNU tar.
    Tar,
    /// zip, and what is built on it (jar, war, ear, apk, docx, ...).
    Zip,
}

impl Kind {
    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gzip => "gzip",
            Kind::Bzip2 => "bzip2",
            Kind::Xz => "xz",
            Kind::Zstd => "zstd",
            Kind::Tar => "tar",
            Kind::Zip => "zip",
        }
    }
}

/// The format of a stream that starts with `head` (up to [`PROBE`] bytes), if amiscan opens it.
pub fn detect(head: &[u8]) -> Option<Kind> {
    // gzip: magic, method deflate, and the reserved flag bits clear.
    if let [0x1f, 0x8b, 8, flags, ..] = head
        && flags & 0xe0 == 0
    {
        return Some(Kind::Gzip);
    }
    // bzip2: "BZh" + block size digit + the first block's magic (pi) or the end-of-stream magic.
    if let [b'B', b'Z', b'h', level, rest @ ..] = head
        && (b'1'..=b'9').contains(level)
        && (rest.starts_with(&[0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
            || rest.starts_with(&[0x17, 0x72, 0x45, 0x38, 0x50, 0x90]))
    {
        return Some(Kind::Bzip2);
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Some(Kind::Xz);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(Kind::Zstd);
    }
    // zip: a local file header, or the end-of-central-directory record of an empty archive.
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Kind::Zip);
    }
    if is_tar(head) {
        return Some(Kind::Tar);
    }
    None
}

/// A tar header: `ustar` magic at 257 (POSIX or GNU), or a v7 header whose checksum is right.
fn is_tar(head: &[u8]) -> bool {
    let Some(block) = head.get(..512) else {
        return false;
    };
    if block.get(257..262) == Some(b"ustar") {
        return super::tar::checksum_ok(block);
    }
    // v7: a plausible name and a valid checksum over a non-empty header.
    block.first().is_some_and(|&b| b != 0) && super::tar::checksum_ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_recognised() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0, 0, 0]), Some(Kind::Gzip));
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0xff]), None, "reserved flags");
        assert_eq!(detect(b"BZh91AY&SY...."), Some(Kind::Bzip2));
        assert_eq!(detect(b"BZh9 not bzip2"), None);
        assert_eq!(detect(b"\xfd7zXZ\0\0\x04"), Some(Kind::Xz));
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Kind::Zstd));
        assert_eq!(detect(b"PK\x03\x04...."), Some(Kind::Zip));
        assert_eq!(detect(b"PK\x05\x06...."), Some(Kind::Zip));
        assert_eq!(detect(b"plain text"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn tar_needs_a_valid_checksum() {
        let mut h = super::super::tar::tests::header(b"etc/shadow", 5, b'0');
        assert_eq!(detect(&h), Some(Kind::Tar));
        h[0] ^= 1;
        assert_eq!(detect(&h), None);
        assert_eq!(detect(&[0u8; 512]), None);
    }
}
