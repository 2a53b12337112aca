//! ext4 hashed-directory (htree) index blocks: recognised by their structure and checked
//! against their own `metadata_csum` checksum, as the kernel's `fs/ext4/namei.c` does
//! (`get_dx_countlimit`, `ext4_dx_csum_verify`, `dx_root_limit`, `dx_node_limit`).
//!
//! An index block hides its index inside directory records a linear walk steps over, so the
//! entries are listed without it; what this file decides is whether a block of an indexed
//! directory is an index block, and whether it is intact.
//!
//! - The root is logical block 0 of a directory whose inode has `INDEX_FL` (0x1000): a `.`
//!   record of 12 bytes, a `..` record spanning the rest of the block, the 8-byte
//!   `dx_root_info` at byte 24 (`reserved_zero` u32 = 0, `hash_version` u8, `info_length` u8
//!   = 8, `indirect_levels` u8, `unused_flags` u8), then `limit` u16 and `count` u16 at byte 32
//!   and `count - 1` more 8-byte dx_entries (the first entry's hash field is the header).
//! - An interior node is a block whose first record is empty (inode 0) and spans the whole
//!   block: `limit`/`count` at byte 8.
//! - After `limit` entries comes the 8-byte `dx_tail` (`dt_reserved` u32, `dt_checksum`
//!   u32). The checksum is crc32c seeded with the inode's seed, over the block up to the end of
//!   the `count` used entries, then `dt_reserved`, then four zero bytes for `dt_checksum`. The
//!   bytes between the last used entry and the tail are not covered: the kernel builds a new
//!   root inside the old leaf block and leaves that leaf's tail (`0c 00 00 de` + old checksum)
//!   in `dt_reserved` and around it, so an index block must never be judged by its last bytes.
//!
//! `limit` must be what the kernel writes (the entries that fit before the tail), `count` at
//! least 1 and at most `limit`, and `indirect_levels` below 2 (3 with `large_dir`), as the
//! kernel's `dx_probe` requires. Without `metadata_csum` index blocks carry no checksum and
//! are not checked (they hold no entries the linear walk would list).

use super::{crc32c, le16, le32, rec_len};

/// `i_flags` bit of a hashed directory.
pub(super) const INDEX_FL: u32 = 0x1000;
/// Bytes of one dx_entry (hash u32, block u32) and of the dx_tail.
const DX_ENTRY: usize = 8;
const DX_TAIL: usize = 8;
/// `dx_root_info.info_length` as the kernel writes and requires it.
const INFO_LENGTH: u8 = 8;
/// Where `limit`/`count` start in a root block (`.` 12 + `..` 12 + dx_root_info 8) and in an
/// interior node (one empty 8-byte record header).
const ROOT_COUNT_AT: usize = 32;
const NODE_COUNT_AT: usize = 8;

/// Which index block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Index {
    Root,
    Node,
}

impl std::fmt::Display for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Index::Root => "htree root",
            Index::Node => "htree interior node",
        })
    }
}

/// Why an index block was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum IndexError {
    #[error("{0}: checksum mismatch (metadata_csum)")]
    Checksum(Index),
    #[error("{0}: limit {1} is not the {2} entries the block holds before its checksum tail")]
    Limit(Index, u16, usize),
    #[error("{0}: count {1} is not between 1 and limit {2}")]
    Count(Index, u16, u16),
    #[error("htree root: {0} indirect levels, more than the {1} this filesystem allows")]
    Levels(u8, u8),
}

/// Whether `block` has the layout of an htree root (the kernel's `get_dx_countlimit` test:
/// `.` of 12 bytes, `..` spanning the rest, `reserved_zero` 0 and `info_length` 8).
pub(super) fn is_root(block: &[u8]) -> bool {
    let bs = block.len();
    bs >= ROOT_COUNT_AT.saturating_add(4)
        && rec_len(le16(block, 4), bs) == 12
        && Some(rec_len(le16(block, 16), bs)) == bs.checked_sub(12)
        && le32(block, 24) == 0
        && block[29] == INFO_LENGTH
}

/// Whether `block` has the layout of an htree interior node: one empty record (inode 0)
/// spanning the whole block. With `metadata_csum` no leaf has it (a leaf ends in a 12-byte
/// tail record), without it an empty leaf has it too, and neither holds a live entry.
pub(super) fn is_node(block: &[u8]) -> bool {
    block.len() >= NODE_COUNT_AT.saturating_add(4)
        && le32(block, 0) == 0
        && rec_len(le16(block, 4), block.len()) == block.len()
}

/// Check index block `block` (a root or an interior node, see [`is_root`], [`is_node`])
/// against its `metadata_csum` checksum, seeded with the directory inode's seed `seed`.
/// `max_levels` is 2, or 3 with `large_dir`.
pub(super) fn verify(
    block: &[u8],
    kind: Index,
    seed: u32,
    max_levels: u8,
) -> Result<(), IndexError> {
    let at = match kind {
        Index::Root => {
            let levels = block.get(30).copied().unwrap_or(u8::MAX);
            if levels >= max_levels {
                return Err(IndexError::Levels(levels, max_levels.saturating_sub(1)));
            }
            ROOT_COUNT_AT
        }
        Index::Node => NODE_COUNT_AT,
    };
    let limit = le16(block, at);
    let count = le16(block, at.saturating_add(2));
    // The kernel's dx_root_limit / dx_node_limit with room for the tail.
    let fits = block.len().saturating_sub(at).saturating_sub(DX_TAIL) / DX_ENTRY;
    if usize::from(limit) != fits {
        return Err(IndexError::Limit(kind, limit, fits));
    }
    if count == 0 || count > limit {
        return Err(IndexError::Count(kind, count, limit));
    }
    // In bounds: count <= limit == fits, so both end at or before the block's end.
    let used = at.saturating_add(usize::from(count).saturating_mul(DX_ENTRY));
    let tail = at.saturating_add(usize::from(limit).saturating_mul(DX_ENTRY));
    let (Some(covered), Some(reserved)) =
        (block.get(..used), block.get(tail..tail.saturating_add(4)))
    else {
        return Err(IndexError::Limit(kind, limit, fits));
    };
    let stored = le32(block, tail.saturating_add(4));
    if crc32c(seed, &[covered, reserved, &[0; 4]]) != stored {
        return Err(IndexError::Checksum(kind));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An htree root of `bs` bytes as the kernel builds it from a one-block directory: the old
    /// leaf's tail (`0c 00 00 de` and its checksum) left in the dx_tail's reserved field.
    pub fn root(bs: usize, seed: u32, count: u16, levels: u8) -> Vec<u8> {
        let mut b = vec![0u8; bs];
        b[0..4].copy_from_slice(&2u32.to_le_bytes());
        b[4..6].copy_from_slice(&12u16.to_le_bytes());
        b[6] = 1;
        b[7] = 2;
        b[8] = b'.';
        b[12..16].copy_from_slice(&2u32.to_le_bytes());
        b[16..18].copy_from_slice(&u16::try_from(bs - 12).unwrap().to_le_bytes());
        b[18] = 2;
        b[19] = 2;
        b[20..22].copy_from_slice(b"..");
        b[28] = 1; // half_md4
        b[29] = 8;
        b[30] = levels;
        let limit = u16::try_from((bs - 40) / 8).unwrap();
        b[32..34].copy_from_slice(&limit.to_le_bytes());
        b[34..36].copy_from_slice(&count.to_le_bytes());
        for i in 0..usize::from(count) {
            let e = 32 + 8 * i;
            if i > 0 {
                b[e..e + 4].copy_from_slice(&(i as u32).wrapping_mul(0x0100_0000).to_le_bytes());
            }
            b[e + 4..e + 8].copy_from_slice(&(1 + i as u32).to_le_bytes());
        }
        // The leftover leaf tail: reserved field `0c 00 00 de`, garbage past the used entries.
        b[bs - 8..bs - 4].copy_from_slice(&[0x0c, 0, 0, 0xde]);
        b[bs - 20] = 0x77;
        seal(&mut b, 32, seed);
        b
    }

    /// An interior node of `bs` bytes with `count` entries.
    pub fn node(bs: usize, seed: u32, count: u16) -> Vec<u8> {
        let mut b = vec![0u8; bs];
        b[4..6].copy_from_slice(&u16::try_from(bs).unwrap_or(0).to_le_bytes());
        let limit = u16::try_from((bs - 16) / 8).unwrap();
        b[8..10].copy_from_slice(&limit.to_le_bytes());
        b[10..12].copy_from_slice(&count.to_le_bytes());
        seal(&mut b, 8, seed);
        b
    }

    /// Write the checksum the kernel's `ext4_dx_csum` gives.
    fn seal(b: &mut [u8], at: usize, seed: u32) {
        let limit = usize::from(le16(b, at));
        let count = usize::from(le16(b, at + 2));
        let tail = at + 8 * limit;
        let sum = crc32c(seed, &[&b[..at + 8 * count], &b[tail..tail + 4], &[0; 4]]);
        b[tail + 4..tail + 8].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn a_root_with_the_old_leaf_tail_left_in_it_verifies() {
        for bs in [1024, 4096, 65536] {
            let b = root(bs, 0xfeed, 8, 0);
            assert!(is_root(&b) && !is_node(&b));
            assert_eq!(&b[bs - 8..bs - 4], &[0x0c, 0, 0, 0xde]);
            assert_eq!(verify(&b, Index::Root, 0xfeed, 2), Ok(()));
        }
    }

    #[test]
    fn bytes_past_the_used_entries_are_not_covered_but_the_rest_is() {
        let b = root(1024, 7, 3, 1);
        let mut c = b.clone();
        c[32 + 3 * 8] ^= 1; // first unused dx_entry
        assert_eq!(verify(&c, Index::Root, 7, 2), Ok(()));
        for at in [8, 28, 32 + 2 * 8 + 4, 1024 - 8, 1024 - 1] {
            let mut c = b.clone();
            c[at] ^= 1;
            assert_eq!(
                verify(&c, Index::Root, 7, 2),
                Err(IndexError::Checksum(Index::Root)),
                "byte {at}"
            );
        }
        assert_eq!(
            verify(&b, Index::Root, 8, 2),
            Err(IndexError::Checksum(Index::Root))
        );
    }

    #[test]
    fn interior_nodes_verify_and_a_flipped_byte_is_found() {
        let b = node(4096, 99, 200);
        assert!(is_node(&b) && !is_root(&b));
        assert_eq!(verify(&b, Index::Node, 99, 2), Ok(()));
        let mut c = b.clone();
        c[8 + 199 * 8] ^= 0x80;
        assert_eq!(
            verify(&c, Index::Node, 99, 2),
            Err(IndexError::Checksum(Index::Node))
        );
    }

    #[test]
    fn the_header_must_be_the_kernels() {
        let b = root(1024, 1, 2, 0);
        let mut c = b.clone();
        c[32] = 124; // limit one more than fits before the tail
        assert_eq!(
            verify(&c, Index::Root, 1, 2),
            Err(IndexError::Limit(Index::Root, 124, 123))
        );
        let mut c = b.clone();
        c[34] = 0;
        assert_eq!(
            verify(&c, Index::Root, 1, 2),
            Err(IndexError::Count(Index::Root, 0, 123))
        );
        let mut c = b.clone();
        c[34] = 124;
        assert_eq!(
            verify(&c, Index::Root, 1, 2),
            Err(IndexError::Count(Index::Root, 124, 123))
        );
        let c = root(1024, 1, 2, 2);
        assert_eq!(verify(&c, Index::Root, 1, 2), Err(IndexError::Levels(2, 1)));
        assert_eq!(verify(&c, Index::Root, 1, 3), Ok(()));
        let mut c = b.clone();
        c[29] = 9; // info_length
        assert!(!is_root(&c));
        let mut c = b;
        c[16] = 12; // `..` no longer spans the block
        assert!(!is_root(&c));
    }

    #[test]
    fn truncated_or_odd_blocks_do_not_panic() {
        for len in [0, 1, 8, 11, 12, 35, 36, 40, 41] {
            let b = vec![0u8; len];
            let _ = is_root(&b) || is_node(&b);
            let _ = verify(&b, Index::Root, 0, 2);
            let _ = verify(&b, Index::Node, 0, 2);
        }
    }
}
