//! Filesystems: probe a volume, list its entries and read file contents.
//!
//! A [`Filesystem`] is shared by all worker threads; each thread asks it for its own
//! [`FsReader`] (ext4-view's reader is not `Send`, and a per-thread reader keeps its caches warm).

mod btrfs;
pub mod dir;
mod ext4;
pub mod ext4_free;
mod fat;
pub mod lznt1;
mod ntfs;
pub mod ntfs_free;
pub mod ntfs_logfile;
pub mod probe;
pub mod tarfs;
pub mod xfs;

use crate::source::SharedSource;
use probe::FsKind;
use std::io::{Read, Seek};
use std::ops::Range;

/// Type of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file: its content is scanned.
    File,
    /// A directory: walked.
    Dir,
    /// A symbolic link: recorded, never followed.
    Symlink,
    /// A device, FIFO or socket: skipped.
    Special,
}

/// One entry of a filesystem, with the metadata checks and reports need.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Absolute path inside the volume, as raw bytes (file names need not be UTF-8).
    pub path: Vec<u8>,
    /// Entry type.
    pub kind: EntryKind,
    /// Permission bits (`0o7777` mask: setuid, setgid, sticky, rwx).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Inode number, when the filesystem has one (0 otherwise): files are reopened by it.
    pub ino: u64,
    /// First physical byte of the content on the volume, when known (0 otherwise): the
    /// content scan reads files in this order.
    pub phys: u64,
}

impl Entry {
    /// The path for reports: the path itself when it is UTF-8, else its visible escapes
    /// (`bad\xffname`, see [`crate::model::escape`]); either way distinct for distinct paths
    /// of the same kind. [`crate::model::path_fields`] gives the exact bytes to report with it.
    pub fn display_path(&self) -> String {
        crate::model::escape::path_text(&self.path)
    }
}

/// Where on the volume an [`FsError`] is, as far as the reader knows: what a caller can act on
/// (look at that block, that inode) without parsing the message. Not part of the message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct At {
    /// The filesystem block (in the filesystem's block size) that could not be read or is
    /// invalid.
    pub block: Option<u64>,
    /// The inode concerned.
    pub inode: Option<u64>,
    /// The byte offset on the volume that could not be read or is invalid.
    pub offset: Option<u64>,
}

/// Why a filesystem operation failed: the kind (read error, unsupported feature, corrupt
/// structure, other), the structure being read (`context`), the problem (`message`) and where
/// ([`At`]). The message text is `context: kind: message`, whatever `at` holds.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FsError {
    /// The bytes could not be read (truncated image, unreadable block).
    #[error("{context}: read error: {message}")]
    Io {
        /// What was being read.
        context: String,
        /// The underlying error.
        message: String,
        /// Where, when known.
        at: At,
    },
    /// The filesystem uses a feature amiscan cannot read.
    #[error("{context}: unsupported: {message}")]
    Incompatible {
        /// What was being read.
        context: String,
        /// The feature.
        message: String,
        /// Where, when known.
        at: At,
    },
    /// An on-disk structure is invalid.
    #[error("{context}: corrupt: {message}")]
    Corrupt {
        /// What was being read.
        context: String,
        /// The structure and the problem.
        message: String,
        /// Where, when known.
        at: At,
    },
    /// Anything else the filesystem reader reported.
    #[error("{context}: {message}")]
    Other {
        /// What was being read.
        context: String,
        /// The problem.
        message: String,
        /// Where, when known.
        at: At,
    },
}

impl FsError {
    /// What was being read (the structure, or the path).
    pub fn context(&self) -> &str {
        match self {
            FsError::Io { context, .. }
            | FsError::Incompatible { context, .. }
            | FsError::Corrupt { context, .. }
            | FsError::Other { context, .. } => context,
        }
    }

    /// Where the error is, as far as the reader knows.
    pub fn at(&self) -> At {
        match self {
            FsError::Io { at, .. }
            | FsError::Incompatible { at, .. }
            | FsError::Corrupt { at, .. }
            | FsError::Other { at, .. } => *at,
        }
    }

    fn at_mut(&mut self) -> &mut At {
        match self {
            FsError::Io { at, .. }
            | FsError::Incompatible { at, .. }
            | FsError::Corrupt { at, .. }
            | FsError::Other { at, .. } => at,
        }
    }

    /// The same error, naming inode `ino` unless it already names one.
    pub fn with_inode(mut self, ino: u64) -> FsError {
        self.at_mut().inode.get_or_insert(ino);
        self
    }

    /// The same error, naming block `block` unless it already names one.
    pub fn with_block(mut self, block: u64) -> FsError {
        self.at_mut().block.get_or_insert(block);
        self
    }

    /// The same error, naming volume byte offset `offset` unless it already names one.
    pub fn with_offset(mut self, offset: u64) -> FsError {
        self.at_mut().offset.get_or_insert(offset);
        self
    }
}

/// A file's content that can also be read from any offset ([`FsReader::open_seekable`]).
pub trait SeekRead: Read + Seek {}

impl<T: Read + Seek + ?Sized> SeekRead for T {}

/// Something a filesystem could not take into account when it opened (an XFS log or ext4 journal
/// that could not be replayed): the scan reports it as an error and scans the bytes `raw`
/// (volume offsets) raw.
#[derive(Clone, Debug)]
pub struct OpenProblem {
    /// What was not read, naming the structure and where.
    pub message: String,
    /// Bytes of the volume to scan raw instead (none, or the log's ranges).
    pub raw: Vec<Range<u64>>,
}

/// A filesystem on a volume, shared by all worker threads.
pub trait Filesystem: Send + Sync {
    /// Short name (`ext4`).
    fn name(&self) -> &'static str;
    /// A reader for the calling thread.
    fn reader(&self) -> Result<Box<dyn FsReader>, FsError>;
    /// A hint that the next walk lists every directory (a full scan, not `--quick`): a
    /// filesystem whose directories are cheaper to read in one pass in disk order may read
    /// them so at its first listing (NTFS). The default does nothing.
    fn will_walk_whole(&self) {}
    /// What the filesystem could not take into account when it opened (default: nothing).
    fn open_problems(&self) -> Vec<OpenProblem> {
        Vec::new()
    }
    /// The inode sweep: every in-use regular file, directory and symbolic link that a walk from
    /// the root did not reach (`reached(ino)` says which it did), as entries named
    /// [`unlinked_path`] or [`orphan_path`] (inodes on the filesystem's orphan list: files
    /// deleted while still open). Their content is read as any file's (by inode number); a
    /// directory among them is listed by the caller with [`FsReader::list_dir_at`]. The outer
    /// error means the sweep could not run at all; an inner error concerns one inode or one
    /// group of inodes that could not be looked at. `None`: the filesystem has no inode table
    /// to sweep (FAT), or this reader cannot sweep it (the default).
    fn unreached(&self, reached: &(dyn Fn(u64) -> bool + Sync)) -> Option<Swept> {
        let _ = reached;
        None
    }
    /// With `--unallocated`: deleted files whose content the filesystem's own metadata still
    /// holds (NTFS: a small file's resident `$DATA` in a free MFT record, inside `$MFT`'s
    /// allocated clusters, where the free-space scan does not look), as regular-file entries
    /// named [`ntfs::sweep::deleted_path`] (`<deleted inode N>/name`), read as any file's (by
    /// inode number). The errors mean as in [`Filesystem::unreached`]. `None` (the default):
    /// the filesystem keeps no file content in its metadata, its deleted files are in its free
    /// blocks.
    fn deleted(&self) -> Option<Swept> {
        None
    }
    /// Problems the reader worked around without losing data while it was read (an ext4
    /// directory extent marked unwritten, read as e2fsck keeps it): reported as warnings, they
    /// do not make the scan incomplete. Called after the scan; the default has none.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What [`Filesystem::unreached`] gives: the outer error means the sweep could not run at all.
pub type Swept = Result<Vec<Result<Entry, FsError>>, FsError>;

/// The path reported for in-use inode `ino` that no directory names: what `e2fsck` would move
/// to `lost+found`.
pub fn unlinked_path(ino: u64) -> Vec<u8> {
    format!("<unlinked inode {ino}>").into_bytes()
}

/// The path reported for inode `ino` on the orphan list: deleted while a process still held it
/// open when the image was taken.
pub fn orphan_path(ino: u64) -> Vec<u8> {
    format!("<orphan inode {ino}>").into_bytes()
}

/// Per-thread access to a filesystem's directories and files.
pub trait FsReader {
    /// The entries of directory `path` (without `.` and `..`). The outer error means the directory
    /// could not be listed; an inner error concerns one entry.
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError>;
    /// The entries of directory `path`, whose inode number `ino` the caller knows from the
    /// entry that named it (0: unknown). A reader that can go to the inode directly need not
    /// resolve the path again; the default lists `path`.
    fn list_dir_at(&self, path: &[u8], ino: u64) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let _ = ino;
        self.list_dir(path)
    }
    /// A reader over the content of a regular file.
    fn open_file<'a>(&'a self, entry: &Entry) -> Result<Box<dyn Read + 'a>, FsError>;
    /// A reader over the content of a regular file that can also seek: archives are opened by
    /// offset (a zip's directory is at its end), never held whole in memory. `None` when the
    /// filesystem reads files only as a stream; the caller then uses [`FsReader::open_file`]
    /// (the default).
    fn open_seekable<'a>(
        &'a self,
        entry: &Entry,
    ) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        let _ = entry;
        Ok(None)
    }
    /// The byte ranges of regular file `entry` that hold data, in file order and within its
    /// size: what `SEEK_DATA`/`SEEK_HOLE` would give. Holes and unwritten (preallocated)
    /// extents are left out; they read as zeros. The content scan skips long runs of them, so
    /// a size that says terabytes over a few blocks (sparse, or damaged) is not read as
    /// terabytes of zeros. `None` when the filesystem does not know (the default): every byte
    /// is then read.
    fn data_ranges(&self, entry: &Entry) -> Result<Option<Vec<Range<u64>>>, FsError> {
        let _ = entry;
        Ok(None)
    }

    /// A digest that is equal for two regular files only when their contents are the same
    /// bytes on the volume: btrfs gives one of the size and the extent list (`disk_bytenr`,
    /// offsets, lengths, compression; inline data), so a snapshot's or reflink copy's
    /// unchanged file has its source's. The content scan reads such files once and reports
    /// the findings at each path. `None` (the default): no such digest, the file is read.
    fn content_key(&self, entry: &Entry) -> Option<[u8; 32]> {
        let _ = entry;
        None
    }
    /// The target of a symbolic link, as stored (never resolved).
    fn read_link(&self, entry: &Entry) -> Result<Vec<u8>, FsError>;
    /// A hint that directory `entry` will be listed soon: a remote source may start fetching
    /// its first block (the walk names the directories it will descend into, so they arrive in
    /// parallel rather than one round trip each). The default does nothing.
    fn prefetch_dir(&self, _entry: &Entry) {}
    /// A hint that regular file `entry` will be read soon: a remote source may start fetching
    /// its inode and its data (the volume checks name the files they are about to read one
    /// after another, so they arrive together rather than one round trip each). The default
    /// does nothing.
    fn prefetch_file(&self, _entry: &Entry) {}
}

pub use btrfs::devices::{Group as BtrfsGroup, group as btrfs_groups};

/// Open a btrfs filesystem of several devices: `src` and the `others` found with it by
/// [`btrfs_groups`].
pub fn open_btrfs_devices(
    src: SharedSource,
    others: Vec<SharedSource>,
) -> Result<Box<dyn Filesystem>, FsError> {
    Ok(Box::new(btrfs::BtrfsFs::open_devices(src, others)?))
}

/// Whether [`open`] reads filesystems of this kind (the others are named by their magic and
/// scanned raw).
pub fn readable(kind: FsKind) -> bool {
    matches!(
        kind,
        FsKind::Ext4 | FsKind::Fat | FsKind::Xfs | FsKind::Ntfs | FsKind::Btrfs
    )
}

/// Open the filesystem `kind` on `src`. Fails with [`FsError::Incompatible`] for a kind amiscan
/// does not read yet, or with the reader's error when the superblock is refused.
pub fn open(kind: FsKind, src: SharedSource) -> Result<Box<dyn Filesystem>, FsError> {
    match kind {
        FsKind::Ext4 => Ok(Box::new(ext4::Ext4Fs::open(src)?)),
        FsKind::Fat => Ok(Box::new(fat::FatFs::open(src)?)),
        FsKind::Xfs => Ok(Box::new(xfs::XfsFs::open(src)?)),
        FsKind::Ntfs => Ok(Box::new(ntfs::NtfsFs::open(src)?)),
        FsKind::Btrfs => Ok(Box::new(btrfs::BtrfsFs::open(src)?)),
        other => Err(FsError::Incompatible {
            context: format!("{} filesystem", other.name()),
            message: format!(
                "amiscan cannot read {} filesystems yet; its files were not scanned",
                other.name()
            ),
            at: Default::default(),
        }),
    }
}

/// The byte ranges of the volume that the filesystem `kind` on `src` has allocated, less its
/// journal or log: what a full scan reads (files, directories, inodes, extent and btree
/// blocks), ascending. The complement of the free space `--unallocated` reads ([`ext4_free`],
/// [`xfs::free`]). `None` for a filesystem whose free space amiscan cannot locate.
pub fn allocated(kind: FsKind, src: &SharedSource) -> Option<Result<Vec<Range<u64>>, FsError>> {
    let free = match kind {
        FsKind::Ext4 => ext4_free::free_regions(src),
        FsKind::Xfs => xfs::free::free_regions(src.as_ref()),
        FsKind::Ntfs => ntfs_free::free_regions(src).map(|mut free| {
            // Allocated, but never read by a scan: left out like the journal.
            if let Ok(mirror) = ntfs_free::mirror_regions(src) {
                free.extend(mirror.into_iter().map(|r| ext4_free::Region {
                    offset: r.start,
                    len: r.end.saturating_sub(r.start),
                    kind: ext4_free::RegionKind::Journal,
                }));
            }
            free
        }),
        _ => return None,
    };
    Some(free.map(|mut free| {
        free.sort_unstable_by_key(|r| r.offset);
        let mut out = Vec::new();
        let mut at = 0u64;
        for r in free {
            if r.offset > at {
                out.push(at..r.offset);
            }
            at = at.max(r.offset.saturating_add(r.len));
        }
        if at < src.len() {
            out.push(at..src.len());
        }
        out
    }))
}

/// Join a directory path and a name into an absolute path.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len().saturating_add(name.len()).saturating_add(1));
    p.extend_from_slice(dir);
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_builds_absolute_paths() {
        assert_eq!(join(b"/", b"etc"), b"/etc");
        assert_eq!(join(b"/etc", b"shadow"), b"/etc/shadow");
    }

    #[test]
    fn where_an_error_is_does_not_change_its_message() {
        let plain = FsError::Corrupt {
            context: "inode 12".into(),
            message: "bad checksum".into(),
            at: At::default(),
        };
        let placed = FsError::Corrupt {
            context: "inode 12".into(),
            message: "bad checksum".into(),
            at: At::default(),
        }
        .with_inode(12)
        .with_block(40)
        .with_inode(99);
        assert_eq!(plain.to_string(), "inode 12: corrupt: bad checksum");
        assert_eq!(placed.to_string(), plain.to_string());
        assert_eq!(placed.context(), "inode 12");
        assert_eq!(
            placed.at(),
            At {
                block: Some(40),
                inode: Some(12),
                offset: None
            },
            "the first inode named is kept"
        );
    }

    #[test]
    fn an_ext4_read_error_names_the_offset_it_could_not_read() {
        let src: SharedSource =
            std::sync::Arc::new(crate::source::MemSource::new(vec![0u8; 4096], "mem"));
        let e = ext4::io("superblock", src.read_at(8192, &mut [0u8; 16]).unwrap_err());
        assert_eq!(e.at().offset, Some(8192));
        assert!(e.to_string().starts_with("superblock: read error: "), "{e}");
    }
}
