//! The MFT of an NTFS volume read in record order before a full walk
//! ([`Filesystem::will_walk_whole`](crate::fs::Filesystem::will_walk_whole)).
//!
//! A walk from the root reads a directory's index, then the record of every file it names, in
//! the order of the tree: all over `$MFT`. Through EBS, with an `$MFT` larger than the block
//! cache (a Windows root's is 200–500 MiB, the default cache 144 MiB), a block holding the
//! records of several files or directories was evicted before the walk came back to it, and
//! fetched again.
//!
//! So at the first listing of a full walk, the table reads every record `$MFT`'s `$BITMAP` marks
//! in use, in record order, several threads taking consecutive chunks, and keeps:
//! - for a regular file, what its entries need ([`Kept`]: size, time, alternate data streams,
//!   reparse tag), and how to open its unnamed `$DATA` (run list, or resident content), which
//!   goes to [`Remembered`](super::Remembered) for the content scan when the file's name is
//!   listed (filled in record order, its budget would hold only the first files);
//! - for a directory, its own streams, and its record as it is on disk ([`Held`]), with
//!   `$MFT`'s own record: the listings read each index through them, so a directory's record
//!   is not fetched again when it is listed.
//!
//! The index stays what names a file (a record no index names is still the sweep's,
//! [`super::sweep`]). What the pass could not read is left out and read by the listing as
//! without the table, which reports the error with its path. Bounded: past [`TABLE_BYTES`]
//! (estimated) or [`TABLE_RECORDS`] the pass stops, and the records it did not keep are read by
//! the listings, record by record; the table is dropped when the walk ends.

use super::{FIRST_USER_RECORD, NtfsReader, Streams, guarded};
use crate::source::{SharedSource, Source, SourceError};
use ntfs::NtfsFileFlags;
use ntfs::structured_values::{NtfsFileAttributeFlags, NtfsFileName};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Most memory (estimated) the table may take; past it, the pass stops (the listings read the
/// records it did not keep). About 100 bytes a file read locally, with a resident content
/// through EBS up to 1 KiB more, and 1 KiB a directory.
const TABLE_BYTES: usize = 96 << 20;
/// Records each thread of the pass reads at a time (256 KiB of 1 KiB records).
const CHUNK_RECORDS: u64 = 256;
/// Most records the pass reads (a Windows root has 200,000–500,000 in use; at about 100 bytes
/// each, more would not fit [`TABLE_BYTES`] anyway): a hostile `$MFT` bitmap marking billions
/// in use costs the pass no more than this.
const TABLE_RECORDS: u64 = 2_000_000;
/// Threads of the pass on a remote source (each mostly waits for a block).
const REMOTE_THREADS: usize = 16;

/// One name of a directory's index: the entry for a file or directory, as its key
/// (`$FILE_NAME`) says.
pub(super) struct Named {
    /// The name, as UTF-8 (lossy).
    pub(super) name: String,
    /// Its record.
    pub(super) rec: u64,
    /// The entry names a directory.
    pub(super) dir: bool,
    /// The entry names a reparse point (a junction is not walked).
    pub(super) reparse: bool,
    pub(super) read_only: bool,
    /// Modification time (Unix seconds).
    pub(super) mtime: i64,
}

impl Named {
    /// The entry of index key `n` for record `rec`.
    pub(super) fn of(n: &NtfsFileName, rec: u64) -> Named {
        let attrs = n.file_attributes();
        Named {
            name: n.name().to_string_lossy(),
            rec,
            dir: n.is_directory(),
            reparse: attrs.contains(NtfsFileAttributeFlags::REPARSE_POINT),
            read_only: attrs.contains(NtfsFileAttributeFlags::READ_ONLY),
            mtime: super::unix_time(n.modification_time().nt_timestamp()),
        }
    }
}

/// What the table keeps of a record: its [`Streams`], with how to open its unnamed `$DATA`
/// until its name is listed (then it goes to [`Remembered`](super::Remembered), whose budget
/// the content scan frees as it opens files).
pub(super) struct Kept(Streams);

impl Kept {
    /// The record's [`Streams`] again, with how to open it the first time (a hard link's
    /// other names get `None`: [`Remembered`](super::Remembered) keeps it once per name).
    fn take(&mut self) -> Streams {
        let open = self.0.open.take();
        Streams {
            open,
            ..self.0.clone()
        }
    }

    /// Estimated bytes it takes in the table.
    fn cost(&self) -> usize {
        std::mem::size_of::<(u64, Kept)>()
            + 16
            + self.0.open.as_ref().map_or(0, super::Remembered::cost)
            + self
                .0
                .named
                .iter()
                .map(|(n, _)| n.len() + std::mem::size_of::<(String, u64)>())
                .sum::<usize>()
    }
}

/// What the pass read: each regular file's record and each directory's own streams, and the
/// directories' records themselves (with `$MFT`'s, which locates every record).
#[derive(Default)]
struct Built {
    files: HashMap<u64, Kept>,
    dirs: HashMap<u64, Kept>,
    held: Option<Arc<Held>>,
}

/// The volume, with some of its MFT records served from memory as the pass read them (raw, as
/// on disk): the listings read each directory's record again to go through its index, long
/// after the pass, when its MFT block has left the cache.
struct Held {
    inner: SharedSource,
    /// Records by their byte position on the volume (not always a multiple of the record
    /// size: an MFT run may start on any cluster).
    records: BTreeMap<u64, Box<[u8]>>,
}

impl Source for Held {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let held = self
            .records
            .range(..=offset)
            .next_back()
            .and_then(|(at, r)| {
                let from = usize::try_from(offset - at).ok()?;
                r.get(from..from.checked_add(buf.len())?)
            });
        if let Some(held) = held {
            buf.copy_from_slice(held);
            return Ok(());
        }
        self.inner.read_at(offset, buf)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn remote(&self) -> bool {
        self.inner.remote()
    }

    fn ready(&self, offset: u64, len: u64) -> bool {
        self.inner.ready(offset, len)
    }
}

/// The table of a volume: built once, the first time a full walk lists a directory.
#[derive(Default)]
pub(super) struct Table {
    wanted: AtomicBool,
    built: OnceLock<Mutex<Built>>,
}

impl Table {
    /// The next walk lists every directory: build the table at its first listing.
    pub(super) fn want(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    /// The table, built now if it is wanted and not yet built; `None` when not wanted.
    fn get(&self, r: &NtfsReader) -> Option<&Mutex<Built>> {
        if !self.wanted.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.built.get_or_init(|| Mutex::new(build(r))))
    }

    /// What the pass read of regular file `rec` (kept for each of its names; how to open it
    /// given with the first).
    pub(super) fn file(&self, r: &NtfsReader, rec: u64) -> Option<Streams> {
        lock(self.get(r)?).files.get_mut(&rec).map(Kept::take)
    }

    /// The volume as the listings read it: the directories' records held (`None`: no table).
    pub(super) fn source(&self, r: &NtfsReader) -> Option<SharedSource> {
        let held: SharedSource = lock(self.get(r)?).held.clone()?;
        Some(held)
    }

    /// What the pass read of directory `rec`'s own record, taken out of the table.
    pub(super) fn dir(&self, r: &NtfsReader, rec: u64) -> Option<Streams> {
        lock(self.get(r)?).dirs.remove(&rec).map(|mut k| k.take())
    }

    /// The walk is over: the table is dropped (later listings read the records).
    pub(super) fn done(&self) {
        self.wanted.store(false, Ordering::Relaxed);
        if let Some(t) = self.built.get() {
            *lock(t) = Built::default();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the pass read of one record in use.
struct Read {
    rec: u64,
    streams: Kept,
    /// A directory: its record as on disk, and where.
    dir: Option<(u64, Box<[u8]>)>,
}

/// Read the table: empty when it cannot be made (no usable `$MFT` bitmap), so the walk reads
/// each record when it lists it. Past [`TABLE_BYTES`] or [`TABLE_RECORDS`] the pass stops and
/// keeps what it read; the records after are read by the listings.
fn build(r: &NtfsReader) -> Built {
    let Ok((runs, None)) =
        super::sweep::records(&r.src, &r.ntfs, super::sweep::Want::Unreached, &|_| false)
    else {
        return Built::default();
    };
    let mut chunks: Vec<std::ops::Range<u64>> = Vec::new();
    let mut left = TABLE_RECORDS;
    for run in runs {
        let mut at = run.start;
        while at < run.end && left > 0 {
            let end = at.saturating_add(CHUNK_RECORDS.min(left)).min(run.end);
            chunks.push(at..end);
            left -= end - at;
            at = end;
        }
    }
    let threads = if r.src.remote() {
        REMOTE_THREADS
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
    };
    let bytes = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let read: Mutex<Vec<Read>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = Vec::new();
                'chunks: while let Some(chunk) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                    for rec in chunk.clone() {
                        let Some(one) = read_record(r, rec) else {
                            continue;
                        };
                        let cost = one
                            .streams
                            .cost()
                            .saturating_add(one.dir.as_ref().map_or(0, |d| d.1.len() + 64));
                        if bytes
                            .fetch_add(cost, Ordering::Relaxed)
                            .saturating_add(cost)
                            > TABLE_BYTES
                        {
                            next.store(chunks.len(), Ordering::Relaxed);
                            break 'chunks;
                        }
                        mine.push(one);
                    }
                }
                lock(&read).append(&mut mine);
            });
        }
    });
    let mut built = Built::default();
    let size = u64::from(r.ntfs.file_record_size());
    let mut records = BTreeMap::new();
    // `$MFT`'s own record: every record is located through it.
    let mft = r.ntfs.mft_position().value().map_or(0, |p| p.get());
    let mut raw = vec![0u8; usize::try_from(size).unwrap_or(0)].into_boxed_slice();
    if r.src.read_at(mft, &mut raw).is_ok() {
        records.insert(mft, raw);
    }
    for one in read
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        match one.dir {
            Some((at, raw)) => {
                records.insert(at, raw);
                built.dirs.insert(one.rec, one.streams);
            }
            None => {
                built.files.insert(one.rec, one.streams);
            }
        }
    }
    built.held = Some(Arc::new(Held {
        inner: r.src.clone(),
        records,
    }));
    built
}

/// Record `rec` as the pass keeps it; `None` when it holds no file or directory (not in use,
/// an extension record: no `$STANDARD_INFORMATION`) or cannot be read (read again, and
/// reported, if an index names it).
fn read_record(r: &NtfsReader, rec: u64) -> Option<Read> {
    let (streams, dir) = guarded(&String::new, || {
        let mut c = r.cursor(super::RECORD_READS);
        let file = r.file(&mut c, rec)?;
        if !file.flags().contains(NtfsFileFlags::IN_USE) {
            return Ok(None);
        }
        let streams = r.streams_of(&file, &mut c)?;
        let dir = match file.position().value() {
            Some(at) if file.is_directory() => {
                let size = usize::try_from(r.ntfs.file_record_size()).unwrap_or(0);
                let mut raw = vec![0u8; size].into_boxed_slice();
                r.src
                    .read_at(at.get(), &mut raw)
                    .map_err(|e| ntfs::NtfsError::Io(std::io::Error::other(e)))?;
                Some((at.get(), raw))
            }
            _ => None,
        };
        Ok(Some((streams, dir)))
    })
    .ok()??;
    let mut streams = streams;
    if rec < FIRST_USER_RECORD || dir.is_some() {
        // Never opened as a file by the content scan.
        streams.open = None;
    }
    Some(Read {
        rec,
        streams: Kept(streams),
        dir,
    })
}
