//! ext2/3/4 directory blocks: what kind each block is, whether it is intact, and its live
//! entries. Every block is read linearly: hashed (htree) directories keep their index inside
//! records the linear walk steps over (the `..` record of the root block and the one empty
//! record spanning an interior node), so one parser lists every form and the hash index is
//! never needed to enumerate.
//!
//! With `metadata_csum` every block is verified before its entries are taken, and what it is
//! is decided by its structure, never by what its last bytes look like, the way the kernel's
//! `__ext4_read_dirblock` decides it:
//! - in a directory with `INDEX_FL`, logical block 0 laid out as an htree root, and any later
//!   block whose first record is empty and spans the whole block (an interior node, at any
//!   depth), is an index block, checked by its dx_tail checksum ([`super::htree`]). The kernel
//!   builds a root inside the old leaf block and leaves the leaf's tail bytes in it, so a root
//!   often *looks* like a leaf with a tail; it is never checked as one;
//! - every other block is a leaf and must end in the 12-byte checksum tail (inode 0, rec_len
//!   12, name_len 0, file type 0xDE, crc32c). A leaf's first record can therefore never span
//!   the whole block, which is what sets an interior node apart. A leaf without the tail is
//!   damage, as the kernel treats it.
//!
//! A block that fails its check is reported and its entries are not listed; the directory's
//! other blocks still are. A block whose records break part way keeps the entries before the
//! break. Without `metadata_csum` nothing carries a checksum: records are parsed as they are
//! (an index block reads as records holding no live entry).

use super::htree::{self, Index, IndexError};
use super::{crc32c, le16, le32, rec_len};

/// What the reader knows of the directory a block belongs to.
pub(super) struct DirInfo {
    /// The inode has `INDEX_FL` (a hashed directory).
    pub indexed: bool,
    /// The inode's checksum seed, with `metadata_csum`.
    pub seed: Option<u32>,
    /// Levels of index the filesystem allows (2, or 3 with `large_dir`).
    pub max_levels: u8,
    /// Name lengths are one byte (the `filetype` feature), else two.
    pub filetype: bool,
}

/// Why one directory block was refused or read only in part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum BlockError {
    #[error("leaf checksum mismatch (metadata_csum)")]
    LeafChecksum,
    #[error(
        "no checksum tail (metadata_csum): neither an htree index block nor a leaf as the kernel writes it"
    )]
    NoTail,
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("damaged at byte {0}: entries after it are lost")]
    Damaged(usize),
}

impl BlockError {
    /// The block's entries were not taken at all (rather than up to a break).
    pub fn loses_block(&self) -> bool {
        !matches!(self, BlockError::Damaged(_))
    }
}

/// Check directory block `block` (logical block `logical` of the directory) and add its live
/// entries to `out`.
pub(super) fn read_block(
    block: &[u8],
    logical: u64,
    dir: &DirInfo,
    out: &mut Vec<RawEntry>,
) -> Result<(), BlockError> {
    if let Some(seed) = dir.seed {
        let index = match logical {
            0 if dir.indexed && htree::is_root(block) => Some(Index::Root),
            1.. if dir.indexed && htree::is_node(block) => Some(Index::Node),
            _ => None,
        };
        match index {
            Some(kind) => htree::verify(block, kind, seed, dir.max_levels)?,
            None => leaf_tail(block, seed)?,
        }
    }
    parse(block, dir.filetype, out).map_err(BlockError::Damaged)
}

/// Check a leaf block's checksum tail (the kernel's `get_dirent_tail` and
/// `ext4_dirblock_csum_verify`).
fn leaf_tail(block: &[u8], seed: u32) -> Result<(), BlockError> {
    let at = block.len().checked_sub(12).ok_or(BlockError::NoTail)?;
    let is_tail = le32(block, at) == 0
        && rec_len(le16(block, at + 4), block.len()) == 12
        && block[at + 6] == 0
        && block[at + 7] == 0xDE;
    if !is_tail {
        return Err(BlockError::NoTail);
    }
    if crc32c(seed, &[&block[..at]]) != le32(block, at + 8) {
        return Err(BlockError::LeafChecksum);
    }
    Ok(())
}

/// One live directory entry.
pub(super) struct RawEntry {
    pub ino: u32,
    pub name: Vec<u8>,
}

/// Parse the entries of one directory block (or an inline-data area). `filetype` says whether
/// the name length is one byte (the `filetype` feature) or two. Returns the entries and, for a
/// damaged block, the offset where parsing stopped.
pub(super) fn parse(block: &[u8], filetype: bool, out: &mut Vec<RawEntry>) -> Result<(), usize> {
    let mut off = 0usize;
    while off + 8 <= block.len() {
        let ino = le32(block, off);
        let len = rec_len(le16(block, off + 4), block.len());
        let name_len = if filetype {
            usize::from(block[off + 6])
        } else {
            usize::from(le16(block, off + 6))
        };
        if len < 8 || !len.is_multiple_of(4) || off + len > block.len() || 8 + name_len > len {
            return Err(off);
        }
        if ino != 0 && name_len > 0 {
            let name = &block[off + 8..off + 8 + name_len];
            if name != b"." && name != b".." {
                out.push(RawEntry {
                    ino,
                    name: name.to_vec(),
                });
            }
        }
        off += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(ino: u32, name: &[u8], len: u16) -> Vec<u8> {
        let mut e = vec![0u8; usize::from(len)];
        e[0..4].copy_from_slice(&ino.to_le_bytes());
        e[4..6].copy_from_slice(&len.to_le_bytes());
        e[6] = name.len() as u8;
        e[7] = 1;
        e[8..8 + name.len()].copy_from_slice(name);
        e
    }

    #[test]
    fn live_entries_are_listed_and_dot_entries_skipped() {
        let mut b = ent(2, b".", 12);
        b.extend(ent(2, b"..", 12));
        b.extend(ent(0, b"gone", 16));
        b.extend(ent(12, b"shadow", 1024 - 40));
        let mut out = vec![];
        parse(&b, true, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].ino, out[0].name.as_slice()), (12, &b"shadow"[..]));
    }

    #[test]
    fn a_damaged_block_stops_where_it_breaks() {
        let mut b = ent(11, b"a", 12);
        let mut bad = ent(12, b"b", 12);
        bad[4..6].copy_from_slice(&3u16.to_le_bytes()); // rec_len < 8
        b.extend(bad);
        b.resize(1024, 0);
        let mut out = vec![];
        assert_eq!(parse(&b, true, &mut out), Err(12));
        assert_eq!(out.len(), 1);
        let mut b = ent(11, b"abc", 12);
        b[6] = 200; // name longer than the record
        assert_eq!(parse(&b, true, &mut vec![]), Err(0));
    }

    const SEED: u32 = 0x5eed;

    fn csum_dir(indexed: bool) -> DirInfo {
        DirInfo {
            indexed,
            seed: Some(SEED),
            max_levels: 2,
            filetype: true,
        }
    }

    /// A 1 KiB leaf as the kernel writes it with `metadata_csum`: two entries, then the tail.
    fn leaf() -> Vec<u8> {
        let mut b = ent(2, b".", 12);
        b.extend(ent(2, b"..", 12));
        b.extend(ent(12, b"id_ed25519", 20));
        b.extend(ent(13, b"known_hosts", 1024 - 12 - 44));
        let sum = crc32c(SEED, &[&b]);
        b.extend([0, 0, 0, 0, 12, 0, 0, 0xde]);
        b.extend(sum.to_le_bytes());
        b
    }

    fn names(out: &[RawEntry]) -> Vec<&[u8]> {
        out.iter().map(|e| e.name.as_slice()).collect()
    }

    #[test]
    fn a_leaf_with_its_tail_verifies_and_one_flipped_byte_loses_it() {
        let b = leaf();
        let mut out = vec![];
        read_block(&b, 0, &csum_dir(false), &mut out).unwrap();
        assert_eq!(names(&out), [&b"id_ed25519"[..], b"known_hosts"]);
        for at in [0, 30, 1024 - 13, 1024 - 1] {
            let mut c = b.clone();
            c[at] ^= 1;
            let mut out = vec![];
            let e = read_block(&c, 2, &csum_dir(true), &mut out);
            assert_eq!(e, Err(BlockError::LeafChecksum), "byte {at}");
            assert!(out.is_empty() && e.unwrap_err().loses_block());
        }
    }

    #[test]
    fn a_leaf_without_its_tail_is_damage_under_metadata_csum_only() {
        let mut b = leaf();
        b[1024 - 5] = 0; // the tail's file type 0xDE
        let mut out = vec![];
        assert_eq!(
            read_block(&b, 0, &csum_dir(false), &mut out),
            Err(BlockError::NoTail)
        );
        assert!(out.is_empty());
        // The same records spanning the block, without metadata_csum: read as they are.
        let mut b = leaf();
        b.truncate(1024 - 12);
        b[48..50].copy_from_slice(&(1024u16 - 44).to_le_bytes()); // known_hosts to the end
        b.resize(1024, 0);
        let plain = DirInfo {
            seed: None,
            ..csum_dir(false)
        };
        read_block(&b, 0, &plain, &mut out).unwrap();
        assert_eq!(names(&out), [&b"id_ed25519"[..], b"known_hosts"]);
        out.clear();
        assert_eq!(
            read_block(&b, 0, &csum_dir(false), &mut out),
            Err(BlockError::NoTail)
        );
    }

    #[test]
    fn a_root_keeping_the_old_leaf_tail_is_checked_as_an_index() {
        // The kernel leaves `0c 00 00 de` in dt_reserved: the last 12 bytes look like a tail.
        let b = htree::tests::root(1024, SEED, 8, 0);
        assert_eq!(&b[1024 - 12..1024 - 4], &[0, 0, 0, 0, 0x0c, 0, 0, 0xde]);
        let mut out = vec![];
        read_block(&b, 0, &csum_dir(true), &mut out).unwrap();
        assert!(out.is_empty());
        // Read as a leaf (what the reader did before), its tail does not match.
        assert_eq!(
            read_block(&b, 0, &csum_dir(false), &mut out),
            Err(BlockError::LeafChecksum)
        );
        // A root is only logical block 0.
        assert_eq!(
            read_block(&b, 1, &csum_dir(true), &mut out),
            Err(BlockError::LeafChecksum)
        );
        let mut c = b.clone();
        c[40] ^= 4; // inside a used dx_entry
        assert_eq!(
            read_block(&c, 0, &csum_dir(true), &mut out),
            Err(BlockError::Index(IndexError::Checksum(Index::Root)))
        );
    }

    #[test]
    fn interior_nodes_are_recognised_by_their_structure() {
        let b = htree::tests::node(1024, SEED, 40);
        let mut out = vec![];
        read_block(&b, 5, &csum_dir(true), &mut out).unwrap();
        assert!(out.is_empty());
        // Not in a hashed directory, or as block 0: a leaf without a tail.
        assert_eq!(
            read_block(&b, 5, &csum_dir(false), &mut out),
            Err(BlockError::NoTail)
        );
        assert_eq!(
            read_block(&b, 0, &csum_dir(true), &mut out),
            Err(BlockError::NoTail)
        );
        let mut c = b.clone();
        c[10] ^= 1; // count
        assert_eq!(
            read_block(&c, 5, &csum_dir(true), &mut out),
            Err(BlockError::Index(IndexError::Checksum(Index::Node)))
        );
        // A record spanning the block with a live inode is no node.
        let mut c = b;
        c[0] = 12;
        assert_eq!(
            read_block(&c, 5, &csum_dir(true), &mut out),
            Err(BlockError::NoTail)
        );
    }

    #[test]
    fn a_verified_block_broken_part_way_keeps_the_entries_before_the_break() {
        let mut b = leaf();
        b[24 + 6] = 30; // name_len of id_ed25519 past its 20-byte record
        let sum = crc32c(SEED, &[&b[..1024 - 12]]);
        b[1024 - 4..].copy_from_slice(&sum.to_le_bytes());
        let mut out = vec![];
        let e = read_block(&b, 0, &csum_dir(false), &mut out).unwrap_err();
        assert_eq!(e, BlockError::Damaged(24));
        assert!(!e.loses_block());
        assert!(out.is_empty());
        assert_eq!(
            e.to_string(),
            "damaged at byte 24: entries after it are lost"
        );
    }

    #[test]
    fn full_block_rec_len_of_64k_blocks() {
        assert_eq!(rec_len(0, 65536), 65536);
        assert_eq!(rec_len(65535, 65536), 65536);
        assert_eq!(rec_len(12, 4096), 12);
    }
}
