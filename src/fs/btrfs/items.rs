//! Items of the root tree and the fs trees, parsed from their bytes with bounds checks:
//! `ROOT_ITEM`, `ROOT_REF`, `INODE_ITEM`, `DIR_INDEX` (and `DIR_ITEM`, same layout) and
//! `EXTENT_DATA`. A short or inconsistent item is `None` / an error, never a panic.

use super::{Key, le16, le32, le64};

/// A subvolume (or the top-level tree) from its `ROOT_ITEM`.
#[derive(Clone, Debug)]
pub struct RootItem {
    /// Logical address and level of the tree's root block.
    pub bytenr: u64,
    pub level: u8,
    /// The objectid of the subvolume's root directory (256).
    pub root_dirid: u64,
    /// References: 0 means the subvolume was deleted and is being cleaned up.
    pub refs: u32,
}

impl RootItem {
    pub fn parse(b: &[u8]) -> Option<RootItem> {
        Some(RootItem {
            root_dirid: le64(b, 168)?,
            bytenr: le64(b, 176)?,
            refs: le32(b, 216)?,
            level: *b.get(238)?,
        })
    }
}

/// Whether `b` is a well-formed `ROOT_REF` (key: parent, `ROOT_REF`, child: the child
/// subvolume is linked in the parent): directory id, sequence, name length, name.
pub fn root_ref_ok(b: &[u8]) -> bool {
    le16(b, 16).is_some_and(|len| b.len() >= 18 + usize::from(len))
}

/// What an `INODE_ITEM` says.
#[derive(Clone, Copy, Debug)]
pub struct Inode {
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: i64,
    /// `BTRFS_INODE_*` flags (`NODATASUM`: its data has no checksums).
    pub flags: u64,
}

/// The inode's data has no checksums (`chattr +C`, `nodatasum`/`nodatacow` mounts).
pub const INODE_NODATASUM: u64 = 1;

impl Inode {
    pub fn parse(b: &[u8]) -> Option<Inode> {
        Some(Inode {
            size: le64(b, 16)?,
            uid: le32(b, 44)?,
            gid: le32(b, 48)?,
            mode: le32(b, 52)?,
            mtime: i64::from_le_bytes(b.get(136..144)?.try_into().ok()?),
            flags: le64(b, 64)?,
        })
    }
}

/// One directory entry of a `DIR_INDEX` (or `DIR_ITEM`) item.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// The inode (type `INODE_ITEM`) or subvolume (type `ROOT_ITEM`) named.
    pub location: Key,
    pub name: Vec<u8>,
}

/// The entries of a dir item (a `DIR_INDEX` holds one; a `DIR_ITEM` may hold several names that
/// hash alike). `None` when the item is malformed.
pub fn dir_entries(mut b: &[u8]) -> Option<Vec<DirEntry>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let location = Key::parse(b, 0)?;
        let data_len = usize::from(le16(b, 25)?);
        let name_len = usize::from(le16(b, 27)?);
        let name_end = 30usize.checked_add(name_len)?;
        let name = b.get(30..name_end)?.to_vec();
        if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
            return None;
        }
        out.push(DirEntry { location, name });
        b = b.get(name_end.checked_add(data_len)?..)?;
    }
    Some(out)
}

/// Compression of an extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Lzo,
    Zstd,
}

/// Where an extent's bytes are.
#[derive(Clone, Debug)]
pub enum ExtentBody {
    /// Stored in the item (compressed when `compression` says so).
    Inline(Vec<u8>),
    /// On disk: `disk_num_bytes` at `disk_bytenr` (0: a hole), of which the file uses
    /// `num_bytes` from `offset` (of the uncompressed bytes).
    Regular {
        disk_bytenr: u64,
        disk_num_bytes: u64,
        offset: u64,
        num_bytes: u64,
    },
    /// Allocated, never written: reads as zeros.
    Prealloc { num_bytes: u64 },
}

/// An `EXTENT_DATA` item.
#[derive(Clone, Debug)]
pub struct FileExtent {
    pub ram_bytes: u64,
    pub compression: Compression,
    /// Encryption or another encoding (not read).
    pub encoded: bool,
    pub compression_code: u8,
    pub body: ExtentBody,
}

impl FileExtent {
    pub fn parse(b: &[u8]) -> Option<FileExtent> {
        let ram_bytes = le64(b, 8)?;
        let code = *b.get(16)?;
        let encoded = *b.get(17)? != 0 || le16(b, 18)? != 0;
        let compression = match code {
            0 => Compression::None,
            1 => Compression::Zlib,
            2 => Compression::Lzo,
            3 => Compression::Zstd,
            _ => Compression::None,
        };
        let body = match *b.get(20)? {
            0 => ExtentBody::Inline(b.get(21..)?.to_vec()),
            1 => ExtentBody::Regular {
                disk_bytenr: le64(b, 21)?,
                disk_num_bytes: le64(b, 29)?,
                offset: le64(b, 37)?,
                num_bytes: le64(b, 45)?,
            },
            2 => ExtentBody::Prealloc {
                num_bytes: le64(b, 45)?,
            },
            _ => return None,
        };
        Some(FileExtent {
            ram_bytes,
            compression,
            encoded: encoded || code > 3,
            compression_code: code,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_items_are_none_not_panics() {
        for n in 0..240 {
            let b = vec![0xffu8; n];
            let _ = RootItem::parse(&b);
            let _ = root_ref_ok(&b);
            let _ = Inode::parse(&b);
            let _ = dir_entries(&b);
            let _ = FileExtent::parse(&b);
        }
    }

    #[test]
    fn a_dir_entry_with_a_slash_in_its_name_is_refused() {
        let mut b = vec![0u8; 30];
        b[27] = 3;
        b.extend_from_slice(b"a/b");
        assert!(dir_entries(&b).is_none());
        let n = b.len();
        b[n - 2] = b'x';
        let e = dir_entries(&b).unwrap();
        assert_eq!(e[0].name, b"axb");
    }
}
