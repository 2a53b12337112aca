//! The fields of a tar header block (POSIX ustar, GNU, v7), shared by the tar filesystem
//! ([`super::TarFs`]) and the streaming reader of tar members inside files
//! (`scan/archive/tar.rs`): numbers (octal or GNU base-256), NUL-terminated strings, the
//! checksum.

/// Parse a numeric header field: octal (NUL/space padded) or GNU base-256.
pub fn number(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(&b) if b & 0x80 != 0 => {
            // Base-256: the first byte's low bits and the rest, big-endian; only positive fit.
            if b & 0x40 != 0 {
                return None;
            }
            let mut v = u64::from(b & 0x3f);
            for &x in field.get(1..).unwrap_or(&[]) {
                v = v.checked_mul(256)?.checked_add(u64::from(x))?;
            }
            Some(v)
        }
        _ => {
            let s = field
                .iter()
                .copied()
                .skip_while(|&c| c == b' ')
                .take_while(|&c| c != 0 && c != b' ');
            let mut v = 0u64;
            let mut any = false;
            for c in s {
                if !(b'0'..=b'7').contains(&c) {
                    return None;
                }
                v = v.checked_mul(8)?.checked_add(u64::from(c - b'0'))?;
                any = true;
            }
            any.then_some(v).or(Some(0))
        }
    }
}

/// Whether a 512-byte header's checksum field matches its bytes (unsigned or signed sum).
pub fn checksum_ok(block: &[u8]) -> bool {
    let (Some(field), true) = (block.get(148..156), block.len() == 512) else {
        return false;
    };
    // Tar writes the checksum as octal digits: a field with none (all NULs, as in any block of
    // zeros at offset 148) is no checksum, though `number` reads it as 0 (and a block whose
    // signed byte sum is 0, such as an XFS superblock now and then, would match it).
    if !field
        .iter()
        .skip_while(|&&c| c == b' ')
        .take_while(|&&c| c != 0 && c != b' ')
        .any(|c| c.is_ascii_digit())
    {
        return false;
    }
    let Some(want) = number(field) else {
        return false;
    };
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || i64::try_from(want).is_ok_and(|w| w == signed)
}

/// A NUL-terminated field.
pub fn cstr(field: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, field).unwrap_or(field.len());
    field.get(..end).unwrap_or(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checksum field without digits is no checksum, even when the block's signed sum is 0
    /// (an XFS superblock with 4096-byte sectors was once taken for a tar archive).
    #[test]
    fn a_checksum_field_without_digits_never_matches() {
        let mut b = [0u8; 512];
        // Signed sum: eight spaces (256) and two bytes of -128.
        b[0] = 0x80;
        b[1] = 0x80;
        assert!(!checksum_ok(&b));
        // The same block with its checksum written as tar writes it does match.
        b[148..156].copy_from_slice(b"000000\0 ");
        let unsigned: u64 = b
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(c)
                }
            })
            .sum();
        b[148..155].copy_from_slice(format!("{unsigned:06o}\0").as_bytes());
        assert!(checksum_ok(&b));
    }
}
