//! ext2/3/4.
//!
//! amiscan reads ext2/3/4 itself ([`sb`], [`inode`], [`dir`]): files are opened by inode number
//! (so a walk of N files never re-resolves N paths from the root), content is read straight
//! from the extents (or the ext2/3 block map, or the inode's inline data) into the caller's
//! buffer in one read per extent, and every entry carries its first physical byte so the
//! content scan can read files in disk order. Extent trees, block maps with holes,
//! uninitialised extents, hashed directories (read linearly), inline data, `meta_bg`,
//! `64bit` and every block size are read. An fscrypt-encrypted file is reported as not
//! readable. With `metadata_csum` (the default of current `mke2fs`), the superblock, every
//! inode, extent-tree block, directory leaf block and htree index block ([`htree`], told apart
//! by structure as the kernel does, see [`dir`]) is checked against its crc32c: a damaged one
//! is an error naming it, and the rest of the volume is still read. A damaged directory block
//! loses its own entries (one inner error of [`FsReader::list_dir`] names the directory, the
//! block and why), the directory's other blocks are still listed.
//!
//! A filesystem whose journal still needs recovery (the image was taken while it was mounted)
//! is read through its journal ([`journal`]: committed blocks replayed in memory), so what is
//! walked is what the kernel would mount. One with an incompatible feature the native reader
//! does not know, or whose journal is on another device, is handed to `ext4-view` ([`view`]),
//! which refuses what it cannot read with a typed error (the volume is then scanned raw).

mod dir;
mod htree;
mod inode;
mod journal;
mod sb;
mod sweep;
#[cfg(test)]
mod testimg;
mod view;

use super::{At, Entry, EntryKind, Filesystem, FsError, FsReader, OpenProblem, SeekRead};
use crate::source::{SharedSource, SourceError};
use inode::{ENCRYPT_FL, Inode, Run};
pub(crate) use sb::Super;
use sb::incompat;
pub(crate) use sb::{backup_offsets, is_backup_super};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

/// Root directory inode.
const ROOT_INO: u64 = 2;
/// Largest directory listed (a 10-million-entry directory is ~300 MiB).
const MAX_DIR_BYTES: u64 = 1 << 30;
/// Longest symlink target read.
const MAX_LINK: u64 = 64 * 1024;
/// Directory inode numbers remembered per reader before the cache is emptied.
const MAX_CACHED_DIRS: usize = 1 << 20;
/// Distinct warnings kept per filesystem (the count of the rest is reported).
const MAX_WARNINGS: usize = 100;

pub(super) fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub(super) fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(super) fn corrupt(context: &str, message: impl Into<String>) -> FsError {
    FsError::Corrupt {
        context: context.to_string(),
        message: message.into(),
        at: Default::default(),
    }
}

pub(super) fn incompatible(context: &str, message: impl Into<String>) -> FsError {
    FsError::Incompatible {
        context: context.to_string(),
        message: message.into(),
        at: Default::default(),
    }
}

pub(super) fn io(context: &str, e: SourceError) -> FsError {
    let offset = match &e {
        SourceError::OutOfBounds { offset, .. }
        | SourceError::Io { offset, .. }
        | SourceError::Corrupt { offset, .. } => *offset,
    };
    FsError::Io {
        context: context.to_string(),
        message: e.to_string(),
        at: At {
            offset: Some(offset),
            ..At::default()
        },
    }
}

/// The kernel's `crc32c(seed, data)` (CRC-32C without the final inversion), over `parts`.
pub(super) fn crc32c(seed: u32, parts: &[&[u8]]) -> u32 {
    const CRC32C: crc::Crc<u32, crc::Table<16>> =
        crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
    let mut d = CRC32C.digest_with_initial(seed.reverse_bits());
    for p in parts {
        d.update(p);
    }
    !d.finalize()
}

/// A directory record's `rec_len` as stored; 64 KiB blocks store their full length as 0 or
/// 65535.
pub(super) fn rec_len(raw: u16, block_len: usize) -> usize {
    if raw == 65535 || raw == 0 {
        block_len
    } else {
        usize::from(raw & 65532) | (usize::from(raw & 3) << 16)
    }
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// What every reader of one filesystem shares.
struct Ctx {
    src: SharedSource,
    sb: Super,
    /// First block of each group's inode table.
    inode_tables: Vec<u64>,
    /// What was worked around while reading ([`Filesystem::warnings`]).
    warnings: Warnings,
}

/// Distinct warnings, bounded, shared by every reader of one filesystem.
#[derive(Default)]
struct Warnings(std::sync::Mutex<(std::collections::BTreeSet<String>, u64)>);

impl Warnings {
    fn add(&self, w: String) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.0.len() < MAX_WARNINGS {
            g.0.insert(w);
        } else if !g.0.contains(&w) {
            g.1 = g.1.saturating_add(1);
        }
    }

    fn list(&self) -> Vec<String> {
        let g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<String> = g.0.iter().cloned().collect();
        if g.1 > 0 {
            out.push(format!("and {} more warnings of this filesystem", g.1));
        }
        out
    }
}

/// An ext2/3/4 filesystem on a volume.
pub struct Ext4Fs(Inner, Vec<OpenProblem>);

enum Inner {
    /// Read natively.
    Native(Arc<Ctx>),
    /// Read through ext4-view (journal to replay, or a feature the native reader lacks).
    View(view::Ext4ViewFs),
}

impl Ext4Fs {
    /// Read the superblock and the group descriptors, and choose the reader.
    pub fn open(src: SharedSource) -> Result<Self, FsError> {
        let (sb, from_backup) = Super::find(src.as_ref())?;
        if sb.incompat & !incompat::KNOWN != 0 {
            if let Some(w) = from_backup {
                return Err(incompatible(
                    "ext4 superblock",
                    format!(
                        "{w}; but it needs a feature the native reader lacks ({:#x}), and \
                             the other reader cannot open from a backup",
                        sb.incompat & !incompat::KNOWN
                    ),
                ));
            }
            return Ok(Ext4Fs(
                Inner::View(view::Ext4ViewFs::open(src)?),
                Vec::new(),
            ));
        }
        let mut ctx = Ctx::new(src, sb, from_backup)?;
        // A journal that cannot be replayed does not hide the tree: it is read as it is on disk
        // (as of the last checkpoint), and the journal's blocks are scanned raw. A backup
        // superblock never carries the needs-recovery flag: its journal is looked at anyway
        // (a clean one replays nothing).
        let mut problems = Vec::new();
        let backup_journal = ctx.sb.journal_inum != 0 && ctx.sb.backup;
        if let Some(dev) = ctx.sb.external_journal.clone() {
            // The journal is on another device (`mke2fs -J device=`), which an image of this
            // volume does not hold: the tree is read as it is on disk. Clean, nothing is
            // lost; needing recovery, the journal's newer changes are, and the scan says so.
            if ctx.sb.incompat & incompat::RECOVER != 0 {
                problems.push(OpenProblem {
                    message: format!(
                        "ext4 journal: the filesystem needs recovery (a snapshot of a mounted \
                         filesystem) and its journal is external ({dev}), on a device this \
                         volume does not hold: the tree was read as it is on disk, without the \
                         journal's newer changes"
                    ),
                    raw: Vec::new(),
                });
            } else {
                ctx.warnings.add(format!(
                    "ext4 journal: external ({dev}), not in this volume; the filesystem was \
                     cleanly unmounted, so there was nothing to replay"
                ));
            }
        } else if ctx.sb.incompat & incompat::RECOVER != 0 || backup_journal {
            match Self::replay(&ctx) {
                Ok((replayed, fast)) => {
                    if let Some(replayed) = replayed {
                        ctx = replayed;
                    }
                    problems.extend(fast);
                }
                Err(e) => problems.push(OpenProblem {
                    message: format!(
                        "ext4 journal: the filesystem needs recovery (a snapshot of a mounted \
                         filesystem) and its journal could not be replayed ({e}): the tree was \
                         read as it is on disk, without the journal's newer changes, and the \
                         journal's blocks were scanned raw"
                    ),
                    raw: journal_ranges(&ctx),
                }),
            }
        }
        let root = Inode::read(&ctx, ROOT_INO)?;
        if root.kind() != Some(EntryKind::Dir) {
            return Err(corrupt(
                "ext4 root inode 2",
                "the root inode is not a directory",
            ));
        }
        Ok(Ext4Fs(Inner::Native(Arc::new(ctx)), problems))
    }
}

impl Ext4Fs {
    /// Lay the journal's committed blocks over the volume, then re-read the superblock and
    /// the group descriptors through it (the journal may hold newer copies of both).
    /// The second value: the fast commits the log's replay leaves out ([`fast_commit_problem`]).
    fn replay(ctx: &Ctx) -> Result<(Option<Ctx>, Option<OpenProblem>), FsError> {
        let bs = ctx.sb.block_size;
        let jino = Inode::read(ctx, ctx.sb.journal_inum)?;
        let mut blocks = Vec::new();
        for r in jino.runs(ctx)? {
            if r.uninit || r.logical != blocks.len() as u64 {
                return Err(corrupt(
                    "ext4 journal inode",
                    format!("hole or unwritten extent at journal block {}", blocks.len()),
                ));
            }
            if blocks.len() as u64 + r.len > 1 << 22 {
                return Err(corrupt(
                    "ext4 journal inode",
                    "journal larger than 2^22 blocks",
                ));
            }
            blocks.extend((0..r.len).map(|i| (r.phys + i) * bs));
        }
        let map = journal::JournalMap { blocks };
        let mut replay = journal::Replay::read(ctx.src.as_ref(), bs, &map)?;
        let fast = replay
            .fast_commits
            .take()
            .map(|fc| fast_commit_problem(&fc, &map, bs, ctx.src.len(), replay.transactions));
        if replay.is_empty() {
            return Ok((None, fast));
        }
        let src: SharedSource = Arc::new(journal::Journaled {
            src: ctx.src.clone(),
            block_size: bs,
            replay,
        });
        let (sb, from_backup) = Super::find(src.as_ref())?;
        if sb.block_size != bs {
            return Err(corrupt(
                "ext4 superblock",
                "the journal's copy of the superblock has another block size",
            ));
        }
        Ok((Some(Ctx::new(src, sb, from_backup)?), fast))
    }
}

/// Fast commits left unreplayed, as the scan reports them: which transaction, how many, the
/// inodes and names they carry; their journal blocks and the file blocks they add are scanned
/// raw (the data was written before the commit; no inode on disk names it).
fn fast_commit_problem(
    fc: &journal::FastCommits,
    map: &journal::JournalMap,
    bs: u64,
    volume: u64,
    transactions: u64,
) -> OpenProblem {
    let inodes: Vec<String> = fc.inodes.iter().take(16).map(u32::to_string).collect();
    let more = fc.inodes.len().saturating_sub(inodes.len());
    let names = if fc.names.is_empty() {
        String::new()
    } else {
        format!("; names {}", fc.names.join(", "))
    };
    let (first, count) = fc.blocks;
    let mut raw: Vec<std::ops::Range<u64>> = (first..first + count)
        .filter_map(|j| map.blocks.get(usize::try_from(j).ok()?))
        .map(|&at| at..at + bs)
        .collect();
    raw.extend(fc.extents.iter().filter_map(|&(start, n)| {
        let at = start.checked_mul(bs)?;
        Some(at..at.checked_add(n.checked_mul(bs)?)?)
    }));
    // Inside the volume (a hostile extent names any block), sorted and merged.
    let mut raw: Vec<std::ops::Range<u64>> = raw
        .into_iter()
        .filter(|r| r.start < volume)
        .map(|r| r.start..r.end.min(volume))
        .collect();
    raw.sort_by_key(|r| r.start);
    raw.dedup_by(|next, prev| {
        if next.start <= prev.end {
            prev.end = prev.end.max(next.end);
            true
        } else {
            false
        }
    });
    OpenProblem {
        message: format!(
            "ext4 journal: {} fast commit(s) of transaction {} not replayed (after the {transactions} \
             full transaction(s) that were), touching inodes {}{}{names}: the tree was read \
             without them; their {count} journal block(s) at journal block {first} and the \
             {} file extent(s) they add were scanned raw",
            fc.commits,
            fc.tid,
            inodes.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            fc.extents.len(),
        ),
        raw,
    }
}

impl Ctx {
    /// The reader's state from superblock `sb` (`from_backup`: the warning saying it is a
    /// backup's) and the checked group descriptors, with what was worked around as warnings.
    fn new(src: SharedSource, sb: Super, from_backup: Option<String>) -> Result<Self, FsError> {
        let (descs, mut warned) = sb.descriptors_checked(src.as_ref())?;
        warned.extend(from_backup);
        let warnings = Warnings::default();
        for w in warned {
            warnings.add(w);
        }
        Ok(Ctx {
            inode_tables: descs.iter().map(|d| d.inode_table).collect(),
            src,
            sb,
            warnings,
        })
    }
}

/// The byte ranges of the internal journal on the volume (empty if its inode cannot be read).
fn journal_ranges(ctx: &Ctx) -> Vec<std::ops::Range<u64>> {
    let bs = ctx.sb.block_size;
    let Ok(runs) = Inode::read(ctx, ctx.sb.journal_inum).and_then(|j| j.runs(ctx)) else {
        return Vec::new();
    };
    runs.iter()
        .filter_map(|r| {
            let start = r.phys.checked_mul(bs)?;
            Some(start..start.checked_add(r.len.checked_mul(bs)?)?)
        })
        .collect()
}

/// What `--unallocated` needs of an ext2/3/4 volume ([`crate::fs::ext4_free`]): the geometry,
/// every group's descriptor, and the journal's extents (start block, blocks).
pub(crate) struct Layout {
    pub sb: Super,
    pub groups: Vec<sb::Desc>,
    pub journal: Vec<(u64, u64)>,
}

/// Read the [`Layout`] of the ext2/3/4 filesystem on `src` (on-disk state: the free-space
/// scan looks at what the blocks hold, not at a replayed journal).
pub(crate) fn layout(src: SharedSource) -> Result<Layout, FsError> {
    let (sb, _) = Super::find(src.as_ref())?;
    let groups = sb.descriptors(src.as_ref())?;
    let ctx = Ctx {
        inode_tables: groups.iter().map(|d| d.inode_table).collect(),
        sb,
        src,
        warnings: Warnings::default(),
    };
    let mut journal = Vec::new();
    if ctx.sb.journal_inum != 0 {
        let ino = Inode::read(&ctx, ctx.sb.journal_inum)?;
        journal = ino
            .runs(&ctx)?
            .into_iter()
            .map(|r| (r.phys, r.len))
            .collect();
    }
    Ok(Layout {
        sb: ctx.sb,
        groups,
        journal,
    })
}

impl Filesystem for Ext4Fs {
    fn name(&self) -> &'static str {
        "ext4"
    }

    fn open_problems(&self) -> Vec<OpenProblem> {
        self.1.clone()
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        match &self.0 {
            Inner::Native(ctx) => Ok(Box::new(Ext4Reader {
                ctx: ctx.clone(),
                dirs: RefCell::new(HashMap::new()),
            })),
            Inner::View(v) => v.reader(),
        }
    }

    fn unreached(&self, reached: &(dyn Fn(u64) -> bool + Sync)) -> Option<super::Swept> {
        match &self.0 {
            Inner::Native(ctx) => Some(sweep::sweep(ctx, reached)),
            // ext4-view has no access to the inode tables.
            Inner::View(_) => None,
        }
    }

    fn warnings(&self) -> Vec<String> {
        match &self.0 {
            Inner::Native(ctx) => ctx.warnings.list(),
            Inner::View(_) => Vec::new(),
        }
    }
}

/// The live entries of a directory ([`Ext4Reader::entries`]) and one error per block that
/// was refused or read in part.
#[derive(Default)]
struct Listing {
    entries: Vec<dir::RawEntry>,
    damaged: Vec<FsError>,
}

/// `e` with directory `path` added to its context (the reader names directories by inode).
fn at_path(e: FsError, path: &[u8]) -> FsError {
    match e {
        FsError::Corrupt {
            context,
            message,
            at,
        } => FsError::Corrupt {
            context: format!("{context} ({})", lossy(path)),
            message,
            at,
        },
        FsError::Io {
            context,
            message,
            at,
        } => FsError::Io {
            context: format!("{context} ({})", lossy(path)),
            message,
            at,
        },
        other => other,
    }
}

/// Per-thread reader: remembers the inode number of every directory it listed, so a walk
/// resolves each directory path once.
struct Ext4Reader {
    ctx: Arc<Ctx>,
    dirs: RefCell<HashMap<Vec<u8>, u64>>,
}

impl Ext4Reader {
    /// The inode number of directory `path` (absolute, no symlinks followed).
    fn resolve(&self, path: &[u8]) -> Result<u64, FsError> {
        let trimmed: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        if trimmed.is_empty() {
            return Ok(ROOT_INO);
        }
        if let Some(&ino) = self.dirs.borrow().get(path) {
            return Ok(ino);
        }
        let mut ino = ROOT_INO;
        for comp in trimmed {
            let dir = Inode::read(&self.ctx, ino)?;
            if dir.kind() != Some(EntryKind::Dir) {
                return Err(FsError::Other {
                    context: format!("directory {}", lossy(path)),
                    message: "a path component is not a directory".into(),
                    at: Default::default(),
                });
            }
            ino = self.lookup(&dir, comp, &format!("directory {}", lossy(path)))?;
        }
        Ok(ino)
    }

    /// The live entries of directory inode `dir`, and one error for each block (or inline
    /// area) that was refused or read only in part: a damaged block loses its own entries,
    /// not the directory's. The outer error is for what loses the whole directory (its extent
    /// tree, its size).
    fn entries(&self, dir: &Inode) -> Result<Listing, FsError> {
        let ctx = &self.ctx;
        let what = || format!("ext4 directory inode {}", dir.ino);
        let info = dir::DirInfo {
            indexed: dir.flags & htree::INDEX_FL != 0,
            seed: dir.csum_seed,
            max_levels: if ctx.sb.incompat & incompat::LARGEDIR != 0 {
                3
            } else {
                2
            },
            filetype: ctx.sb.incompat & incompat::FILETYPE != 0,
        };
        let mut l = Listing::default();
        if dir.is_inline() {
            // The parent's inode number, then entries in the rest of i_block and in
            // system.data (both covered by the inode's checksum, none of their own).
            for (area, bytes) in [
                ("i_block", dir.iblock.get(4..)),
                ("system.data", dir.system_data()),
            ] {
                if let Some(bytes) = bytes
                    && let Err(at) = dir::parse(bytes, info.filetype, &mut l.entries)
                {
                    l.damaged.push(corrupt(
                        &what(),
                        format!("inline entries ({area}) damaged at byte {at}: entries after it are lost"),
                    ));
                }
            }
            return Ok(l);
        }
        if dir.size > MAX_DIR_BYTES {
            return Err(corrupt(
                &what(),
                format!("{} bytes, larger than {MAX_DIR_BYTES}", dir.size),
            ));
        }
        let bs = ctx.sb.block_size;
        let mut block = vec![0u8; bs as usize];
        let blocks = dir.size.div_ceil(bs);
        for run in dir.runs(ctx)? {
            if run.uninit {
                // The kernel reads an unwritten extent as zeros, which no directory block is;
                // e2fsck clears the flag and keeps the blocks. Read them as e2fsck keeps them.
                ctx.warnings.add(format!(
                    "{}: directory blocks {}..{} are in an extent marked unwritten; read as \
                     written, as e2fsck keeps them",
                    what(),
                    run.logical,
                    run.logical.saturating_add(run.len)
                ));
            }
            for i in 0..run.len {
                let logical = run.logical.saturating_add(i);
                if logical >= blocks {
                    break;
                }
                let b = run.phys.saturating_add(i);
                let at = || format!("block {b} (directory block {logical})");
                if let Err(e) = ctx.src.read_at(b.saturating_mul(bs), &mut block) {
                    l.damaged.push(FsError::Io {
                        context: format!("{} {}", what(), at()),
                        message: format!("{e}: its entries are not listed"),
                        at: At {
                            block: Some(b),
                            ..At::default()
                        },
                    });
                    continue;
                }
                if let Err(e) = dir::read_block(&block, logical, &info, &mut l.entries) {
                    let lost = if e.loses_block() {
                        ": its entries are not listed"
                    } else {
                        ""
                    };
                    l.damaged
                        .push(corrupt(&what(), format!("{}: {e}{lost}", at())).with_block(b));
                }
            }
        }
        Ok(l)
    }

    /// The inode number of `name` in directory `dir` (`shown` names the directory in errors).
    fn lookup(&self, dir: &Inode, name: &[u8], shown: &str) -> Result<u64, FsError> {
        let l = self.entries(dir)?;
        if let Some(e) = l.entries.iter().find(|e| e.name == name) {
            return Ok(u64::from(e.ino));
        }
        Err(FsError::Other {
            context: shown.to_string(),
            at: At::default(),
            message: match l.damaged.first() {
                None => "no such file or directory".into(),
                Some(first) => format!(
                    "not found in the readable blocks of its directory; {} could not be read ({first})",
                    l.damaged.len()
                ),
            },
        })
    }

    fn entry(&self, path: Vec<u8>, ino: u64) -> Result<Entry, FsError> {
        let inode = Inode::read(&self.ctx, ino)?;
        let kind = inode.kind().ok_or_else(|| {
            corrupt(
                &format!("ext4 inode {ino} of {}", lossy(&path)),
                format!(
                    "mode {:#o} has no file type: the entry points to a free or damaged inode",
                    inode.mode
                ),
            )
        })?;
        Ok(Entry {
            path,
            kind,
            mode: u32::from(inode.mode & 0o7777),
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            mtime: inode.mtime,
            ino,
            phys: inode.first_byte(self.ctx.sb.block_size),
        })
    }

    /// A regular file's content, readable from any offset.
    fn content<'a>(&'a self, e: &Entry) -> Result<Box<dyn SeekRead + 'a>, FsError> {
        let inode = self.inode_of(e)?;
        let what = || format!("file {}", e.display_path());
        if inode.flags & ENCRYPT_FL != 0 {
            return Err(incompatible(
                &what(),
                "encrypted with fscrypt: the content cannot be read without its key",
            ));
        }
        if inode.is_inline() {
            return Ok(Box::new(std::io::Cursor::new(inode.inline_data()?)));
        }
        let runs = inode.runs(&self.ctx).map_err(|err| match err {
            FsError::Corrupt {
                context,
                message,
                at,
            } => FsError::Corrupt {
                context: format!("{context} ({})", e.display_path()),
                message,
                at,
            },
            other => other,
        })?;
        Ok(Box::new(Content {
            ctx: &self.ctx,
            runs,
            size: inode.size,
            pos: 0,
            idx: 0,
        }))
    }

    /// The inode behind `e` (by number; by path for an entry made elsewhere).
    fn inode_of(&self, e: &Entry) -> Result<Inode, FsError> {
        let ino = if e.ino != 0 {
            e.ino
        } else {
            let (parent, name) = match e.path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&e.path[..i.max(1)], &e.path[i + 1..]),
                None => (&b"/"[..], &e.path[..]),
            };
            let dir = Inode::read(&self.ctx, self.resolve(parent)?)?;
            self.lookup(&dir, name, &e.display_path())?
        };
        Inode::read(&self.ctx, ino)
    }
}

impl FsReader for Ext4Reader {
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
        if dir.kind() != Some(EntryKind::Dir) {
            return Err(FsError::Other {
                context: format!("directory {}", lossy(path)),
                message: "not a directory".into(),
                at: Default::default(),
            });
        }
        let named = |e| at_path(e, path);
        let Listing {
            entries: raw,
            damaged,
        } = self.entries(&dir).map_err(named)?;
        let mut out = Vec::with_capacity(raw.len().saturating_add(damaged.len()));
        out.extend(damaged.into_iter().map(|e| Err(named(e))));
        let mut dirs = self.dirs.borrow_mut();
        // Every entry's inode is read next, one after the other: name them all to a remote
        // source first (directories spread their inodes over the inode tables).
        for r in &raw {
            if let Some(at) = Inode::location(&self.ctx, u64::from(r.ino)) {
                self.ctx.src.prefetch(at, self.ctx.sb.inode_size);
            }
        }
        for r in raw {
            let child = super::join(path, &r.name);
            let e = self.entry(child, u64::from(r.ino));
            if let Ok(e) = &e
                && e.kind == EntryKind::Dir
            {
                if dirs.len() >= MAX_CACHED_DIRS {
                    dirs.clear();
                }
                dirs.insert(e.path.clone(), e.ino);
            }
            out.push(e);
        }
        Ok(out)
    }

    fn prefetch_dir(&self, e: &Entry) {
        if e.phys != 0 {
            self.ctx.src.prefetch(e.phys, self.ctx.sb.block_size);
        }
    }

    fn prefetch_file(&self, e: &Entry) {
        if let Some(at) = Inode::location(&self.ctx, e.ino) {
            self.ctx.src.prefetch(at, self.ctx.sb.inode_size);
        }
        if e.phys != 0 {
            self.ctx.src.prefetch(e.phys, e.size);
        }
    }

    fn open_file<'a>(&'a self, e: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        Ok(self.content(e)?)
    }

    fn open_seekable<'a>(&'a self, e: &Entry) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        self.content(e).map(Some)
    }

    fn data_ranges(&self, e: &Entry) -> Result<Option<Vec<Range<u64>>>, FsError> {
        let inode = self.inode_of(e)?;
        if inode.is_inline() || inode.flags & ENCRYPT_FL != 0 {
            return Ok(None);
        }
        let bs = self.ctx.sb.block_size;
        Ok(Some(
            inode
                .runs(&self.ctx)?
                .iter()
                .filter(|r| !r.uninit)
                .map(|r| {
                    let start = r.logical.saturating_mul(bs).min(inode.size);
                    start
                        ..r.logical
                            .saturating_add(r.len)
                            .saturating_mul(bs)
                            .min(inode.size)
                })
                .filter(|r| !r.is_empty())
                .collect(),
        ))
    }

    fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
        let inode = self.inode_of(e)?;
        if inode.is_fast_symlink(self.ctx.sb.block_size) {
            return Ok(inode.iblock[..inode.size as usize].to_vec());
        }
        if inode.size > MAX_LINK {
            return Err(corrupt(
                &format!("symlink {}", e.display_path()),
                format!("target of {} bytes", inode.size),
            ));
        }
        let mut r = self.open_file(e)?;
        let mut out = Vec::with_capacity(inode.size as usize);
        r.read_to_end(&mut out).map_err(|err| FsError::Io {
            context: format!("symlink {}", e.display_path()),
            message: err.to_string(),
            at: Default::default(),
        })?;
        Ok(out)
    }
}

/// A file's content, read run by run straight into the caller's buffer.
struct Content<'a> {
    ctx: &'a Ctx,
    runs: Vec<Run>,
    size: u64,
    pos: u64,
    /// First run that may hold `pos`.
    idx: usize,
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let bs = self.ctx.sb.block_size;
        let want = (buf.len() as u64).min(self.size - self.pos);
        let lblk = self.pos / bs;
        while self
            .runs
            .get(self.idx)
            .is_some_and(|r| r.logical + r.len <= lblk)
        {
            self.idx += 1;
        }
        let n = match self.runs.get(self.idx) {
            Some(r) if r.logical <= lblk => {
                let n = want.min((r.logical + r.len) * bs - self.pos);
                let dst = &mut buf[..n as usize];
                if r.uninit {
                    dst.fill(0);
                } else {
                    let at = r.phys * bs + (self.pos - r.logical * bs);
                    self.ctx
                        .src
                        .read_at(at, dst)
                        .map_err(|e| std::io::Error::other(format!("byte {at}: {e}")))?;
                }
                n
            }
            next => {
                // A hole: zeros up to the next run.
                let end = next.map_or(u64::MAX, |r| r.logical.saturating_mul(bs));
                let n = want.min(end - self.pos);
                buf[..n as usize].fill(0);
                n
            }
        };
        self.pos += n;
        Ok(n as usize)
    }
}

impl Seek for Content<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| std::io::Error::other("seek before the start of the file"))?;
        self.pos = pos;
        // The first run that does not end before the new position (runs are in file order).
        let lblk = pos / self.ctx.sb.block_size;
        self.idx = self
            .runs
            .partition_point(|r| r.logical.saturating_add(r.len) <= lblk);
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads after seeks (back, forward, into holes, past the end) give the bytes a
    /// sequential read gives at those offsets: a fragmented file (24 extents with holes
    /// between them) and a sparse one.
    #[test]
    fn seeks_land_where_a_sequential_read_says() {
        let img = testimg::build("ext4");
        let (_fs, r) = testimg::open(img.bytes()).unwrap();
        for name in [&b"frag"[..], b"sparse"] {
            let e = testimg::entry(r.as_ref(), b"/var", name);
            let whole = testimg::read(r.as_ref(), &e).unwrap();
            let mut f = r.open_seekable(&e).unwrap().unwrap();
            let len = whole.len() as u64;
            for at in [
                len - 4,
                0,
                3 * 1024 + 2,
                1000,
                len / 2,
                7,
                len - 1,
                len + 10,
            ] {
                assert_eq!(f.seek(SeekFrom::Start(at)).unwrap(), at);
                let mut got = vec![0u8; 600];
                let mut n = 0;
                while n < got.len() {
                    match f.read(&mut got[n..]).unwrap() {
                        0 => break,
                        k => n += k,
                    }
                }
                let from = usize::try_from(at.min(len)).unwrap();
                let want = &whole[from..(from + 600).min(whole.len())];
                assert_eq!(&got[..n], want, "{} at {at}", String::from_utf8_lossy(name));
            }
            assert_eq!(f.seek(SeekFrom::End(-4)).unwrap(), len - 4);
            assert!(f.seek(SeekFrom::Current(-(len as i64) - 1)).is_err());
        }
    }

    #[test]
    fn crc32c_matches_the_kernel_convention() {
        // Values of the kernel's crc32c(seed, le32(1) le32(2)), as ext4-view computes them.
        let data = [1u8, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(crc32c(!0, &[&data]), 0x858c_13d3);
        assert_eq!(crc32c(123, &[&data[..3], &data[3..]]), 0xfc52_7a0a);
    }
}
