//! Read-only XFS (v4 and v5) reader: superblock, inodes, every data-fork and directory format,
//! and a streaming file reader. Everything an on-disk field can steer is bounds-checked: no panic,
//! no unbounded loop and no allocation sized by the disk without a cap.
//!
//! A dirty log (an image of a running instance) is replayed in memory before anything is read:
//! [`log`] finds its head and tail and unpacks its records, [`log_trans`] reassembles the
//! committed transactions, [`log_items`] replays their items into an overlay of the volume.
//! When the log cannot be replayed the tree is read as it is on disk (the last checkpoint) and
//! [`XfsFs::open_problems`] names the log, so the scan reports it and reads its blocks raw.
//!
//! Layout: [`superblock`] (geometry and features), [`inode`] (inode core and forks), [`bmap`] (extent lists and bmap B+trees), [`dir`]
//! (shortform, block, leaf, node and B+tree directories), [`file`] (streaming file reads and
//! symlink targets).

mod bmap;
mod dir;
mod file;
pub mod free;
mod inode;
mod log;
mod log_items;
mod log_trans;
mod superblock;
mod sweep;

pub(crate) use crate::bytes::{be16, be32, be64, le32};
use crate::fs::{At, Entry, EntryKind, Filesystem, FsError, FsReader, OpenProblem, SeekRead, join};
use crate::source::SharedSource;
use inode::Inode;
pub use log_items::LogReplay;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use superblock::Superblock;

/// Paths remembered per reader (path → inode number) before the cache is emptied.
const MAX_CACHED_PATHS: usize = 1 << 20;
/// Most path components resolved for one lookup.
const MAX_PATH_COMPONENTS: usize = 4096;

/// An XFS filesystem on a source. Cheap to share: readers hold an `Arc` of it.
pub struct XfsFs {
    inner: Arc<Ctx>,
    replay: Option<LogReplay>,
    problems: Vec<OpenProblem>,
}

/// What every structure parser needs: the bytes and the geometry.
pub(crate) struct Ctx {
    pub(crate) src: SharedSource,
    pub(crate) sb: Superblock,
}

impl XfsFs {
    /// Read and validate the primary superblock and replay a dirty log in memory.
    ///
    /// Fails with [`FsError::Corrupt`] for an invalid superblock or root, [`FsError::Incompatible`]
    /// for a feature this reader does not handle, and [`FsError::Io`] when the source cannot be
    /// read. A log that cannot be replayed does not fail the open: the tree is read as it is on
    /// disk and [`XfsFs::open_problems`] says so.
    pub fn open(src: SharedSource) -> Result<XfsFs, FsError> {
        let sb = Superblock::read(&*src)?;
        let disk = Ctx {
            src: Arc::clone(&src),
            sb: sb.clone(),
        };
        let mut problems = Vec::new();
        let mut replay = None;
        let ctx = match log_items::replay(&disk) {
            Ok(None) => disk,
            Ok(Some((blocks, stats))) => {
                let mapping: Vec<String> = stats
                    .pending_intents
                    .iter()
                    .filter(|(k, _)| k.starts_with("BUI") || k.starts_with("XMI"))
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect();
                if !mapping.is_empty() {
                    problems.push(OpenProblem {
                        message: format!(
                            "xfs log: intents pending at the head were not replayed ({}): files whose block mappings they change read as before the change",
                            mapping.join(", ")
                        ),
                        raw: Vec::new(),
                    });
                }
                if let Some(torn) = &stats.torn {
                    let area = log::LogArea::of(&disk).ok().flatten();
                    problems.push(OpenProblem {
                        message: format!(
                            "xfs log{}: {torn}; the log's blocks were scanned raw",
                            area.map_or(String::new(), |a| format!(
                                " (bytes {}..{} of the volume)",
                                a.range().start,
                                a.range().end
                            ))
                        ),
                        raw: area.map(|a| a.range()).into_iter().collect(),
                    });
                }
                replay = Some(stats);
                Ctx {
                    src: Arc::new(log_items::Replayed { src, blocks }),
                    sb,
                }
            }
            Err(e) => {
                let area = log::LogArea::of(&disk).ok().flatten();
                problems.push(OpenProblem {
                    message: format!(
                        "xfs log{}: the log could not be replayed ({e}): its committed transactions were not replayed, the tree was read as it is on disk (the last checkpoint){}",
                        area.map_or(String::new(), |a| format!(
                            " (bytes {}..{} of the volume)",
                            a.range().start,
                            a.range().end
                        )),
                        if area.is_some() {
                            " and the log's blocks were scanned raw"
                        } else {
                            ""
                        }
                    ),
                    raw: area.map(|a| a.range()).into_iter().collect(),
                });
                disk
            }
        };
        // The root must be a readable directory.
        let root = Inode::read(&ctx, ctx.sb.rootino)?;
        if root.kind() != EntryKind::Dir {
            return Err(corrupt(
                format!("xfs root inode {}", ctx.sb.rootino),
                "the root inode is not a directory",
            ));
        }
        Ok(XfsFs {
            inner: Arc::new(ctx),
            replay,
            problems,
        })
    }

    /// What replaying the log did (`None`: the log was clean, or could not be replayed).
    pub fn log_replay(&self) -> Option<&LogReplay> {
        self.replay.as_ref()
    }
}

impl Filesystem for XfsFs {
    fn name(&self) -> &'static str {
        "xfs"
    }

    fn open_problems(&self) -> Vec<OpenProblem> {
        self.problems.clone()
    }

    fn unreached(&self, reached: &(dyn Fn(u64) -> bool + Sync)) -> Option<crate::fs::Swept> {
        Some(sweep::sweep(&self.inner, reached))
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        Ok(Box::new(XfsReader {
            ctx: Arc::clone(&self.inner),
            paths: RefCell::new(HashMap::new()),
        }))
    }
}

/// A per-thread reader: remembers the inode number of every path it listed, so walking a tree
/// top-down never rescans a parent directory.
struct XfsReader {
    ctx: Arc<Ctx>,
    paths: RefCell<HashMap<Vec<u8>, u64>>,
}

impl XfsReader {
    fn remember(&self, path: Vec<u8>, ino: u64) {
        let mut paths = self.paths.borrow_mut();
        if paths.len() >= MAX_CACHED_PATHS {
            paths.clear();
        }
        paths.insert(path, ino);
    }

    /// The inode number of `path`, resolved from the root without following symlinks.
    fn resolve(&self, path: &[u8]) -> Result<u64, FsError> {
        let trimmed = trim_slashes(path);
        if trimmed.is_empty() {
            return Ok(self.ctx.sb.rootino);
        }
        if let Some(&ino) = self.paths.borrow().get(trimmed) {
            return Ok(ino);
        }
        let mut ino = self.ctx.sb.rootino;
        let mut sofar: Vec<u8> = Vec::new();
        for (n, comp) in trimmed
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .enumerate()
        {
            if n >= MAX_PATH_COMPONENTS {
                return Err(other(path, "too many path components"));
            }
            sofar.push(b'/');
            sofar.extend_from_slice(comp);
            if let Some(&known) = self.paths.borrow().get(&sofar[1..]) {
                ino = known;
                continue;
            }
            let dir = Inode::read(&self.ctx, ino)?;
            if dir.kind() != EntryKind::Dir {
                return Err(other(path, "a path component is not a directory"));
            }
            let mut found = None;
            dir::for_each_entry(&self.ctx, &dir, &mut |name, child, _| {
                if name == comp {
                    found = Some(child);
                    false
                } else {
                    true
                }
            })?;
            ino = found.ok_or_else(|| other(path, "no such file or directory"))?;
            self.remember(sofar[1..].to_vec(), ino);
        }
        Ok(ino)
    }
}

impl FsReader for XfsReader {
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let ino = self.resolve(path)?;
        self.list_dir_at(path, ino)
    }

    fn list_dir_at(&self, path: &[u8], ino: u64) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let ino = match ino {
            0 => self.resolve(path)?,
            ino => ino,
        };
        let dir = Inode::read(&self.ctx, ino)?;
        if dir.kind() != EntryKind::Dir {
            return Err(other(path, "not a directory"));
        }
        let mut children: Vec<(Vec<u8>, u64)> = Vec::new();
        dir::for_each_entry(&self.ctx, &dir, &mut |name, child, _| {
            children.push((name.to_vec(), child));
            true
        })?;
        let parent = trim_slashes(path);
        let mut out = Vec::with_capacity(children.len());
        for (name, child) in children {
            let full = join(if parent.is_empty() { b"/" } else { path }, &name);
            let entry = Inode::read(&self.ctx, child).map(|inode| Entry {
                path: full.clone(),
                kind: inode.kind(),
                mode: inode.mode & 0o7777,
                uid: inode.uid,
                gid: inode.gid,
                size: inode.size,
                mtime: inode.mtime,
                ino: child,
                phys: first_byte(&self.ctx, &inode),
            });
            if entry.is_ok() {
                self.remember(trim_slashes(&full).to_vec(), child);
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// A reader over a regular file's content. For a symlink it reads the link target, so
    /// callers can record where a link points without a separate API.
    fn open_file<'a>(&'a self, entry: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        match self.open_seekable(entry)? {
            Some(r) => Ok(r),
            None => Err(other(&entry.path, "not a regular file")),
        }
    }

    fn open_seekable<'a>(
        &'a self,
        entry: &Entry,
    ) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        let ino = match entry.ino {
            0 => self.resolve(&entry.path)?,
            ino => ino,
        };
        let inode = Inode::read(&self.ctx, ino)?;
        match inode.kind() {
            EntryKind::File => Ok(Some(Box::new(file::FileReader::new(&self.ctx, inode)?))),
            EntryKind::Symlink => Ok(Some(Box::new(std::io::Cursor::new(file::read_symlink(
                &self.ctx, &inode,
            )?)))),
            _ => Err(other(&entry.path, "not a regular file")),
        }
    }

    fn data_ranges(&self, entry: &Entry) -> Result<Option<Vec<std::ops::Range<u64>>>, FsError> {
        let ino = match entry.ino {
            0 => self.resolve(&entry.path)?,
            ino => ino,
        };
        let inode = Inode::read(&self.ctx, ino)?;
        if inode.kind() != EntryKind::File {
            return Ok(None);
        }
        file::data_ranges(&self.ctx, &inode)
    }

    fn read_link(&self, entry: &Entry) -> Result<Vec<u8>, FsError> {
        let ino = match entry.ino {
            0 => self.resolve(&entry.path)?,
            ino => ino,
        };
        let inode = Inode::read(&self.ctx, ino)?;
        match inode.kind() {
            EntryKind::Symlink => file::read_symlink(&self.ctx, &inode),
            _ => Err(other(&entry.path, "not a symbolic link")),
        }
    }

    fn prefetch_file(&self, e: &Entry) {
        if e.ino != 0
            && let Ok(at) = self.ctx.sb.inode_offset(e.ino)
        {
            self.ctx.src.prefetch(at, u64::from(self.ctx.sb.inodesize));
        }
        if e.phys != 0 {
            self.ctx.src.prefetch(e.phys, e.size);
        }
    }
}

/// The first physical byte of a file whose extent list sits in its inode (for read ordering;
/// 0 when the inode does not say).
fn first_byte(ctx: &Ctx, inode: &Inode) -> u64 {
    if inode.format != inode::FMT_EXTENTS {
        return 0;
    }
    inode
        .fork
        .get(..16)
        .and_then(bmap::decode)
        .and_then(|e| ctx.sb.fsb_offset(e.startblock))
        .unwrap_or(0)
}

fn trim_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    let end = path
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(start, |e| e + 1);
    path.get(start..end).unwrap_or(&[])
}

pub(crate) fn corrupt(context: impl Into<String>, message: impl Into<String>) -> FsError {
    FsError::Corrupt {
        context: context.into(),
        message: message.into(),
        at: Default::default(),
    }
}

pub(crate) fn incompatible(context: impl Into<String>, message: impl Into<String>) -> FsError {
    FsError::Incompatible {
        context: context.into(),
        message: message.into(),
        at: Default::default(),
    }
}

fn other(path: &[u8], message: &str) -> FsError {
    FsError::Other {
        context: format!("xfs path {}", String::from_utf8_lossy(path)),
        message: message.into(),
        at: Default::default(),
    }
}

impl Ctx {
    /// Read `buf.len()` bytes at byte `offset` of the volume.
    pub(crate) fn read(
        &self,
        offset: u64,
        buf: &mut [u8],
        what: &dyn Fn() -> String,
    ) -> Result<(), FsError> {
        self.src.read_at(offset, buf).map_err(|e| FsError::Io {
            context: what(),
            message: e.to_string(),
            at: At {
                offset: Some(offset),
                ..At::default()
            },
        })
    }

    /// Read `len` bytes at byte `offset` into a new buffer (`len` is always a checked block,
    /// sector or inode size, never a raw on-disk count).
    pub(crate) fn read_vec(
        &self,
        offset: u64,
        len: usize,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<u8>, FsError> {
        let mut buf = vec![0u8; len];
        self.read(offset, &mut buf, what)?;
        Ok(buf)
    }
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

pub(crate) fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        let idx = usize::from((crc as u8) ^ b);
        crc = CRC32C_TABLE.get(idx).copied().unwrap_or(0) ^ (crc >> 8);
    }
    crc
}

/// True when the little-endian CRC32C stored at `crc_off` in `buf` matches the rest of `buf`
/// (the XFS convention: computed with the CRC field zeroed).
pub(crate) fn crc_ok(buf: &[u8], crc_off: usize) -> bool {
    let (Some(head), Some(stored), Some(tail)) = (
        buf.get(..crc_off),
        le32(buf, crc_off),
        crc_off.checked_add(4).and_then(|e| buf.get(e..)),
    ) else {
        return false;
    };
    let mut crc = crc32c_update(!0, head);
    crc = crc32c_update(crc, &[0; 4]);
    crc = crc32c_update(crc, tail);
    !crc == stored
}

/// Store the CRC of `buf` at `crc_off` (tests build structures with it).
#[cfg(test)]
pub(crate) fn set_crc(buf: &mut [u8], crc_off: usize) {
    buf[crc_off..crc_off + 4].fill(0);
    let crc = !crc32c_update(!0, buf);
    buf[crc_off..crc_off + 4].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::source::{Source, SourceError};

    /// An in-memory volume for unit tests.
    pub(crate) struct Mem(pub Vec<u8>);
    impl Source for Mem {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
            crate::source::check_bounds(&|| "mem".into(), offset, buf.len(), self.len())?;
            let start = offset as usize;
            buf.copy_from_slice(&self.0[start..start + buf.len()]);
            Ok(())
        }
        fn describe(&self) -> String {
            "mem".into()
        }
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(!crc32c_update(!0, b"123456789"), 0xE306_9283);
        let mut buf = vec![7u8; 64];
        set_crc(&mut buf, 8);
        assert!(crc_ok(&buf, 8));
        buf[40] ^= 1;
        assert!(!crc_ok(&buf, 8));
        assert!(!crc_ok(&buf, 62));
    }

    #[test]
    fn trims_slashes() {
        assert_eq!(trim_slashes(b"/"), b"");
        assert_eq!(trim_slashes(b"//a/b/"), b"a/b");
        assert_eq!(trim_slashes(b""), b"");
    }

    #[test]
    fn field_readers_stop_at_the_end() {
        assert_eq!(be16(&[1, 2], 0), Some(0x0102));
        assert_eq!(be16(&[1, 2], 1), None);
        assert_eq!(be64(&[0; 8], usize::MAX), None);
    }
}
