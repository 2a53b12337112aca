//! Fixed-width integer fields of on-disk structures, read from a byte slice at an offset:
//! `None` when the field does not lie wholly inside the slice (no panic, whatever the offset).
//! The readers of hostile bytes (filesystems, registry hives, shortcuts, logs) share these.

/// A little-endian `u16` at `at`.
pub(crate) fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// A little-endian `u32` at `at`.
pub(crate) fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// A little-endian `u64` at `at`.
pub(crate) fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A big-endian `u16` at `at`.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// A big-endian `u32` at `at`.
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// A big-endian `u64` at `at`.
pub(crate) fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_inside_the_slice_are_read_and_others_are_none() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(le16(&b, 0), Some(0x0201));
        assert_eq!(be16(&b, 0), Some(0x0102));
        assert_eq!(le32(&b, 5), Some(0x0908_0706));
        assert_eq!(be32(&b, 5), Some(0x0607_0809));
        assert_eq!(le64(&b, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(be64(&b, 1), Some(0x0203_0405_0607_0809));
        assert_eq!(le32(&b, 6), None);
        assert_eq!(be64(&b, 2), None);
        assert_eq!(le16(&b, usize::MAX), None);
        assert_eq!(le64(&b, usize::MAX - 3), None);
    }
}
