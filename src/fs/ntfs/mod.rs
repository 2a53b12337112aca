//! NTFS through the `ntfs` crate (Colin Finck's, read-only, pure Rust): the system volume of
//! every Windows AMI. This file owns the crate: every call into it runs under
//! `catch_unwind` (a panic on malformed metadata becomes an [`FsError`]), its errors are typed
//! here, and every call reads through a [`Cursor`] with a read budget, so a directory B+ tree
//! or a run list that loops ends in an error instead of running on.
//!
//! What it reads: the boot sector, `$MFT` records (fixups applied by the crate; an `$MFT` in
//! several data runs), `$INDEX_ROOT`/`$INDEX_ALLOCATION` directories, resident and
//! non-resident `$DATA` (sparse runs read as zeros), attributes spread over several records
//! through `$ATTRIBUTE_LIST` (a `$DATA` whose run list is split over extents in several records
//! is assembled by [`extents`]). Each file is listed once per name (hard links: once per
//! directory entry, the same `ino`); a name in the DOS namespace is the short alias of a
//! Win32 name and is not listed again. Each named `$DATA` attribute (an alternate data stream)
//! is an entry of its own, at `file:stream`, scanned like a file. `ino` is the MFT record
//! number; `mtime` the `$STANDARD_INFORMATION` modification time.
//!
//! The metafiles (MFT records 0 to 15: `$MFT`, `$LogFile`, `$Bitmap`, `$Extend`, …) are not
//! listed: they hold no user content (`ntfs-3g` hides them too).
//!
//! Not read, each reported as an error on the file so the scan is incomplete rather than
//! silently partial: EFS-encrypted files, files whose content a reparse point moved elsewhere
//! (WOF / `CompactOS` compression, deduplication), a `$DATA` spread over an attribute list
//! whose extents do not fit together (LZNT1-compressed streams are decompressed: `lznt1`).
//! Symbolic links and junctions are recorded, never followed. An `$MFT` that itself needs an
//! attribute list (its run list split over extents in other records), which the crate does not
//! map, is read through a view of the volume that [`mft_list`] builds.

mod extents;
mod index;
mod mft_list;
mod record;
pub mod sweep;
mod table;

use super::{Entry, EntryKind, Filesystem, FsError, FsReader, SeekRead};
use crate::source::{Cursor, SharedSource};
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsFileAttributeFlags, NtfsFileName, NtfsFileNamespace};
use ntfs::{Ntfs, NtfsAttributeFlags, NtfsAttributeType, NtfsError, NtfsFile, NtfsReadSeek};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// Records below this number are the NTFS metafiles.
const FIRST_USER_RECORD: u64 = 16;
/// Most entries one directory may list before it is reported as corrupt.
const MAX_DIR_ENTRIES: usize = 4_000_000;
/// Most source reads one directory listing may make (a B+ tree that loops ends here).
const DIR_READS: u64 = 64_000_000;
/// Most source reads for one file record and its attributes.
pub(super) const RECORD_READS: u64 = 100_000;
/// Bytes of a stream read per visit to its record.
const CHUNK: usize = 1 << 20;
/// Most source reads for one chunk (a chunk in 4 KiB clusters, each its own run, plus the run
/// list walk).
const CHUNK_READS: u64 = 1_000_000;
/// Most alternate data streams listed per file (Windows puts one or two on a file; opening
/// each goes through the record's attributes to find it, so a file with n streams costs n²
/// attribute reads: 4,096 streams took minutes).
const MAX_STREAMS: usize = 1024;
/// Largest resident stream whose content the walk keeps for the content scan (a resident value
/// fits in its record, 1 to 4 KiB).
const RESIDENT_MAX: u64 = 4096;

/// Seconds from 1601-01-01 (NT time) to 1970-01-01.
const NT_TO_UNIX: i64 = 11_644_473_600;

/// Reparse tags that move a file's content out of its unnamed `$DATA`.
const TAG_WOF: u32 = 0x8000_0017;
const TAG_DEDUP: u32 = 0x8000_0013;
const TAG_SYMLINK: u32 = 0xA000_000C;
const TAG_MOUNT_POINT: u32 = 0xA000_0003;

/// An NTFS filesystem on a volume.
pub struct NtfsFs {
    src: SharedSource,
    ntfs: Arc<Ntfs>,
    remembered: Arc<Remembered>,
    table: Arc<table::Table>,
    /// What the volume's state says about how the image was taken (see [`volume_state`]).
    warnings: Vec<String>,
}

/// Bytes of `$LogFile` read for its two restart pages (4 KiB pages).
const LOG_HEAD: usize = 8192;

/// Warnings about the state the volume was taken in: `$Volume` marked dirty (chkdsk pending,
/// as Windows or `ntfsresize` leaves it) and a `$LogFile` in use (a snapshot of a running
/// Windows). Neither is replayed or repaired: the volume is read as it is on disk.
fn volume_state(src: &SharedSource, ntfs: &Ntfs) -> Vec<String> {
    let mut out = Vec::new();
    let dirty = guarded(&|| "$Volume".into(), || {
        let mut c = Cursor::new(src.clone()).with_read_limit(RECORD_READS);
        Ok(ntfs
            .volume_info(&mut c)?
            .flags()
            .contains(ntfs::structured_values::NtfsVolumeFlags::IS_DIRTY))
    });
    match dirty {
        Ok(true) => out.push(
            "NTFS volume marked dirty ($Volume: chkdsk pending): it was not cleanly unmounted or \
             is damaged; read as it is on disk"
                .to_string(),
        ),
        Ok(false) => {}
        Err(e) => out.push(format!("the volume's dirty flag could not be read: {e}")),
    }
    let head = guarded(&|| "$LogFile".into(), || {
        let mut c = Cursor::new(src.clone()).with_read_limit(RECORD_READS);
        let file = ntfs.file(&mut c, 2)?;
        let Some(item) = data_item(&file, &mut c, "")? else {
            return Ok(Vec::new());
        };
        let attr = item.to_attribute()?;
        let mut v = attr.value(&mut c)?;
        let len = usize::try_from(v.len()).unwrap_or(0).min(LOG_HEAD);
        let mut buf = vec![0u8; len];
        v.read_exact(&mut c, &mut buf)?;
        Ok(buf)
    });
    match head.map(|h| super::ntfs_logfile::state(&h)) {
        Ok(super::ntfs_logfile::LogState::Dirty) => out.push(
            "NTFS $LogFile in use: the volume was mounted by a running Windows when the image \
             was taken; its log is not replayed, the files are read as they are on disk"
                .to_string(),
        ),
        Ok(super::ntfs_logfile::LogState::Unrecognised) => out.push(
            "NTFS $LogFile has no valid restart page: whether the volume was in use is unknown"
                .to_string(),
        ),
        Ok(_) => {}
        Err(e) => out.push(format!("the $LogFile state could not be read: {e}")),
    }
    out
}

/// Run a call into the crate: a panic or an error becomes an [`FsError`] about `context`.
pub(super) fn guarded<T>(
    context: &dyn Fn() -> String,
    f: impl FnOnce() -> Result<T, NtfsError>,
) -> Result<T, FsError> {
    match crate::model::caught::catch(f) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(convert(context(), e)),
        Err(_) => Err(FsError::Corrupt {
            context: context(),
            message: "the NTFS reader failed on malformed metadata".into(),
            at: Default::default(),
        }),
    }
}

/// Type an error of the crate.
fn convert(context: String, e: NtfsError) -> FsError {
    match e {
        NtfsError::Io(e) => FsError::Io {
            context,
            message: e.to_string(),
            at: Default::default(),
        },
        NtfsError::UnsupportedAttributeType { .. }
        | NtfsError::UnsupportedClusterSize { .. }
        | NtfsError::UnsupportedFileNamespace { .. }
        | NtfsError::UnsupportedSectorSize { .. } => FsError::Incompatible {
            context,
            message: e.to_string(),
            at: Default::default(),
        },
        e => FsError::Corrupt {
            context,
            message: e.to_string(),
            at: Default::default(),
        },
    }
}

fn other(context: String, message: impl Into<String>) -> FsError {
    FsError::Other {
        context,
        message: message.into(),
        at: Default::default(),
    }
}

impl NtfsFs {
    /// Read the boot sector and the `$UpCase` table.
    pub fn open(src: SharedSource) -> Result<Self, FsError> {
        let mut ntfs = guarded(&|| "NTFS boot sector".into(), || {
            let mut c = Cursor::new(src.clone()).with_read_limit(RECORD_READS);
            Ntfs::new(&mut c)
        })?;
        // An `$MFT` split over an attribute list is read through a view of the volume that
        // maps it whole ([`mft_list`]); otherwise `src` is the volume itself.
        let (src, mft_warning) = mft_list::view(src, &ntfs);
        guarded(&|| "NTFS boot sector".into(), || {
            let mut c = Cursor::new(src.clone()).with_read_limit(RECORD_READS);
            ntfs.read_upcase_table(&mut c)?;
            // The root directory must load: a volume whose MFT cannot be read is refused here.
            ntfs.root_directory(&mut c)?;
            Ok(())
        })?;
        let mut warnings = volume_state(&src, &ntfs);
        warnings.extend(mft_warning);
        Ok(NtfsFs {
            src,
            ntfs: Arc::new(ntfs),
            remembered: Arc::default(),
            table: Arc::default(),
            warnings,
        })
    }

    /// The volume.
    pub(super) fn source(&self) -> &SharedSource {
        &self.src
    }

    /// The crate's view of the volume.
    pub(super) fn ntfs(&self) -> &Ntfs {
        &self.ntfs
    }

    /// A reader of this volume, as [`Filesystem::reader`] gives (for the record sweep).
    pub(super) fn ntfs_reader(&self) -> NtfsReader {
        NtfsReader {
            src: self.src.clone(),
            ntfs: self.ntfs.clone(),
            remembered: self.remembered.clone(),
            table: self.table.clone(),
            last: std::sync::Mutex::new(None),
        }
    }
}

impl Filesystem for NtfsFs {
    fn name(&self) -> &'static str {
        "ntfs"
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        Ok(Box::new(self.ntfs_reader()))
    }

    /// The directories and records are read in disk order before the first listing
    /// ([`table`]).
    fn will_walk_whole(&self) {
        self.table.want();
    }

    /// The in-use user records no directory index names ([`sweep`]).
    fn unreached(&self, reached: &(dyn Fn(u64) -> bool + Sync)) -> Option<super::Swept> {
        self.table.done();
        Some(sweep::unreached(self, reached))
    }

    /// The free records that still hold a deleted file's resident content
    /// ([`sweep`]).
    fn deleted(&self) -> Option<super::Swept> {
        Some(sweep::deleted(self))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

pub(super) struct NtfsReader {
    src: SharedSource,
    ntfs: Arc<Ntfs>,
    remembered: Arc<Remembered>,
    table: Arc<table::Table>,
    /// The last unnamed stream opened from [`Remembered`] (record, how): its data ranges are
    /// asked for right after it is opened.
    last: std::sync::Mutex<Option<(u64, Arc<OpenInfo>)>>,
}

/// How to read one stream, from its record (see [`Opened`]), or why it cannot be read.
type OpenInfo = Result<Opened, Refused>;

/// Why a stream cannot be read: a feature not read (EFS, WOF, …), or metadata that is corrupt
/// (an attribute list whose extents do not fit together).
#[derive(Clone, Debug)]
struct Refused {
    corrupt: bool,
    message: String,
}

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Refused {
            corrupt: false,
            message,
        }
    }
}

/// How to read one stream, from its record: its length, and the run list to read it through
/// (LZNT1-compressed, or uncompressed and non-resident) or its resident content; with none of
/// them it is read through the crate.
#[derive(Clone)]
struct Opened {
    len: u64,
    compressed: Option<Arc<DataRuns>>,
    direct: Option<Arc<DataRuns>>,
    /// The content of a resident stream, copied while the walk had its record.
    resident: Option<Arc<[u8]>>,
}

/// The run lists of unnamed streams read while the walk had their records, until the content
/// scan opens them, so it need not read the record again. (A volume read through EBS whose MFT
/// is larger than the block cache, as a Windows root's is with the default budget, evicted
/// each record's block between the walk and the content scan and fetched it again for every
/// file: five times the blocks needed.) Bounded by [`REMEMBER_BYTES`]: past it a record is
/// read again to open its file.
#[derive(Default)]
struct Remembered {
    /// By record: how to open it, and how many more opens it is kept for (its names: a hard
    /// link is opened once per name).
    held: std::sync::Mutex<(HeldOpens, usize)>,
}

/// Per record, how to open it and for how many more opens.
type HeldOpens = HashMap<u64, (Arc<OpenInfo>, u16)>;

/// Most bytes (estimated) the remembered run lists take.
const REMEMBER_BYTES: usize = 32 << 20;

impl Remembered {
    /// Estimated bytes one remembered stream takes.
    fn cost(info: &OpenInfo) -> usize {
        let runs = match info {
            Ok(o) => o
                .compressed
                .iter()
                .chain(&o.direct)
                .map(|r| r.runs.len())
                .sum(),
            Err(m) => m.message.len() / 24,
        };
        let resident = match info {
            Ok(o) => o.resident.as_ref().map_or(0, |d| d.len()),
            Err(_) => 0,
        };
        128 + 24 * runs + resident
    }

    /// Keep how to open record `rec` for `links` opens (its names).
    fn put(&self, rec: u64, info: OpenInfo, links: u16) {
        let cost = Self::cost(&info);
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.0.contains_key(&rec) || held.1.saturating_add(cost) > REMEMBER_BYTES {
            return;
        }
        held.0.insert(rec, (Arc::new(info), links.max(1)));
        held.1 += cost;
    }

    fn take(&self, rec: u64) -> Option<Arc<OpenInfo>> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (info, left) = held.0.get_mut(&rec)?;
        let info = info.clone();
        *left -= 1;
        if *left == 0 {
            held.0.remove(&rec);
            held.1 = held.1.saturating_sub(Self::cost(&info));
        }
        Some(info)
    }
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

pub(super) fn unix_time(nt: u64) -> i64 {
    i64::try_from(nt / 10_000_000)
        .unwrap_or(i64::MAX)
        .saturating_sub(NT_TO_UNIX)
}

/// What one file record says about its content.
#[derive(Clone)]
struct Streams {
    /// Size of the unnamed `$DATA` (0 when it has none).
    size: u64,
    /// Modification time (Unix seconds).
    mtime: i64,
    /// The reparse tag, if the record has a reparse point.
    reparse: Option<u32>,
    /// Named `$DATA` attributes: name and size.
    named: Vec<(String, u64)>,
    /// The record has more named `$DATA` than [`MAX_STREAMS`]: the others are not listed (an
    /// error on the file says so).
    more_streams: bool,
    /// Where the unnamed `$DATA` starts on the volume (0 when resident or unknown).
    phys: u64,
    /// What an Interix special file (a system file whose data starts with a tag, as `ntfs-3g`
    /// writes symbolic links and devices) is, if it is one.
    interix: Option<EntryKind>,
    /// How to open the unnamed `$DATA`, when it is non-resident (see [`Remembered`]).
    open: Option<OpenInfo>,
    /// Whether `$STANDARD_INFORMATION` marks the file read-only.
    read_only: bool,
    /// The record's names outside the DOS namespace (hard links; at most [`MAX_LINKS`]).
    links: u16,
}

/// Most names of one record a remembered way to open it is kept for.
const MAX_LINKS: u16 = 64;

/// The entry at `path` of record `rec` as a `kind`, from what its record says (`streams`).
fn record_entry(path: Vec<u8>, kind: EntryKind, mode: u32, rec: u64, streams: &Streams) -> Entry {
    Entry {
        path,
        kind,
        mode,
        uid: 0,
        gid: 0,
        size: if kind == EntryKind::File {
            streams.size
        } else {
            0
        },
        mtime: streams.mtime,
        ino: rec,
        phys: streams.phys,
    }
}

/// The entries of the alternate data streams `named` of the file or directory `of`, at
/// `path:stream`.
fn push_streams(
    named: &[(String, u64)],
    of: &Entry,
    read_only: bool,
    out: &mut Vec<Result<Entry, FsError>>,
) {
    for (sname, size) in named {
        let mut p = of.path.clone();
        p.push(b':');
        p.extend_from_slice(sname.as_bytes());
        out.push(Ok(Entry {
            path: p,
            kind: EntryKind::File,
            mode: if read_only { 0o444 } else { 0o644 },
            size: *size,
            phys: 0,
            ..of.clone()
        }));
    }
}

/// An error on `of` when its record has more alternate data streams than were listed.
fn more_streams(s: &Streams, of: &Entry, out: &mut Vec<Result<Entry, FsError>>) {
    if s.more_streams {
        out.push(Err(other(
            format!("file {}", of.display_path()),
            format!(
                "more than {MAX_STREAMS} alternate data streams: the others were not listed or \
                 scanned"
            ),
        )
        .with_inode(of.ino)));
    }
}

/// The Interix tags `ntfs-3g` writes (and Services for Unix did) at the start of a special
/// file's data, and the longest such file (a link target of 4095 UTF-16 units).
const INTERIX_LINK: &[u8; 8] = b"IntxLNK\x01";
const INTERIX_CHR: &[u8; 8] = b"IntxCHR\0";
const INTERIX_BLK: &[u8; 8] = b"IntxBLK\0";
const INTERIX_MAX: u64 = 8 + 2 * 4096;

/// The reparse tag of `file`, if it has a `$REPARSE_POINT`.
fn reparse_tag<T: Read + Seek>(file: &NtfsFile<'_>, c: &mut T) -> Result<Option<u32>, NtfsError> {
    let mut it = file.attributes();
    while let Some(item) = it.next(c) {
        let item = item?;
        let attr = item.to_attribute()?;
        if attr.ty()? != NtfsAttributeType::ReparsePoint {
            continue;
        }
        let mut v = attr.value(c)?;
        let mut tag = [0u8; 4];
        v.read_exact(c, &mut tag)?;
        return Ok(Some(u32::from_le_bytes(tag)));
    }
    Ok(None)
}

/// The reparse data of `file` (at most 16 KiB, the NTFS maximum).
fn reparse_data<T: Read + Seek>(file: &NtfsFile<'_>, c: &mut T) -> Result<Vec<u8>, NtfsError> {
    let mut it = file.attributes();
    while let Some(item) = it.next(c) {
        let item = item?;
        let attr = item.to_attribute()?;
        if attr.ty()? != NtfsAttributeType::ReparsePoint {
            continue;
        }
        let mut v = attr.value(c)?;
        let len = usize::try_from(v.len())
            .unwrap_or(usize::MAX)
            .min(16 * 1024);
        let mut buf = vec![0u8; len];
        v.read_exact(c, &mut buf)?;
        return Ok(buf);
    }
    Ok(Vec::new())
}

impl NtfsReader {
    fn cursor(&self, reads: u64) -> Cursor {
        Cursor::new(self.src.clone()).with_read_limit(reads)
    }

    /// The record `rec` of the MFT.
    fn file<'n>(&'n self, c: &mut Cursor, rec: u64) -> Result<NtfsFile<'n>, NtfsError> {
        self.ntfs.file(c, rec)
    }

    /// The directory record for `path`, found name by name from the root (case-insensitive, as
    /// Windows resolves it). Used when the caller does not know the record number.
    fn resolve(&self, path: &[u8]) -> Result<u64, FsError> {
        let ctx = || format!("directory {}", lossy(path));
        let s = std::str::from_utf8(path).map_err(|e| other(ctx(), e.to_string()))?;
        let mut rec = 5u64;
        for part in s.split('/').filter(|p| !p.is_empty()) {
            rec = guarded(&ctx, || {
                let mut c = self.cursor(DIR_READS);
                let dir = self.file(&mut c, rec)?;
                let index = dir.directory_index(&mut c)?;
                let mut finder = index.finder();
                match NtfsFileNameIndex::find(&mut finder, &self.ntfs, &mut c, part) {
                    Some(Ok(e)) => Ok(Some(e.file_reference().file_record_number())),
                    Some(Err(e)) => Err(e),
                    None => Ok(None),
                }
            })?
            .ok_or_else(|| other(ctx(), format!("no entry named {part}")))?;
        }
        Ok(rec)
    }

    /// Read what record `rec` holds about its streams.
    fn streams(&self, rec: u64) -> Result<Streams, NtfsError> {
        let mut c = self.cursor(RECORD_READS);
        let file = self.file(&mut c, rec)?;
        self.streams_of(&file, &mut c)
    }

    /// What `file` holds about its streams; for a regular file, also how to open its unnamed
    /// `$DATA` (its resident content copied).
    fn streams_of(&self, file: &NtfsFile<'_>, c: &mut Cursor) -> Result<Streams, NtfsError> {
        let info = file.info()?;
        let mtime = unix_time(info.modification_time().nt_timestamp());
        let system = info
            .file_attributes()
            .contains(NtfsFileAttributeFlags::SYSTEM);
        let read_only = info
            .file_attributes()
            .contains(NtfsFileAttributeFlags::READ_ONLY);
        let mut out = Streams {
            size: 0,
            mtime,
            reparse: None,
            named: Vec::new(),
            more_streams: false,
            phys: 0,
            interix: None,
            open: None,
            read_only,
            links: 0,
        };
        // Where each named stream is in `out.named`: a stream spread over an attribute list
        // is an item per extent.
        let mut named_at: HashMap<String, usize> = HashMap::new();
        // The header counts a DOS alias as a name too, which no walk opens: past one name,
        // the names are counted without it.
        let header_links = file.hard_link_count();
        let mut names = 0u16;
        let mut it = file.attributes();
        while let Some(item) = it.next(c) {
            let item = item?;
            let attr = item.to_attribute()?;
            match attr.ty()? {
                NtfsAttributeType::Data => {
                    let name = attr.name()?.to_string_lossy();
                    if name.is_empty() {
                        // Spread over an attribute list, each extent is an item; the first
                        // (VCN 0) holds the length, the others 0.
                        if attr.value_length() < out.size {
                            continue;
                        }
                        out.size = attr.value_length();
                        if system && (8..=INTERIX_MAX).contains(&out.size) {
                            let mut v = attr.value(c)?;
                            let mut tag = [0u8; 8];
                            v.read_exact(c, &mut tag)?;
                            out.interix = match &tag {
                                INTERIX_LINK => Some(EntryKind::Symlink),
                                INTERIX_CHR | INTERIX_BLK => Some(EntryKind::Special),
                                _ => None,
                            };
                        }
                        if !attr.is_resident() {
                            let v = attr.value(c)?;
                            out.phys = match v {
                                ntfs::attribute_value::NtfsAttributeValue::NonResident(nr) => nr
                                    .data_runs()
                                    .next()
                                    .and_then(|r| r.ok())
                                    .and_then(|r| r.data_position().value())
                                    .map_or(0, |p| p.get()),
                                _ => 0,
                            };
                        }
                    } else if let Some(seen) =
                        named_at.get(&name).and_then(|&i| out.named.get_mut(i))
                    {
                        // Another extent of a stream spread over an attribute list.
                        seen.1 = seen.1.max(attr.value_length());
                    } else if out.named.len() < MAX_STREAMS {
                        named_at.insert(name.clone(), out.named.len());
                        out.named.push((name, attr.value_length()));
                    } else {
                        out.more_streams = true;
                    }
                }
                NtfsAttributeType::FileName if header_links > 1 => {
                    let n = attr.structured_value::<_, NtfsFileName>(c)?;
                    if n.namespace() != NtfsFileNamespace::Dos {
                        names = names.saturating_add(1);
                    }
                }
                NtfsAttributeType::ReparsePoint => {
                    let mut v = attr.value(c)?;
                    let mut tag = [0u8; 4];
                    v.read_exact(c, &mut tag)?;
                    out.reparse = Some(u32::from_le_bytes(tag));
                }
                _ => {}
            }
        }
        out.links = if header_links > 1 {
            names.clamp(1, MAX_LINKS)
        } else {
            1
        };
        if !file.is_directory() && out.interix.is_none() {
            // What opening it needs, while the record is here; a record that fails here fails
            // again when the file is opened, which reports it. A resident content is kept only
            // from a remote source, where reading the record again may fetch its block again.
            out.open = open_info(file, c, "", self.ntfs.cluster_size(), self.src.remote()).ok();
            if let Some(Ok(o)) = &out.open {
                out.size = o.len;
            }
        }
        Ok(out)
    }

    /// Keep how to open record `rec`'s unnamed `$DATA` (taken out of `s`) for the content scan,
    /// once per name, unless the record is a directory or a link (never opened as a file).
    fn remember(&self, rec: u64, s: &mut Streams, dir: bool) {
        let link = matches!(s.reparse, Some(TAG_SYMLINK | TAG_MOUNT_POINT));
        if let Some(open) = s.open.take()
            && !link
            && !dir
        {
            self.remembered.put(rec, open, s.links);
        }
    }

    /// The entries for one name of record `rec` in directory `dir`: the file itself and one
    /// per alternate data stream.
    pub(super) fn entries_for(
        &self,
        dir: &[u8],
        name: &NtfsFileName,
        rec: u64,
        out: &mut Vec<Result<Entry, FsError>>,
    ) {
        let named = table::Named::of(name, rec);
        self.named_entries(dir, &named, None, out);
    }

    /// The entries for the index entry `n` in directory `dir`, from what its record says
    /// (`streams`, read in the table's pass; `None`: read it now).
    fn named_entries(
        &self,
        dir: &[u8],
        n: &table::Named,
        streams: Option<&Streams>,
        out: &mut Vec<Result<Entry, FsError>>,
    ) {
        let rec = n.rec;
        let path = super::join(dir, n.name.as_bytes());
        if n.dir && !n.reparse {
            // A directory is what its index entry says: its record is read when it is listed
            // (its streams are listed then). Read here too, the record's MFT block was fetched
            // twice through EBS when the MFT was larger than the cache: the walk lists a
            // directory long after its parent.
            out.push(Ok(Entry {
                path,
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: n.mtime,
                ino: rec,
                phys: 0,
            }));
            return;
        }
        let read_now;
        let streams = match streams {
            Some(s) => s,
            None => match guarded(&|| format!("file {}", lossy(&path)), || self.streams(rec)) {
                Ok(mut s) => {
                    self.remember(rec, &mut s, n.dir);
                    read_now = s;
                    &read_now
                }
                Err(e) => {
                    out.push(Err(e.with_inode(rec)));
                    return;
                }
            },
        };
        let link = matches!(streams.reparse, Some(TAG_SYMLINK | TAG_MOUNT_POINT));
        let kind = if link {
            EntryKind::Symlink
        } else if n.dir {
            EntryKind::Dir
        } else if let Some(k) = streams.interix {
            k
        } else {
            EntryKind::File
        };
        let mode = match (kind, n.read_only) {
            (EntryKind::Dir, _) => 0o755,
            (EntryKind::Symlink, _) => 0o777,
            (_, true) => 0o444,
            _ => 0o644,
        };
        let base = record_entry(path, kind, mode, rec, streams);
        push_streams(&streams.named, &base, n.read_only, out);
        more_streams(streams, &base, out);
        out.push(Ok(base));
    }

    /// The entries of record `rec`, which has no `$FILE_NAME`, at `path` (the record sweep):
    /// a regular file and its streams, or a directory, as its record says.
    pub(super) fn nameless_entries(
        &self,
        path: Vec<u8>,
        rec: u64,
        out: &mut Vec<Result<Entry, FsError>>,
    ) {
        let ctx = || format!("MFT record {rec}");
        let dir = guarded(&ctx, || {
            let mut c = self.cursor(RECORD_READS);
            Ok(self.file(&mut c, rec)?.is_directory())
        });
        let streams = match dir.and_then(|d| guarded(&ctx, || self.streams(rec)).map(|s| (d, s))) {
            Ok(s) => s,
            Err(e) => {
                out.push(Err(e.with_inode(rec)));
                return;
            }
        };
        let (dir, streams) = streams;
        let kind = match (dir, streams.reparse, streams.interix) {
            (_, Some(TAG_SYMLINK | TAG_MOUNT_POINT), _) => EntryKind::Symlink,
            (true, _, _) => EntryKind::Dir,
            (_, _, Some(k)) => k,
            _ => EntryKind::File,
        };
        let mode = if kind == EntryKind::Dir { 0o755 } else { 0o644 };
        let base = record_entry(path, kind, mode, rec, &streams);
        if kind == EntryKind::File {
            push_streams(&streams.named, &base, streams.read_only, out);
            more_streams(&streams, &base, out);
        }
        out.push(Ok(base));
    }

    /// The names directory `rec`'s index holds (its Win32 or POSIX names, once each; the
    /// metafiles left out of the root), as [`table::Named`].
    fn index_names(&self, path: &[u8], rec: u64) -> Result<Vec<table::Named>, FsError> {
        let ctx = || format!("directory {}", lossy(path));
        // Through the table's records when there is one: the directory's record need not be
        // fetched again.
        let src = self.table.source(self);
        guarded(&ctx, || {
            let mut c = match src {
                Some(src) => Cursor::new(src).with_read_limit(DIR_READS),
                None => self.cursor(DIR_READS),
            };
            let dir = self.file(&mut c, rec)?;
            let mut names = Vec::new();
            let mut seen = HashSet::new();
            let mut keep = |child: u64, named: table::Named| {
                if (rec == 5 && child < FIRST_USER_RECORD) || child == rec {
                    return Ok(());
                }
                if !seen.insert((child, named.name.clone())) {
                    return Ok(());
                }
                if names.len() >= MAX_DIR_ENTRIES {
                    return Err(NtfsError::Io(io::Error::other(format!(
                        "more than {MAX_DIR_ENTRIES} entries: the index is corrupt or loops"
                    ))));
                }
                names.push(named);
                Ok(())
            };
            // An allocation spread over the attribute list: the crate would read its first
            // extent only (index.rs).
            if let Some(alloc) = index::spread_allocation(&dir, &mut c)? {
                index::entries(&dir, &mut c, &alloc, &mut keep)?;
                return Ok(names);
            }
            let index = dir.directory_index(&mut c)?;
            let mut it = index.entries();
            while let Some(e) = it.next(&mut c) {
                let e = e?;
                let Some(key) = e.key() else { continue };
                let key = key?;
                if key.namespace() == NtfsFileNamespace::Dos {
                    continue;
                }
                let child = e.file_reference().file_record_number();
                keep(child, table::Named::of(&key, child))?;
            }
            Ok(names)
        })
        .map_err(|e| e.with_inode(rec))
    }

    fn list(&self, path: &[u8], rec: u64) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let ctx = || format!("directory {}", lossy(path));
        let names = self.index_names(path, rec)?;
        let mut out = Vec::with_capacity(names.len());
        if rec != 5 {
            // The directory's own alternate data streams (its parent's listing did not read
            // its record).
            let own = match self.table.dir(self, rec) {
                Some(own) => Ok(own),
                None => guarded(&ctx, || self.streams(rec)),
            };
            self.own_streams(path, rec, &own, &mut out);
        }
        for n in &names {
            let mut read = if n.dir && !n.reparse {
                None
            } else {
                self.table.file(self, n.rec)
            };
            if let Some(s) = &mut read {
                // Now, not in the pass: the content scan frees the budget as it opens files.
                self.remember(n.rec, s, n.dir);
            }
            self.named_entries(path, n, read.as_ref(), &mut out);
        }
        Ok(out)
    }

    /// The entries of the alternate data streams of directory `rec` at `path`, as its record
    /// says (`own`).
    fn own_streams(
        &self,
        path: &[u8],
        rec: u64,
        own: &Result<Streams, FsError>,
        out: &mut Vec<Result<Entry, FsError>>,
    ) {
        match own {
            Ok(st) if !st.named.is_empty() => {
                let me = Entry {
                    path: path.to_vec(),
                    kind: EntryKind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    mtime: st.mtime,
                    ino: rec,
                    phys: 0,
                };
                push_streams(&st.named, &me, st.read_only, out);
                more_streams(st, &me, out);
            }
            Ok(_) => {}
            Err(e) => out.push(Err(e.clone().with_inode(rec))),
        }
    }

    /// The record and stream name behind `e`: a path whose last component is `name:stream`
    /// names the stream `stream` of the file, unless the file is named so itself (a POSIX
    /// name may hold a colon).
    fn stream_of(&self, e: &Entry) -> Result<(u64, String), FsError> {
        let ctx = || format!("file {}", e.display_path());
        let last = e.path.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
        let Some(colon) = last.iter().position(|&b| b == b':') else {
            return Ok((e.ino, String::new()));
        };
        let whole = String::from_utf8_lossy(last).into_owned();
        let is_own_name = guarded(&ctx, || {
            let mut c = self.cursor(RECORD_READS);
            let file = self.file(&mut c, e.ino)?;
            let mut it = file.attributes();
            while let Some(item) = it.next(&mut c) {
                let item = item?;
                let attr = item.to_attribute()?;
                match attr.ty()? {
                    NtfsAttributeType::FileName => {
                        let n = attr.structured_value::<_, NtfsFileName>(&mut c)?;
                        if n.name().to_string_lossy() == whole {
                            return Ok(true);
                        }
                    }
                    // Attributes are sorted by type: no name after the first `$DATA` (a file
                    // with thousands of streams would be read through once per stream).
                    NtfsAttributeType::Data => break,
                    _ => {}
                }
            }
            Ok(false)
        })?;
        if is_own_name {
            return Ok((e.ino, String::new()));
        }
        let stream = String::from_utf8_lossy(last.get(colon.saturating_add(1)..).unwrap_or(&[]))
            .into_owned();
        Ok((e.ino, stream))
    }

    fn stream<'a>(&'a self, e: &Entry) -> Result<Stream<'a>, FsError> {
        if e.ino == 0 {
            return Err(other(
                format!("file {}", e.display_path()),
                "no MFT record number",
            ));
        }
        let (rec, name) = self.stream_of(e)?;
        let ctx = || format!("file {}", e.display_path());
        let remembered = if name.is_empty() {
            self.remembered.take(rec)
        } else {
            None
        };
        let info = match remembered {
            Some(info) => {
                *self
                    .last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((rec, info.clone()));
                (*info).clone()
            }
            None => guarded(&ctx, || {
                let mut c = self.cursor(RECORD_READS);
                let file = self.file(&mut c, rec)?;
                open_info(&file, &mut c, &name, self.ntfs.cluster_size(), false)
            })?,
        };
        let len = info.map_err(|m| {
            if m.corrupt {
                FsError::Corrupt {
                    context: ctx(),
                    message: m.message,
                    at: Default::default(),
                }
            } else {
                FsError::Incompatible {
                    context: ctx(),
                    message: m.message,
                    at: Default::default(),
                }
            }
        })?;
        let Opened {
            len,
            compressed,
            direct,
            resident,
        } = len;
        Ok(Stream {
            reader: self,
            rec,
            name,
            len,
            pos: 0,
            buf: Vec::new(),
            buf_at: 0,
            compressed,
            direct,
            resident,
        })
    }
}

/// How to read the `$DATA` stream named `name` ("" for the unnamed one) of `file` (see
/// [`OpenInfo`]); `Ok(Err(reason))` when it cannot be read. `keep_resident`: a resident
/// stream's content is copied too.
fn open_info<T: Read + Seek>(
    file: &NtfsFile<'_>,
    c: &mut T,
    name: &str,
    cluster: u32,
    keep_resident: bool,
) -> Result<OpenInfo, NtfsError> {
    let info = file.info()?;
    let flags = info.file_attributes();
    if flags.contains(NtfsFileAttributeFlags::ENCRYPTED) {
        return Ok(Err("EFS-encrypted: its content cannot be read"
            .to_string()
            .into()));
    }
    if name.is_empty() {
        match reparse_tag(file, c)? {
            Some(TAG_WOF) => {
                return Ok(Err(
                    "compressed by WOF (CompactOS, XPRESS/LZX): its content was not read"
                        .to_string()
                        .into(),
                ));
            }
            Some(TAG_DEDUP) => {
                return Ok(Err(
                    "deduplicated (its content is in the chunk store): not read"
                        .to_string()
                        .into(),
                ));
            }
            _ => {}
        }
    }
    // A value spread over an attribute list: its run list assembled from the extents the
    // list names (the crate reads it only up to its first extent).
    if let Some(spread) = extents::spread(file, c, NtfsAttributeType::Data, name, MAX_RUNS)? {
        return Ok(spread_info(spread, cluster));
    }
    let Some(item) = data_item(file, c, name)? else {
        return Ok(Err(format!("no $DATA stream named {name:?}").into()));
    };
    let attr = item.to_attribute()?;
    if attr.flags().contains(NtfsAttributeFlags::ENCRYPTED) {
        return Ok(Err("encrypted: its content cannot be read"
            .to_string()
            .into()));
    }
    let len = attr.value_length();
    if attr.is_resident() {
        let resident = if keep_resident && len <= RESIDENT_MAX {
            let mut v = attr.value(c)?;
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            v.read_exact(c, &mut buf)?;
            Some(Arc::from(buf))
        } else {
            None
        };
        return Ok(Ok(Opened {
            len,
            compressed: None,
            direct: None,
            resident,
        }));
    }
    if !attr.flags().contains(NtfsAttributeFlags::COMPRESSED) {
        let direct = match data_runs(&attr, c, cluster)? {
            Runs::Listed(runs) => Some(Arc::new(runs)),
            Runs::AttributeList | Runs::TooMany => None,
        };
        return Ok(Ok(Opened {
            len,
            compressed: None,
            direct,
            resident: None,
        }));
    }
    match compressed_runs(&attr, c, cluster)? {
        Ok(runs) => Ok(Ok(Opened {
            len,
            compressed: Some(Arc::new(runs)),
            direct: None,
            resident: None,
        })),
        Err(m) => Ok(Err(m.into())),
    }
}

/// How to read a stream whose extents [`extents::spread`] assembled (or why not).
fn spread_info(spread: Result<extents::Spread, String>, cluster: u32) -> OpenInfo {
    let s = spread.map_err(|message| Refused {
        corrupt: true,
        message: format!("its $DATA is spread over an attribute list that is malformed: {message}"),
    })?;
    let flags = NtfsAttributeFlags::from_bits_truncate(s.flags);
    if flags.contains(NtfsAttributeFlags::ENCRYPTED) {
        return Err("encrypted: its content cannot be read".to_string().into());
    }
    let runs = Arc::new(DataRuns {
        cluster: u64::from(cluster).max(1),
        runs: s.runs,
    });
    if !flags.contains(NtfsAttributeFlags::COMPRESSED) {
        return Ok(Opened {
            len: s.len,
            compressed: None,
            direct: Some(runs),
            resident: None,
        });
    }
    if cluster > 4096 {
        return Err(format!(
            "LZNT1-compressed with {cluster}-byte clusters (NTFS compresses only up to 4 KiB): not read"
        )
        .into());
    }
    Ok(Opened {
        len: s.len,
        compressed: Some(runs),
        direct: None,
        resident: None,
    })
}

/// The `$DATA` attribute named `name` ("" for the unnamed one) of `file`, compared exactly.
pub(super) fn data_item<'n, 'f, T: Read + Seek>(
    file: &'f NtfsFile<'n>,
    c: &mut T,
    name: &str,
) -> Result<Option<ntfs::NtfsAttributeItem<'n, 'f>>, NtfsError> {
    let mut it = file.attributes();
    while let Some(item) = it.next(c) {
        let item = item?;
        let attr = item.to_attribute()?;
        if attr.ty()? == NtfsAttributeType::Data && attr.name()?.to_string_lossy() == name {
            return Ok(Some(item));
        }
    }
    Ok(None)
}

/// One stream of a file, read a chunk at a time: each chunk loads the record again (the crate's
/// values borrow their record, which borrows the volume), so nothing is held between reads but
/// the chunk.
struct Stream<'a> {
    reader: &'a NtfsReader,
    rec: u64,
    name: String,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_at: u64,
    /// The run list of an LZNT1-compressed stream, read through [`DataRuns`] instead of the
    /// crate.
    compressed: Option<Arc<DataRuns>>,
    /// The run list of an uncompressed non-resident stream, read straight from the volume.
    /// (Through the crate each chunk loaded the file's record again: on a volume read through
    /// EBS the record's MFT block had often been evicted by the data read since, and was
    /// fetched again, 1.26× the blocks needed.)
    direct: Option<Arc<DataRuns>>,
    /// The content of a resident stream, kept from the walk.
    resident: Option<Arc<[u8]>>,
}

/// Clusters per compression unit: NTFS compresses in units of 16 clusters (a compression unit
/// exponent of 4, the only one Windows and ntfs-3g write), with clusters of at most 4 KiB.
const CU_CLUSTERS: u64 = 16;
/// Most data runs of one compressed stream (each run is 24 bytes here).
const MAX_RUNS: usize = 1 << 20;

/// The data runs of a non-resident stream: (first VCN, clusters, byte position on the volume or
/// `None` for a sparse run), in VCN order.
struct DataRuns {
    cluster: u64,
    runs: Vec<(u64, u64, Option<u64>)>,
}

/// The runs of the compressed non-resident attribute `attr`; `Err(message)` when it cannot be
/// read this way (an attribute list, clusters larger than 4 KiB).
fn compressed_runs<T: Read + Seek>(
    attr: &ntfs::NtfsAttribute<'_, '_>,
    c: &mut T,
    cluster: u32,
) -> Result<Result<DataRuns, String>, NtfsError> {
    if cluster > 4096 {
        return Ok(Err(format!(
            "LZNT1-compressed with {cluster}-byte clusters (NTFS compresses only up to 4 KiB): not read"
        )));
    }
    Ok(match data_runs(attr, c, cluster)? {
        Runs::Listed(runs) => Ok(runs),
        Runs::AttributeList => {
            Err("LZNT1-compressed across an attribute list: its content was not read".into())
        }
        Runs::TooMany => Err(format!(
            "LZNT1-compressed in more than {MAX_RUNS} runs: not read"
        )),
    })
}

/// What [`data_runs`] found.
enum Runs {
    Listed(DataRuns),
    /// The value is spread over an attribute list the crate connects (one [`extents::spread`]
    /// did not take): only the crate reads it.
    AttributeList,
    /// More than [`MAX_RUNS`] runs.
    TooMany,
}

/// The data runs of the non-resident attribute `attr`, as the crate reads them.
fn data_runs<T: Read + Seek>(
    attr: &ntfs::NtfsAttribute<'_, '_>,
    c: &mut T,
    cluster: u32,
) -> Result<Runs, NtfsError> {
    let cluster = u64::from(cluster).max(1);
    let ntfs::attribute_value::NtfsAttributeValue::NonResident(nr) = attr.value(c)? else {
        return Ok(Runs::AttributeList);
    };
    let mut runs = Vec::new();
    let mut vcn = 0u64;
    for run in nr.data_runs() {
        let run = run?;
        if runs.len() >= MAX_RUNS {
            return Ok(Runs::TooMany);
        }
        let n = run.allocated_size() / cluster;
        runs.push((vcn, n, run.data_position().value().map(|p| p.get())));
        vcn = vcn.saturating_add(n);
    }
    Ok(Runs::Listed(DataRuns { cluster, runs }))
}

impl DataRuns {
    /// The byte ranges of a stream of `len` bytes that its runs hold on the volume (sparse
    /// runs are holes), as [`FsReader::data_ranges`] gives them.
    fn ranges(&self, len: u64) -> Vec<std::ops::Range<u64>> {
        self.runs
            .iter()
            .filter(|r| r.2.is_some())
            .map(|&(vcn, n, _)| {
                let at = vcn.saturating_mul(self.cluster);
                at.min(len)..at.saturating_add(n.saturating_mul(self.cluster)).min(len)
            })
            .filter(|r| r.start < r.end)
            .collect()
    }

    /// Where cluster `vcn` is on the volume (`None`: sparse, or past the runs).
    fn locate(&self, vcn: u64) -> Option<u64> {
        let i = self.runs.partition_point(|r| r.0 <= vcn).checked_sub(1)?;
        let (start, n, pos) = *self.runs.get(i)?;
        if vcn >= start.saturating_add(n) {
            return None;
        }
        pos?.checked_add(vcn.checked_sub(start)?.checked_mul(self.cluster)?)
    }

    /// The decompressed compression unit `k` (16 clusters): all sparse is zeros, all allocated
    /// is stored as it is, else its allocated clusters hold LZNT1 data.
    fn unit(&self, src: &SharedSource, k: u64) -> io::Result<Vec<u8>> {
        let size =
            usize::try_from(self.cluster.saturating_mul(CU_CLUSTERS)).map_err(io::Error::other)?;
        let cl = usize::try_from(self.cluster).map_err(io::Error::other)?;
        let first = k.saturating_mul(CU_CLUSTERS);
        let mut raw = Vec::with_capacity(size);
        let mut allocated = 0u64;
        for v in first..first.saturating_add(CU_CLUSTERS) {
            let Some(at) = self.locate(v) else { break };
            let mut b = vec![0u8; cl];
            src.read_at(at, &mut b).map_err(io::Error::other)?;
            raw.extend_from_slice(&b);
            allocated = allocated.saturating_add(1);
        }
        match allocated {
            0 => Ok(vec![0u8; size]),
            CU_CLUSTERS => Ok(raw),
            _ => super::lznt1::decompress(&raw, size).map_err(io::Error::other),
        }
    }
}

impl Stream<'_> {
    /// Fill the buffer with the compression unit holding `pos`.
    fn fill_compressed(&mut self, runs: &DataRuns) -> io::Result<()> {
        let unit = runs.cluster.saturating_mul(CU_CLUSTERS);
        let k = self.pos / unit.max(1);
        let mut data = runs
            .unit(&self.reader.src, k)
            .map_err(|e| io::Error::other(format!("MFT record {}: {e}", self.rec)))?;
        let start = k.saturating_mul(unit);
        let keep = usize::try_from(self.len.saturating_sub(start).min(unit)).unwrap_or(0);
        data.truncate(keep);
        self.buf = data;
        self.buf_at = start;
        Ok(())
    }

    /// Fill the buffer with the chunk at `pos` of an uncompressed stream, read from its runs:
    /// sparse runs are zeros, and a stream longer than its runs ends in an error, as through
    /// the crate.
    fn fill_direct(&mut self, runs: &DataRuns, want: usize) -> io::Result<()> {
        let rec = self.rec;
        let mut buf = vec![0u8; want];
        let mut got = 0usize;
        while got < want {
            let at = self
                .pos
                .saturating_add(u64::try_from(got).unwrap_or(u64::MAX));
            let vcn = at / runs.cluster;
            let run = runs
                .runs
                .partition_point(|r| r.0 <= vcn)
                .checked_sub(1)
                .and_then(|i| runs.runs.get(i))
                .filter(|r| vcn < r.0.saturating_add(r.1));
            let Some(&(start, n, pos)) = run else {
                return Err(io::Error::other(format!(
                    "MFT record {rec}: the stream ends at {at} of {} bytes (its data runs end)",
                    self.len
                )));
            };
            let run_start = start.saturating_mul(runs.cluster);
            let run_end = start.saturating_add(n).saturating_mul(runs.cluster);
            let take = usize::try_from(run_end.saturating_sub(at))
                .unwrap_or(usize::MAX)
                .min(want - got);
            let out = buf
                .get_mut(got..got.saturating_add(take))
                .unwrap_or(&mut []);
            if let Some(p) = pos {
                let from = p.saturating_add(at.saturating_sub(run_start));
                self.reader
                    .src
                    .read_at(from, out)
                    .map_err(|e| io::Error::other(format!("MFT record {rec}: {e}")))?;
            }
            got = got.saturating_add(take.max(1));
        }
        self.buf = buf;
        self.buf_at = self.pos;
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        if let Some(runs) = self.compressed.clone() {
            return self.fill_compressed(&runs);
        }
        let want = usize::try_from(self.len.saturating_sub(self.pos))
            .unwrap_or(usize::MAX)
            .min(CHUNK);
        if let Some(runs) = self.direct.clone() {
            return self.fill_direct(&runs, want);
        }
        if let Some(data) = &self.resident {
            let from = usize::try_from(self.pos).unwrap_or(usize::MAX);
            let chunk = data
                .get(from..from.saturating_add(want))
                .filter(|c| c.len() == want)
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "MFT record {}: the stream ends at {} of {} bytes",
                        self.rec,
                        data.len(),
                        self.len
                    ))
                })?;
            self.buf = chunk.to_vec();
            self.buf_at = self.pos;
            return Ok(());
        }
        let r = self.reader;
        let (rec, pos) = (self.rec, self.pos);
        let name = self.name.clone();
        let ctx = || format!("MFT record {rec}");
        let data = guarded(&ctx, || {
            let mut c = r.cursor(CHUNK_READS);
            let file = r.file(&mut c, rec)?;
            let Some(item) = data_item(&file, &mut c, &name)? else {
                return Err(NtfsError::Io(io::Error::other("the $DATA stream is gone")));
            };
            let attr = item.to_attribute()?;
            let mut v = attr.value(&mut c)?;
            v.seek(&mut c, SeekFrom::Start(pos))?;
            let mut buf = vec![0u8; want];
            let mut got = 0usize;
            while got < want {
                let n = v.read(&mut c, buf.get_mut(got..).unwrap_or(&mut []))?;
                if n == 0 {
                    break;
                }
                got = got.saturating_add(n);
            }
            buf.truncate(got);
            Ok(buf)
        })
        .map_err(io::Error::other)?;
        if data.len() < want {
            return Err(io::Error::other(format!(
                "MFT record {rec}: the stream ends at {} of {} bytes",
                pos.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX)),
                self.len
            )));
        }
        self.buf = data;
        self.buf_at = pos;
        Ok(())
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let end = self
            .buf_at
            .saturating_add(u64::try_from(self.buf.len()).unwrap_or(u64::MAX));
        if self.pos < self.buf_at || self.pos >= end {
            self.fill()?;
        }
        let off = usize::try_from(self.pos.saturating_sub(self.buf_at)).unwrap_or(usize::MAX);
        let avail = self.buf.get(off..).unwrap_or(&[]);
        let n = avail.len().min(out.len());
        out.get_mut(..n)
            .unwrap_or(&mut [])
            .copy_from_slice(avail.get(..n).unwrap_or(&[]));
        self.pos = self
            .pos
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }
}

impl Seek for Stream<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

impl FsReader for NtfsReader {
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let rec = self.resolve(path)?;
        self.list(path, rec)
    }

    fn list_dir_at(&self, path: &[u8], ino: u64) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        if ino == 0 {
            return self.list_dir(path);
        }
        self.list(path, ino)
    }

    fn open_file<'a>(&'a self, e: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        Ok(Box::new(self.stream(e)?))
    }

    fn open_seekable<'a>(&'a self, e: &Entry) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        Ok(Some(Box::new(self.stream(e)?)))
    }

    /// The allocated runs of an uncompressed non-resident stream (sparse runs are holes; one
    /// spread over an attribute list too). A resident or compressed stream is read whole.
    fn data_ranges(&self, e: &Entry) -> Result<Option<Vec<std::ops::Range<u64>>>, FsError> {
        if e.ino == 0 {
            return Ok(None);
        }
        let (rec, name) = self.stream_of(e)?;
        if name.is_empty() {
            let last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if let Some((r, info)) = last
                && r == rec
            {
                match &*info {
                    Ok(Opened {
                        len,
                        compressed: None,
                        direct: Some(runs),
                        ..
                    }) => return Ok(Some(runs.ranges(*len))),
                    // Compressed or resident: read whole.
                    Ok(Opened {
                        compressed: Some(_),
                        ..
                    })
                    | Ok(Opened {
                        resident: Some(_), ..
                    }) => return Ok(None),
                    _ => {}
                }
            }
        }
        let ctx = || format!("file {}", e.display_path());
        let info = guarded(&ctx, || {
            let mut c = self.cursor(RECORD_READS);
            let file = self.file(&mut c, rec)?;
            open_info(&file, &mut c, &name, self.ntfs.cluster_size(), false)
        })?;
        // Uncompressed and non-resident: its runs; otherwise read whole (a stream that cannot
        // be read reports it when it is opened).
        Ok(match info {
            Ok(Opened {
                len,
                compressed: None,
                direct: Some(runs),
                ..
            }) => Some(runs.ranges(len)),
            _ => None,
        })
    }

    fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
        let ctx = || format!("symlink {}", e.display_path());
        let data = guarded(&ctx, || {
            let mut c = self.cursor(RECORD_READS);
            let file = self.file(&mut c, e.ino)?;
            let data = reparse_data(&file, &mut c)?;
            if !data.is_empty() {
                return Ok(data);
            }
            // An Interix link: the target in UTF-16 after the tag.
            let Some(item) = data_item(&file, &mut c, "")? else {
                return Ok(Vec::new());
            };
            let attr = item.to_attribute()?;
            let mut v = attr.value(&mut c)?;
            let len = usize::try_from(v.len().min(INTERIX_MAX)).unwrap_or(0);
            let mut buf = vec![0u8; len];
            v.read_exact(&mut c, &mut buf)?;
            Ok(buf)
        })?;
        link_target(&data).ok_or_else(|| FsError::Corrupt {
            context: ctx(),
            message: "the reparse point holds no link target".into(),
            at: Default::default(),
        })
    }
}

/// The print name of a symbolic link or junction's reparse data, as UTF-8 with `/`.
fn link_target(data: &[u8]) -> Option<Vec<u8>> {
    let u16_at = |o: usize| -> Option<usize> {
        let b = data.get(o..o.checked_add(2)?)?;
        Some(usize::from(u16::from_le_bytes([*b.first()?, *b.get(1)?])))
    };
    if let Some(target) = data.strip_prefix(INTERIX_LINK) {
        let units: Vec<u16> = target
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        return Some(String::from_utf16_lossy(&units).into_bytes());
    }
    let tag = u32::from_le_bytes(data.get(..4)?.try_into().ok()?);
    let buffer = match tag {
        TAG_SYMLINK => 20usize,
        TAG_MOUNT_POINT => 16,
        _ => return None,
    };
    let (mut off, mut len) = (u16_at(12)?, u16_at(14)?);
    if len == 0 {
        // No print name: the substitute name.
        (off, len) = (u16_at(8)?, u16_at(10)?);
    }
    let start = buffer.checked_add(off)?;
    let raw = data.get(start..start.checked_add(len)?)?;
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    Some(
        String::from_utf16_lossy(&units)
            .replace('\\', "/")
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_times_convert_to_unix_seconds() {
        assert_eq!(unix_time(116_444_736_000_000_000), 0);
        assert_eq!(unix_time(0), -NT_TO_UNIX);
    }

    #[test]
    fn a_symlink_reparse_point_gives_its_print_name() {
        let name: Vec<u8> = "C:\\Users\\x"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut d = Vec::new();
        d.extend_from_slice(&TAG_SYMLINK.to_le_bytes());
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&0u16.to_le_bytes()); // substitute offset
        d.extend_from_slice(&0u16.to_le_bytes()); // substitute length
        d.extend_from_slice(&0u16.to_le_bytes()); // print offset
        d.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
        d.extend_from_slice(&[0; 4]); // flags
        d.extend_from_slice(&name);
        assert_eq!(link_target(&d).unwrap(), b"C:/Users/x");
        assert_eq!(link_target(&d[..10]), None);
        assert_eq!(link_target(&[0u8; 32]), None);
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let mut b = vec![0u8; 1 << 20];
        b[3..11].copy_from_slice(b"NTFS    ");
        for (i, x) in b.iter_mut().enumerate().skip(11).take(500) {
            *x = u8::try_from(i % 251).unwrap();
        }
        let src: SharedSource = Arc::new(crate::source::MemSource::new(b, "mem"));
        assert!(NtfsFs::open(src).is_err());
    }
}
