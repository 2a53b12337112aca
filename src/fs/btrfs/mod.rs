//! Read-only btrfs reader: the Fedora and openSUSE root filesystem. `single`, `DUP` and
//! `RAID1*` profiles, on one device or several ([`BtrfsFs::open_devices`], grouped by
//! [`devices::group`]); every subvolume and snapshot; zlib, LZO and zstd compressed extents; the
//! files of the log tree ([`log`], not replayed).
//!
//! Layout: [`superblock`] (primary or mirror, features, `sys_chunk_array`), [`chunk`]
//! (logical → physical), [`tree`] (checked tree blocks, bounded range walks), [`items`] (item
//! layouts), [`file`] (file content from extents) and [`compress`] (zlib, LZO, zstd).
//!
//! Paths: the volume is read as the booted system sees it. `/` is the subvolume whose own
//! `/etc/fstab` mounts it at `/` (`subvol=`, `subvolid=`, or the default subvolume), else the
//! default subvolume when it is not 5, else the top level; the other btrfs mounts of that fstab
//! are applied (Fedora: `root` at `/`, `home` at `/home`; openSUSE: `@/.snapshots/1/snapshot`
//! at `/`, `@/home` at `/home`). A mounted subvolume is listed only where it is mounted. The top
//! level, when it is not `/`, is left to the sweep as `<btrfs subvolume 5>/...`, so subvolumes
//! mounted nowhere are still read. Without fstab or default subvolume the view is the top
//! level's, what `mount -o subvolid=5` shows. A subvolume that no directory links (its
//! `ROOT_REF` is gone) is found by the sweep and listed as `<btrfs subvolume ID>/...`. A
//! subvolume entry that a snapshot copied without the subvolume (no `ROOT_REF` from that
//! snapshot) is an empty directory, as the kernel shows it.
//!
//! Inode numbers are per subvolume in btrfs; [`Entry::ino`] packs the subvolume's index in
//! bits 48.. and the objectid below, so it is unique on the volume.
//!
//! Not read, each said so: devices of the filesystem the target lacks (an open problem naming
//! their devids; what is on the others is read), striped profiles, the log tree's directory
//! changes (its files are read as `<btrfs log tree ...>` entries), encrypted or otherwise
//! encoded extents. Checksums of tree blocks and of file data are verified (crc32c, sha256;
//! xxhash64 and blake2b volumes are reported as not verified): a data sector that fails is read
//! from another copy of its chunk, or is an error on the file ([`datasum`]).

mod chunk;
mod compress;
mod csum;
mod datasum;
pub mod devices;
mod file;
mod fstab;
mod items;
mod log;
mod superblock;
mod tree;

pub(crate) use crate::bytes::{le16, le32, le64};
use crate::fs::{Entry, EntryKind, Filesystem, FsError, FsReader, OpenProblem, SeekRead, join};
use crate::source::SharedSource;
use items::{DirEntry, Inode, RootItem};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, OnceLock};
use tree::Trees;

pub(crate) const INODE_ITEM_KEY: u8 = 1;
pub(crate) const DIR_ITEM_KEY: u8 = 84;
pub(crate) const DIR_INDEX_KEY: u8 = 96;
pub(crate) const EXTENT_DATA_KEY: u8 = 108;
pub(crate) const ROOT_ITEM_KEY: u8 = 132;
pub(crate) const ROOT_REF_KEY: u8 = 156;
pub(crate) const CHUNK_ITEM_KEY: u8 = 228;
pub(crate) const DEV_ITEM_KEY: u8 = 216;
/// The top-level subvolume.
const FS_TREE: u64 = 5;
/// The root tree's directory, which holds the `default` entry.
const ROOT_TREE_DIR: u64 = 6;
/// Most subvolumes whose `/etc/fstab` is read to find the root, and the longest fstab read.
const MAX_FSTABS: usize = 1024;
const MAX_FSTAB: u64 = 1 << 20;
/// The first and last ids of subvolumes.
const FIRST_FREE: u64 = 256;
const LAST_FREE: u64 = u64::MAX - 255;
/// Most subvolumes read.
const MAX_SUBVOLS: usize = 1 << 15;
/// Most entries of one directory.
const MAX_DIR_ENTRIES: usize = 4_000_000;
/// Most items of the chunk tree and of the root tree.
const MAX_TREE_ITEMS: usize = 4_000_000;
/// Most path components resolved in one lookup, and paths remembered per reader.
const MAX_PATH_COMPONENTS: usize = 4096;
const MAX_CACHED_PATHS: usize = 1 << 18;
/// Longest symbolic link target read.
const MAX_LINK: u64 = 4096;
/// The subvolume index of [`Entry::ino`] that names a file of the log tree.
const LOG_IDX: usize = MAX_SUBVOLS;
/// Bits of [`Entry::ino`] below the subvolume index.
const INO_SHIFT: u32 = 48;

/// A btrfs key: (objectid, type, offset), ordered in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub objectid: u64,
    pub ty: u8,
    pub offset: u64,
}

impl Key {
    /// On-disk size.
    pub const LEN: usize = 17;

    /// The key at `at` in `b`.
    pub fn parse(b: &[u8], at: usize) -> Option<Key> {
        Some(Key {
            objectid: le64(b, at)?,
            ty: *b.get(at.checked_add(8)?)?,
            offset: le64(b, at.checked_add(9)?)?,
        })
    }

    fn new(objectid: u64, ty: u8, offset: u64) -> Key {
        Key {
            objectid,
            ty,
            offset,
        }
    }
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

pub(crate) fn io(context: &str, offset: u64, e: crate::source::SourceError) -> FsError {
    FsError::Io {
        context: context.to_string(),
        message: e.to_string(),
        at: Default::default(),
    }
    .with_offset(offset)
}

/// One subvolume (or the top-level tree).
struct Subvol {
    id: u64,
    root: RootItem,
}

/// What every reader shares.
struct Inner {
    trees: Trees,
    /// The regular files of the log tree (not replayed), listed by the sweep; their
    /// [`Entry::ino`] is [`pack`]`(`[`LOG_IDX`]`, index)`.
    logs: Vec<log::LogFile>,
    /// Subvolumes sorted by id; [`Entry::ino`] carries the index into it.
    subvols: Vec<Subvol>,
    /// (parent subvolume, child subvolume) for each `ROOT_REF`.
    refs: HashSet<(u64, u64)>,
    /// The top-level view: subvolume 5 at `/`, nothing mounted.
    plain: Layout,
    /// The booted system's view, once chosen.
    layout: OnceLock<Layout>,
}

/// Which subvolume is `/` and which are mounted where.
#[derive(Clone, Debug, Default)]
struct Layout {
    /// Index of the subvolume at `/`.
    root: usize,
    /// Mount point (no leading or trailing `/`) → index of the subvolume mounted there.
    mounts: HashMap<Vec<u8>, usize>,
    /// The root and every subvolume mounted: listed only there, not where a directory links
    /// them.
    mounted: HashSet<usize>,
}

/// A btrfs filesystem on a volume.
pub struct BtrfsFs {
    inner: Arc<Inner>,
    problems: Vec<OpenProblem>,
    notes: Vec<String>,
}

impl BtrfsFs {
    /// Read the superblock, the chunk tree and the root tree.
    ///
    /// Fails when the superblock, the chunk tree's root or the root tree's root cannot be read,
    /// or the top-level subvolume is missing; damage further down is reported per directory or
    /// file, and what the reader could not take into account at all is in
    /// [`Filesystem::open_problems`].
    pub fn open(src: SharedSource) -> Result<BtrfsFs, FsError> {
        BtrfsFs::open_devices(src, Vec::new())
    }

    /// [`BtrfsFs::open`] on a filesystem of several devices: `src` and the `others` the
    /// target holds (see [`devices::group`]). Each device is matched by the fsid and devid of
    /// its own superblock; a chunk is read from the first copy on a device at hand, and a
    /// device the filesystem has but the target lacks is an open problem naming its devid.
    pub fn open_devices(src: SharedSource, others: Vec<SharedSource>) -> Result<BtrfsFs, FsError> {
        let (sb, note) = superblock::read(src.as_ref())?;
        let mut problems = Vec::new();
        let mut notes: Vec<String> = note.into_iter().collect();
        let mut devs: std::collections::BTreeMap<u64, SharedSource> =
            std::collections::BTreeMap::from([(sb.devid, src.clone())]);
        for o in others {
            match superblock::read(o.as_ref()) {
                Ok((osb, _)) if osb.fsid == sb.fsid && !devs.contains_key(&osb.devid) => {
                    devs.insert(osb.devid, o);
                }
                Ok((osb, _)) => notes.push(format!(
                    "btrfs: {} is not another device of this filesystem (devid {}), not used",
                    o.describe(),
                    osb.devid
                )),
                Err(e) => notes.push(format!(
                    "btrfs: {} has no usable superblock ({e}), not used",
                    o.describe()
                )),
            }
        }
        let present = |d: u64| devs.contains_key(&d);
        let mut chunks = chunk::ChunkMap::default();
        for (key, item) in &sb.sys_chunks {
            chunks.insert(chunk::parse_chunk(key, item, &present)?)?;
        }
        let here = devs.len();
        let mut trees = Trees::new(devs.clone(), sb.clone(), chunks);
        let found = trees.range(
            sb.chunk_root,
            sb.chunk_root_level,
            Key::new(0, 0, 0),
            Key::new(u64::MAX, u8::MAX, u64::MAX),
            MAX_TREE_ITEMS,
        )?;
        for e in found.errors {
            problems.push(OpenProblem {
                message: format!(
                    "btrfs chunk tree partly unreadable, data in the chunks it lost is not read: {e}"
                ),
                raw: Vec::new(),
            });
        }
        let mut map = trees.chunks.clone();
        let mut known_devs = Vec::new();
        for (key, _) in &found.items {
            if key.ty == DEV_ITEM_KEY && key.objectid == 1 && known_devs.len() < 1 << 16 {
                known_devs.push(key.offset);
            }
        }
        for (key, item) in found.items.iter().filter(|(k, _)| k.ty == CHUNK_ITEM_KEY) {
            match chunk::parse_chunk(key, item, &present).and_then(|c| map.insert(c)) {
                Ok(()) => {}
                Err(e) => problems.push(OpenProblem {
                    message: format!("btrfs chunk not used: {e}"),
                    raw: Vec::new(),
                }),
            }
        }
        trees.chunks = map;
        let missing: Vec<String> = known_devs
            .iter()
            .filter(|d| !devs.contains_key(d))
            .map(u64::to_string)
            .collect();
        let (n, why) = trees.chunks.unreadable();
        if sb.num_devices > 1 && (!missing.is_empty() || here as u64 != sb.num_devices) {
            problems.push(OpenProblem {
                message: format!(
                    "btrfs filesystem spans {} devices; {here} found (devid {}), missing devid {}: {n} chunks are not read{}",
                    sb.num_devices,
                    devs.keys().map(u64::to_string).collect::<Vec<_>>().join(", "),
                    if missing.is_empty() { "unknown".to_string() } else { missing.join(", ") },
                    why.map(|w| format!(" ({w})")).unwrap_or_default()
                ),
                raw: Vec::new(),
            });
        } else if let (n @ 1.., Some(why)) = (n, why) {
            problems.push(OpenProblem {
                message: format!("btrfs: {n} chunks cannot be read: {why}"),
                raw: Vec::new(),
            });
        }
        if sb.num_devices > 1 && problems.is_empty() {
            notes.push(format!(
                "btrfs filesystem of {} devices, all read (devid {})",
                sb.num_devices,
                devs.keys()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let found = trees.range(
            sb.root,
            sb.root_level,
            Key::new(0, 0, 0),
            Key::new(u64::MAX, u8::MAX, u64::MAX),
            MAX_TREE_ITEMS,
        )?;
        for e in found.errors {
            problems.push(OpenProblem {
                message: format!(
                    "btrfs root tree partly unreadable, subvolumes it lost are not read: {e}"
                ),
                raw: Vec::new(),
            });
        }
        let mut roots: HashMap<u64, RootItem> = HashMap::new();
        let mut refs = HashSet::new();
        let mut default_id = FS_TREE;
        for (key, data) in &found.items {
            let id = key.objectid;
            if id == ROOT_TREE_DIR && key.ty == DIR_ITEM_KEY {
                if let Some(d) = items::dir_entries(data)
                    .into_iter()
                    .flatten()
                    .find(|d| d.name == b"default")
                {
                    default_id = d.location.objectid;
                }
                continue;
            }
            if id == datasum::CSUM_TREE && key.ty == ROOT_ITEM_KEY {
                match RootItem::parse(data).filter(|r| r.level < tree::MAX_LEVEL) {
                    Some(r) => trees.csum_root = Some((r.bytenr, r.level)),
                    None => problems.push(OpenProblem {
                        message:
                            "btrfs checksum tree: malformed ROOT_ITEM; file data is read unverified"
                                .into(),
                        raw: Vec::new(),
                    }),
                }
                continue;
            }
            let subvol = id == FS_TREE || (FIRST_FREE..=LAST_FREE).contains(&id);
            if key.ty == ROOT_ITEM_KEY && subvol {
                match RootItem::parse(data) {
                    Some(r) if r.refs == 0 && id != FS_TREE => {}
                    Some(r) if r.level < tree::MAX_LEVEL => {
                        roots.insert(id, r);
                    }
                    _ => problems.push(OpenProblem {
                        message: format!("btrfs subvolume {id}: malformed ROOT_ITEM, not read"),
                        raw: Vec::new(),
                    }),
                }
            } else if key.ty == ROOT_REF_KEY && items::root_ref_ok(data) {
                refs.insert((key.objectid, key.offset));
            }
        }
        if !roots.contains_key(&FS_TREE) {
            return Err(corrupt(
                "btrfs root tree",
                "no top-level subvolume (tree 5)",
            ));
        }
        if roots.len() > MAX_SUBVOLS {
            return Err(corrupt(
                "btrfs root tree",
                format!("{} subvolumes, more than amiscan reads", roots.len()),
            ));
        }
        let mut subvols: Vec<Subvol> = roots
            .into_iter()
            .map(|(id, root)| Subvol { id, root })
            .collect();
        subvols.sort_unstable_by_key(|s| s.id);
        let mut logs = Vec::new();
        if sb.log_root != 0 {
            let log = if sb.log_root_level < tree::MAX_LEVEL {
                log::read(&trees, sb.log_root, sb.log_root_level)
            } else {
                log::Log {
                    errors: vec![format!("level {} out of range", sb.log_root_level)],
                    ..Default::default()
                }
            };
            let unread = if log.errors.is_empty() {
                String::new()
            } else {
                format!("; parts not read: {}", log.errors.join("; "))
            };
            problems.push(OpenProblem {
                message: format!(
                    "btrfs log tree at logical {} not replayed (the volume was not unmounted cleanly): {} files fsynced after the last commit, in {} subvolume logs, are read from it as <btrfs log tree ...> entries; renames, deletions and directory changes it holds are not applied{unread}",
                    sb.log_root,
                    log.files.len(),
                    log.trees
                ),
                raw: Vec::new(),
            });
            logs = log.files;
        }
        if !matches!(
            sb.csum,
            superblock::CsumType::Crc32c | superblock::CsumType::Sha256
        ) {
            notes.push(format!(
                "btrfs tree block and data checksums ({}) not verified",
                sb.csum.name()
            ));
        }
        let top = subvols
            .binary_search_by_key(&FS_TREE, |s| s.id)
            .map_err(|_| corrupt("btrfs root tree", "no top-level subvolume (tree 5)"))?;
        let plain = Layout {
            root: top,
            ..Layout::default()
        };
        let inner = Arc::new(Inner {
            trees,
            logs,
            subvols,
            refs,
            plain,
            layout: OnceLock::new(),
        });
        let reader = BtrfsReader {
            inner: inner.clone(),
            paths: RefCell::new(HashMap::new()),
            extents: RefCell::new(None),
        };
        let layout = reader.choose_layout(&sb.fsid, default_id, &mut notes);
        drop(reader);
        let _ = inner.layout.set(layout);
        Ok(BtrfsFs {
            inner,
            problems,
            notes,
        })
    }
}

impl Filesystem for BtrfsFs {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        Ok(Box::new(BtrfsReader {
            inner: self.inner.clone(),
            paths: RefCell::new(HashMap::new()),
            extents: RefCell::new(None),
        }))
    }

    fn open_problems(&self) -> Vec<OpenProblem> {
        self.problems.clone()
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.notes.clone();
        w.extend(self.inner.trees.warnings());
        w
    }

    /// Subvolumes no directory links: each is a directory `<btrfs subvolume ID>` to list.
    fn unreached(&self, reached: &(dyn Fn(u64) -> bool + Sync)) -> Option<crate::fs::Swept> {
        let mut out = Vec::new();
        let root = self.inner.layout().root;
        for (idx, s) in self.inner.subvols.iter().enumerate() {
            if idx == root {
                continue;
            }
            let ino = match pack(idx, s.root.root_dirid) {
                Ok(ino) => ino,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            if reached(ino) {
                continue;
            }
            let r = self
                .inner
                .reader_inode(idx, s.root.root_dirid)
                .map(|inode| {
                    entry(
                        format!("<btrfs subvolume {}>", s.id).into_bytes(),
                        &inode,
                        ino,
                    )
                });
            out.push(r);
        }
        for (k, f) in self.inner.logs.iter().enumerate() {
            let mut path = format!(
                "<btrfs log tree, subvolume {}, inode {}>",
                f.subvol, f.objectid
            )
            .into_bytes();
            if let Some(name) = &f.name {
                path.push(b'/');
                path.extend_from_slice(name);
            }
            out.push(pack(LOG_IDX, k as u64).map(|ino| entry(path, &f.inode, ino)));
        }
        Some(Ok(out))
    }
}

/// Where a path leads.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// Inode `objectid` of the subvolume at index `idx`.
    Node { idx: usize, objectid: u64 },
    /// The empty directory a snapshot has where its source had a subvolume.
    Stub,
}

fn pack(idx: usize, objectid: u64) -> Result<u64, FsError> {
    if objectid >> INO_SHIFT != 0 {
        return Err(incompatible(
            format!("btrfs inode {objectid}"),
            "inode number too large for amiscan's inode numbering",
        ));
    }
    Ok(((idx as u64) << INO_SHIFT) | objectid)
}

fn unpack(ino: u64) -> Target {
    Target::Node {
        idx: usize::try_from(ino >> INO_SHIFT).unwrap_or(usize::MAX),
        objectid: ino & ((1 << INO_SHIFT) - 1),
    }
}

fn kind_of(mode: u32) -> EntryKind {
    match mode & 0o170_000 {
        0o100_000 => EntryKind::File,
        0o040_000 => EntryKind::Dir,
        0o120_000 => EntryKind::Symlink,
        _ => EntryKind::Special,
    }
}

fn entry(path: Vec<u8>, inode: &Inode, ino: u64) -> Entry {
    Entry {
        path,
        kind: kind_of(inode.mode),
        mode: inode.mode & 0o7777,
        uid: inode.uid,
        gid: inode.gid,
        size: inode.size,
        mtime: inode.mtime,
        ino,
        phys: 0,
    }
}

impl Inner {
    fn layout(&self) -> &Layout {
        self.layout.get().unwrap_or(&self.plain)
    }

    /// The root directory of subvolume `idx`.
    fn subvol_root(&self, idx: usize) -> Target {
        Target::Node {
            idx,
            objectid: self.subvols.get(idx).map_or(0, |s| s.root.root_dirid),
        }
    }

    fn subvol(&self, idx: usize) -> Result<&Subvol, FsError> {
        self.subvols
            .get(idx)
            .ok_or_else(|| corrupt("btrfs inode", format!("no subvolume at index {idx}")))
    }

    /// The items of subvolume `idx` from `min` to `max`; errors in the subtree are returned
    /// with them.
    fn items(&self, idx: usize, min: Key, max: Key, limit: usize) -> Result<tree::Found, FsError> {
        let s = self.subvol(idx)?;
        self.trees
            .range(s.root.bytenr, s.root.level, min, max, limit)
    }

    /// What reading file `objectid` of subvolume `idx` needs: its `INODE_ITEM` (flags) and
    /// `EXTENT_DATA` items, in one query (the `INODE_REF` and xattr items between come along).
    fn file_items(&self, idx: usize, objectid: u64) -> Result<tree::Found, FsError> {
        self.items(
            idx,
            Key::new(objectid, INODE_ITEM_KEY, 0),
            Key::new(objectid, EXTENT_DATA_KEY, u64::MAX),
            file::MAX_EXTENTS.saturating_add(1 << 12),
        )
    }

    fn reader_inode(&self, idx: usize, objectid: u64) -> Result<Inode, FsError> {
        let k = Key::new(objectid, INODE_ITEM_KEY, 0);
        let found = self.items(idx, k, k, 1)?;
        let id = self.subvol(idx)?.id;
        if let Some(e) = found.errors.into_iter().next() {
            return Err(e.with_inode(objectid));
        }
        let (_, data) = found.items.first().ok_or_else(|| {
            corrupt(
                format!("btrfs subvolume {id} inode {objectid}"),
                "no INODE_ITEM",
            )
            .with_inode(objectid)
        })?;
        Inode::parse(data).ok_or_else(|| {
            corrupt(
                format!("btrfs subvolume {id} inode {objectid}"),
                "malformed INODE_ITEM",
            )
            .with_inode(objectid)
        })
    }

    /// The raw entries of directory `objectid` of subvolume `idx`, and errors for the parts of
    /// it that could not be read.
    fn dir_entries(
        &self,
        idx: usize,
        objectid: u64,
    ) -> Result<(Vec<DirEntry>, Vec<FsError>), FsError> {
        let found = self.items(
            idx,
            Key::new(objectid, DIR_INDEX_KEY, 0),
            Key::new(objectid, DIR_INDEX_KEY, u64::MAX),
            MAX_DIR_ENTRIES,
        )?;
        let id = self.subvol(idx)?.id;
        let mut errors: Vec<FsError> = found
            .errors
            .into_iter()
            .map(|e| e.with_inode(objectid))
            .collect();
        let mut out = Vec::with_capacity(found.items.len());
        for (key, data) in found.items {
            match items::dir_entries(&data) {
                Some(v) => out.extend(v),
                None => errors.push(
                    corrupt(
                        format!("btrfs subvolume {id} directory {objectid}"),
                        format!("malformed DIR_INDEX item {}", key.offset),
                    )
                    .with_inode(objectid),
                ),
            }
        }
        Ok((out, errors))
    }

    /// Where directory entry `d` of subvolume `idx` leads.
    fn follow(&self, idx: usize, d: &DirEntry) -> Result<Target, FsError> {
        let parent = self.subvol(idx)?.id;
        match d.location.ty {
            INODE_ITEM_KEY => Ok(Target::Node {
                idx,
                objectid: d.location.objectid,
            }),
            ROOT_ITEM_KEY => {
                let child = d.location.objectid;
                if !self.refs.contains(&(parent, child)) {
                    return Ok(Target::Stub);
                }
                match self.subvols.binary_search_by_key(&child, |s| s.id) {
                    Ok(i) => Ok(Target::Node {
                        idx: i,
                        objectid: self.subvols[i].root.root_dirid,
                    }),
                    Err(_) => Err(corrupt(
                        format!("btrfs subvolume {child}"),
                        "linked from a directory but has no ROOT_ITEM",
                    )),
                }
            }
            t => Err(corrupt(
                format!("btrfs subvolume {parent} directory entry"),
                format!("points to an item of type {t}"),
            )),
        }
    }
}

/// A file's `EXTENT_DATA` items, by (subvolume index, objectid).
type KeptExtents = ((usize, u64), Vec<(Key, Vec<u8>)>);

/// Per-thread reader.
struct BtrfsReader {
    inner: Arc<Inner>,
    /// Paths resolved so far.
    paths: RefCell<HashMap<Vec<u8>, Target>>,
    /// The `EXTENT_DATA` items [`FsReader::content_key`] read last, by (subvolume index,
    /// objectid): the content scan opens that file next, and does not look them up again.
    extents: RefCell<Option<KeptExtents>>,
}

fn trim(path: &[u8]) -> &[u8] {
    let mut p = path;
    while let [b'/', rest @ ..] = p {
        p = rest;
    }
    while let [rest @ .., b'/'] = p {
        p = rest;
    }
    p
}

impl BtrfsReader {
    /// `/` as the booted system sees it.
    fn top(&self) -> Target {
        self.inner.subvol_root(self.inner.layout().root)
    }

    fn remember(&self, path: &[u8], t: Target) {
        let mut m = self.paths.borrow_mut();
        if m.len() >= MAX_CACHED_PATHS {
            m.clear();
        }
        m.insert(trim(path).to_vec(), t);
    }

    fn resolve(&self, path: &[u8]) -> Result<Target, FsError> {
        let rel = trim(path);
        if let Some(t) = self.paths.borrow().get(rel) {
            return Ok(*t);
        }
        if let Some(rest) = rel.strip_prefix(b"<btrfs subvolume ") {
            // A subvolume the sweep found: `<btrfs subvolume ID>/a/b`.
            let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
            let id: u64 = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| not_found(path))?;
            let idx = self
                .inner
                .subvols
                .binary_search_by_key(&id, |s| s.id)
                .map_err(|_| not_found(path))?;
            let t = Target::Node {
                idx,
                objectid: self.inner.subvols[idx].root.root_dirid,
            };
            let tail = rest.get(end.saturating_add(1)..).unwrap_or(&[]);
            return self.resolve_from(t, tail, path, None);
        }
        self.resolve_from(self.top(), rel, path, Some(&self.inner.layout().mounts))
    }

    /// Follow `rel` from `t`; with `mounts`, a path that is a mount point leads to the root of
    /// the subvolume mounted there.
    fn resolve_from(
        &self,
        mut t: Target,
        rel: &[u8],
        path: &[u8],
        mounts: Option<&HashMap<Vec<u8>, usize>>,
    ) -> Result<Target, FsError> {
        let mut at: Vec<u8> = Vec::new();
        for (n, name) in rel
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .enumerate()
        {
            if n >= MAX_PATH_COMPONENTS {
                return Err(corrupt(
                    String::from_utf8_lossy(path).into_owned(),
                    "too many path components",
                ));
            }
            let Target::Node { idx, objectid } = t else {
                return Err(not_found(path));
            };
            let (entries, errors) = self.inner.dir_entries(idx, objectid)?;
            match entries.iter().find(|d| d.name == name) {
                Some(d) => t = self.inner.follow(idx, d)?,
                None => {
                    return Err(errors.into_iter().next().unwrap_or_else(|| not_found(path)));
                }
            }
            if let Some(mounts) = mounts {
                if !at.is_empty() {
                    at.push(b'/');
                }
                at.extend_from_slice(name);
                if let Some(&i) = mounts.get(&at) {
                    t = self.inner.subvol_root(i);
                }
            }
        }
        Ok(t)
    }

    /// The index of the subvolume `r` names, from the top level; `None` when it names none.
    fn find_subvol(&self, r: &fstab::SubvolRef, default_id: u64) -> Option<usize> {
        let by_id = |id: u64| self.inner.subvols.binary_search_by_key(&id, |s| s.id).ok();
        match r {
            fstab::SubvolRef::Default => by_id(default_id),
            fstab::SubvolRef::Id(id) => by_id(*id),
            fstab::SubvolRef::Path(p) => {
                let top = self.inner.subvol_root(self.inner.plain.root);
                match self.resolve_from(top, p, p, None) {
                    Ok(Target::Node { idx, objectid })
                        if self
                            .inner
                            .subvol(idx)
                            .is_ok_and(|s| s.root.root_dirid == objectid) =>
                    {
                        Some(idx)
                    }
                    _ => None,
                }
            }
        }
    }

    /// `/etc/fstab` of subvolume `idx`, when it has one that is a regular file.
    fn fstab(&self, idx: usize) -> Result<Option<Vec<u8>>, FsError> {
        let rel = b"etc/fstab";
        let (idx, objectid) = match self.resolve_from(self.inner.subvol_root(idx), rel, rel, None) {
            Ok(Target::Node { idx, objectid }) => (idx, objectid),
            Ok(Target::Stub) | Err(FsError::Other { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let inode = self.inner.reader_inode(idx, objectid)?;
        if kind_of(inode.mode) != EntryKind::File {
            return Ok(None);
        }
        if inode.size > MAX_FSTAB {
            return Err(corrupt(
                "/etc/fstab",
                format!("{} bytes, more than amiscan reads", inode.size),
            ));
        }
        let e = entry(rel.to_vec(), &inode, pack(idx, objectid)?);
        let mut out = Vec::new();
        self.file(&e)?
            .take(MAX_FSTAB)
            .read_to_end(&mut out)
            .map_err(|x| corrupt("/etc/fstab", x.to_string()))?;
        Ok(Some(out))
    }

    /// The booted system's view: the subvolume an `/etc/fstab` inside it mounts at `/`, else
    /// the default subvolume, else the top level; the other btrfs mounts of the root's fstab.
    fn choose_layout(&self, fsid: &[u8; 16], default_id: u64, notes: &mut Vec<String>) -> Layout {
        let inner = &self.inner;
        let name = |idx: usize| inner.subvols.get(idx).map_or(0, |s| s.id);
        let default_idx = inner
            .subvols
            .binary_search_by_key(&default_id, |s| s.id)
            .ok();
        if default_idx.is_none() {
            notes.push(format!(
                "btrfs default subvolume {default_id} does not exist; the top level is used"
            ));
        }
        // Subvolumes whose fstab mounts them at `/`, with their fstab; the default first.
        let mut order: Vec<usize> = default_idx.into_iter().collect();
        order.extend((0..inner.subvols.len()).filter(|&i| Some(i) != default_idx));
        if order.len() > MAX_FSTABS {
            notes.push(format!(
                "btrfs: {} subvolumes; the /etc/fstab of only the first {MAX_FSTABS} was read to find the root",
                order.len()
            ));
            order.truncate(MAX_FSTABS);
        }
        let mut chosen: Option<(usize, Vec<fstab::Mount>)> = None;
        let mut others = 0usize;
        for idx in order {
            let text = match self.fstab(idx) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    notes.push(format!(
                        "btrfs subvolume {}: /etc/fstab not read ({e}); not used to find the root",
                        name(idx)
                    ));
                    continue;
                }
            };
            let mounts = fstab::parse(&text, fsid);
            let selfroot = mounts.iter().any(|m| {
                m.point.is_empty() && self.find_subvol(&m.subvol, default_id) == Some(idx)
            });
            if !selfroot {
                continue;
            }
            if chosen.is_none() {
                chosen = Some((idx, mounts));
            } else {
                others += 1;
            }
        }
        let (root, mounts, why) = match chosen {
            Some((idx, m)) => (idx, m, "its /etc/fstab mounts it at /"),
            None => match default_idx {
                Some(d) if name(d) != FS_TREE => {
                    let m = self.fstab(d).ok().flatten().unwrap_or_default();
                    (d, fstab::parse(&m, fsid), "the default subvolume")
                }
                _ => return inner.plain.clone(),
            },
        };
        if others > 0 {
            notes.push(format!(
                "btrfs: {others} other subvolumes have an /etc/fstab mounting themselves at /; subvolume {} is used as /",
                name(root)
            ));
        }
        let mut layout = Layout {
            root,
            mounts: HashMap::new(),
            mounted: HashSet::from([root]),
        };
        // Shorter mount points first, so `/var/lib/x` is looked for inside a mounted `/var`.
        let mut mounts: Vec<fstab::Mount> =
            mounts.into_iter().filter(|m| !m.point.is_empty()).collect();
        mounts.sort_by(|a, b| {
            a.point
                .len()
                .cmp(&b.point.len())
                .then(a.point.cmp(&b.point))
        });
        let mut said = Vec::new();
        for m in mounts {
            let point = String::from_utf8_lossy(&m.point).into_owned();
            let Some(idx) = self.find_subvol(&m.subvol, default_id) else {
                notes.push(format!(
                    "btrfs: /etc/fstab mounts {:?} at /{point}, which is no subvolume of this filesystem",
                    m.subvol
                ));
                continue;
            };
            if layout.mounted.contains(&idx) || layout.mounts.contains_key(&m.point) {
                continue;
            }
            let is_dir = match self.resolve_from(
                inner.subvol_root(root),
                &m.point,
                &m.point,
                Some(&layout.mounts),
            ) {
                Ok(Target::Stub) => true,
                Ok(Target::Node { idx, objectid }) => inner
                    .reader_inode(idx, objectid)
                    .is_ok_and(|i| kind_of(i.mode) == EntryKind::Dir),
                Err(_) => false,
            };
            if !is_dir {
                notes.push(format!(
                    "btrfs: /etc/fstab mounts subvolume {} at /{point}, which is not a directory of the root: it is listed where the top level links it",
                    name(idx)
                ));
                continue;
            }
            said.push(format!("/{point} is subvolume {}", name(idx)));
            layout.mounts.insert(m.point, idx);
            layout.mounted.insert(idx);
        }
        notes.push(format!(
            "btrfs: / is subvolume {} ({why}){}{}; the top level and subvolumes mounted nowhere are under <btrfs subvolume 5>",
            name(root),
            if said.is_empty() { "" } else { ", " },
            said.join(", ")
        ));
        layout
    }

    fn list(&self, path: &[u8], t: Target) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let Target::Node { idx, objectid } = t else {
            return Ok(Vec::new());
        };
        let (entries, errors) = self.inner.dir_entries(idx, objectid)?;
        let parent = if trim(path).is_empty() {
            b"/".as_slice()
        } else {
            path
        };
        let mut out: Vec<Result<Entry, FsError>> = errors.into_iter().map(Err).collect();
        let layout = self.inner.layout();
        for d in entries {
            let full = join(parent, &d.name);
            let target = match layout.mounts.get(trim(&full)) {
                Some(&i) => Ok(self.inner.subvol_root(i)),
                None => {
                    let t = self.inner.follow(idx, &d);
                    // A subvolume mounted elsewhere (or the root) is listed where it is
                    // mounted, not here too.
                    if let Ok(Target::Node { idx: i, objectid }) = t
                        && layout.mounted.contains(&i)
                        && self
                            .inner
                            .subvol(i)
                            .is_ok_and(|s| s.root.root_dirid == objectid)
                    {
                        continue;
                    }
                    t
                }
            };
            let r = target.and_then(|t| match t {
                Target::Stub => Ok(Entry {
                    path: full.clone(),
                    kind: EntryKind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    mtime: 0,
                    ino: 0,
                    phys: 0,
                }),
                Target::Node { idx, objectid } => {
                    let ino = pack(idx, objectid)?;
                    let inode = self.inner.reader_inode(idx, objectid).map_err(|e| {
                        let id = self.inner.subvols.get(idx).map_or(0, |s| s.id);
                        named(e, &full, id)
                    })?;
                    Ok(entry(full.clone(), &inode, ino))
                }
            });
            if let Ok(e) = &r {
                let t = if e.ino == 0 {
                    Target::Stub
                } else {
                    unpack(e.ino)
                };
                self.remember(&full, t);
            }
            out.push(r);
        }
        Ok(out)
    }

    fn target_of(&self, entry: &Entry) -> Result<(usize, u64), FsError> {
        let t = if entry.ino == 0 {
            self.resolve(&entry.path)?
        } else {
            unpack(entry.ino)
        };
        match t {
            Target::Node { idx, objectid } => Ok((idx, objectid)),
            Target::Stub => Err(not_found(&entry.path)),
        }
    }

    fn file(&self, entry: &Entry) -> Result<file::FileReader<'_>, FsError> {
        let (idx, objectid) = self.target_of(entry)?;
        if idx == LOG_IDX {
            let f = usize::try_from(objectid)
                .ok()
                .and_then(|k| self.inner.logs.get(k))
                .ok_or_else(|| not_found(&entry.path))?;
            let sums = (f.inode.flags & items::INODE_NODATASUM == 0).then(|| {
                std::iter::once(f.tree)
                    .chain(self.inner.trees.csum_root)
                    .collect()
            });
            return file::FileReader::new(
                &self.inner.trees,
                f.extents.clone(),
                entry.size,
                sums,
                format!(
                    "{} (btrfs log tree of subvolume {} inode {})",
                    entry.display_path(),
                    f.subvol,
                    f.objectid
                ),
            );
        }
        let id = self.inner.subvol(idx)?.id;
        let cached = self
            .extents
            .borrow_mut()
            .take()
            .filter(|(at, _)| *at == (idx, objectid));
        let items = match cached {
            Some((_, items)) => items,
            None => {
                let found = self.inner.file_items(idx, objectid)?;
                if let Some(e) = found.errors.into_iter().next() {
                    return Err(named(e, &entry.path, id).with_inode(objectid));
                }
                found.items
            }
        };
        let mut flags = 0;
        let mut extents = Vec::with_capacity(items.len());
        for (key, data) in items {
            match key.ty {
                INODE_ITEM_KEY => flags = Inode::parse(&data).map_or(0, |i| i.flags),
                EXTENT_DATA_KEY => extents.push((key, data)),
                _ => {}
            }
        }
        let sums = (flags & items::INODE_NODATASUM == 0)
            .then(|| self.inner.trees.csum_root.into_iter().collect());
        file::FileReader::new(
            &self.inner.trees,
            extents,
            entry.size,
            sums,
            format!(
                "{} (btrfs subvolume {id} inode {objectid})",
                entry.display_path()
            ),
        )
        .map_err(|e| e.with_inode(objectid))
    }
}

/// The same error, said to concern file or directory `path` of subvolume `id` (the structure
/// that failed stays in the message: `PATH (btrfs subvolume 5): corrupt: btrfs tree block N:
/// crc32c checksum mismatch`).
fn named(e: FsError, path: &[u8], id: u64) -> FsError {
    let context = format!(
        "{} (btrfs subvolume {id})",
        crate::model::escape::path_text(path)
    );
    let inner = e.context().to_string();
    let with = |m: String| format!("{inner}: {m}");
    match e {
        FsError::Io { message, at, .. } => FsError::Io {
            context,
            message: with(message),
            at,
        },
        FsError::Incompatible { message, at, .. } => FsError::Incompatible {
            context,
            message: with(message),
            at,
        },
        FsError::Corrupt { message, at, .. } => FsError::Corrupt {
            context,
            message: with(message),
            at,
        },
        FsError::Other { message, at, .. } => FsError::Other {
            context,
            message: with(message),
            at,
        },
    }
}

fn not_found(path: &[u8]) -> FsError {
    FsError::Other {
        context: crate::model::escape::path_text(path),
        message: "no such file or directory".into(),
        at: Default::default(),
    }
}

impl FsReader for BtrfsReader {
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let t = self.resolve(path)?;
        self.list(path, t)
    }

    fn list_dir_at(&self, path: &[u8], ino: u64) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let t = if ino == 0 {
            self.resolve(path)?
        } else {
            unpack(ino)
        };
        self.list(path, t)
    }

    fn open_file<'a>(&'a self, entry: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        Ok(Box::new(self.file(entry)?))
    }

    fn open_seekable<'a>(
        &'a self,
        entry: &Entry,
    ) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        Ok(Some(Box::new(self.file(entry)?)))
    }

    fn data_ranges(&self, entry: &Entry) -> Result<Option<Vec<std::ops::Range<u64>>>, FsError> {
        Ok(Some(self.file(entry)?.data_ranges()))
    }

    /// SHA-256 of the size and every `EXTENT_DATA` item but its generation: file offset,
    /// sizes, compression, encoding, type, and `disk_bytenr`, `disk_num_bytes`, `offset`,
    /// `num_bytes` (or the inline bytes). Equal keys read the same bytes of the volume; a file
    /// changed after a snapshot was taken has new extents (copy on write), so a new key.
    fn content_key(&self, entry: &Entry) -> Option<[u8; 32]> {
        use sha2::Digest;
        let (idx, objectid) = self.target_of(entry).ok()?;
        let found = self.inner.file_items(idx, objectid).ok()?;
        if !found.errors.is_empty() {
            return None;
        }
        let extents = || found.items.iter().filter(|(k, _)| k.ty == EXTENT_DATA_KEY);
        let mut h = sha2::Sha256::new();
        h.update(b"btrfs extents\0");
        h.update(entry.size.to_le_bytes());
        h.update((extents().count() as u64).to_le_bytes());
        // The inode's NODATASUM flag decides whether the read is checked.
        let nodatasum = found.items.iter().any(|(k, d)| {
            k.ty == INODE_ITEM_KEY
                && Inode::parse(d).is_some_and(|i| i.flags & items::INODE_NODATASUM != 0)
        });
        h.update([u8::from(nodatasum)]);
        for (key, data) in extents() {
            // The first 8 bytes are the generation: a reflink copy has its own.
            let rest = data.get(8..)?;
            h.update(key.offset.to_le_bytes());
            h.update((rest.len() as u64).to_le_bytes());
            h.update(rest);
        }
        *self.extents.borrow_mut() = Some(((idx, objectid), found.items));
        Some(h.finalize().into())
    }

    fn read_link(&self, entry: &Entry) -> Result<Vec<u8>, FsError> {
        let mut out = Vec::new();
        self.file(entry)?
            .take(MAX_LINK)
            .read_to_end(&mut out)
            .map_err(|e| FsError::Io {
                context: entry.display_path(),
                message: e.to_string(),
                at: Default::default(),
            })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_numbers_pack_the_subvolume() {
        let ino = pack(3, 257).unwrap();
        assert!(matches!(
            unpack(ino),
            Target::Node {
                idx: 3,
                objectid: 257
            }
        ));
        assert!(pack(0, 1 << 50).is_err());
    }

    #[test]
    fn a_volume_of_zeros_is_refused_not_a_panic() {
        let src: SharedSource = Arc::new(crate::source::MemSource::new(vec![0u8; 1 << 20], "mem"));
        assert!(BtrfsFs::open(src).is_err());
    }
}
