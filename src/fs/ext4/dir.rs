//! ext2/3/4 directory blocks. Every block is read linearly: hashed (htree) directories keep
//! their index inside entries the linear walk steps over (the `..` entry of the root block and
//! empty entries spanning interior blocks), so one parser reads every form.

use super::{crc32c, le16, le32};

/// A leaf block's checksum tail (a fake entry of 12 bytes at the end, `metadata_csum`), checked
/// when present: hashed-directory index blocks carry theirs elsewhere and are not checked.
pub(super) fn tail_checksum_ok(block: &[u8], seed: u32) -> bool {
    let Some(at) = block.len().checked_sub(12) else {
        return true;
    };
    let is_tail = le32(block, at) == 0
        && le16(block, at + 4) == 12
        && block[at + 6] == 0
        && block[at + 7] == 0xDE;
    !is_tail || crc32c(seed, &[&block[..at]]) == le32(block, at + 8)
}

/// One live directory entry.
pub(super) struct RawEntry {
    pub ino: u32,
    pub name: Vec<u8>,
}

/// `rec_len` as stored; 64 KiB blocks store their full length as 0 or 65535.
fn rec_len(raw: u16, block_len: usize) -> usize {
    if raw == 65535 || raw == 0 {
        block_len
    } else {
        usize::from(raw & 65532) | (usize::from(raw & 3) << 16)
    }
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

    #[test]
    fn full_block_rec_len_of_64k_blocks() {
        assert_eq!(rec_len(0, 65536), 65536);
        assert_eq!(rec_len(65535, 65536), 65536);
        assert_eq!(rec_len(12, 4096), 12);
    }
}
