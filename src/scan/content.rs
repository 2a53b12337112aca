//! Scan the content of every regular file in parallel: each rayon worker opens its own reader on
//! the filesystem and streams files through the detector, opening archives and compressed
//! files on the way (see [`super::archive`]; a file is opened for reading at any offset where
//! the filesystem allows it, so a zip of any size is opened by offset). Files are taken in
//! physical order ([`scan_files`]) or, on a remote source, as a walk finds them and their
//! blocks arrive ([`scan_during`]).

use super::VolumeProgress;
use super::archive::{self, FileMeta, Limits};
use super::reuse::{Plan, Reuse};
use super::sparse;
use crate::detect::{DetectOptions, Detector};
use crate::fs::{Entry, Filesystem, SeekRead};
use crate::report::{Finding, ScanError};
use md5::{Digest, Md5};
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Most file digests kept for the volume checks.
const MAX_DIGESTS: usize = 4096;
/// Largest file with a secret finding hashed again right after its scan, for provenance.
const MAX_REHASH_BYTES: u64 = 16 << 20;
/// Most bytes hashed again that way on one volume (the rest provenance reads itself).
const MAX_REHASH_TOTAL: u64 = 256 << 20;

/// The MD5s of the files the volume checks verify ([`Detector::wants_md5`]), computed while
/// the content scan streams them, by real path; the checks get them through
/// [`crate::detect::FileLookup::md5`] instead of reading the files again. Also the MD5s of
/// files with a secret finding, for provenance (see `scan_one`).
#[derive(Default)]
pub struct Digests(Mutex<HashMap<Vec<u8>, [u8; 16]>>, AtomicU64);

impl Digests {
    pub(crate) fn insert(&self, path: &[u8], digest: [u8; 16]) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() < MAX_DIGESTS {
            m.insert(path.to_vec(), digest);
        }
    }

    /// Whether a file of `size` bytes may be hashed again for provenance, counting it if so:
    /// half the room at most (the rest stays for the files the checks verify), and at most
    /// [`MAX_REHASH_TOTAL`] bytes in all.
    fn room_for_provenance(&self, size: u64) -> bool {
        if self.0.lock().unwrap_or_else(PoisonError::into_inner).len() >= MAX_DIGESTS / 2 {
            return false;
        }
        self.1
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(size).filter(|&t| t <= MAX_REHASH_TOTAL)
            })
            .is_ok()
    }

    /// The MD5 of the whole file at real path `path`, when the content scan read all of it.
    pub fn get(&self, path: &[u8]) -> Option<[u8; 16]> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .copied()
    }
}

/// A file's content as the filesystem gives it: readable at any offset, or only as a stream.
enum Content<'a> {
    Seek(Box<dyn SeekRead + 'a>),
    Stream(Box<dyn Read + 'a>),
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Content::Seek(r) => r.read(buf),
            Content::Stream(r) => r.read(buf),
        }
    }
}

impl Seek for Content<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match self {
            Content::Seek(r) => r.seek(to),
            Content::Stream(_) => Err(std::io::Error::other("content read only as a stream")),
        }
    }
}

/// A reader that hashes what passes through it.
struct Tap<R> {
    inner: R,
    md5: Md5,
    read: u64,
    /// A seek went elsewhere than where the reads had got to: the digest is not the file's.
    jumped: bool,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.read = self.read.saturating_add(n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for Tap<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let at = self.inner.seek(to)?;
        if at != self.read {
            self.jumped = true;
        }
        Ok(at)
    }
}

/// Totals for one volume's files.
#[derive(Default)]
pub struct ContentResult {
    /// Findings, with `volume` still empty.
    pub findings: Vec<Finding>,
    /// Files read to their end (an archive counts once, when all of it was read).
    pub files_scanned: u64,
    /// Bytes of content given to the detector (decompressed bytes inside compressed files).
    pub bytes_scanned: u64,
    /// Files not read because a file with the same content (a btrfs snapshot's unchanged
    /// file) was: its findings are reported at their path too (see [`super::reuse`]).
    pub files_shared: u64,
    /// Files that could not be opened or read completely.
    pub errors: Vec<ScanError>,
}

struct One {
    findings: Vec<Finding>,
    bytes: u64,
    complete: bool,
    errors: Vec<ScanError>,
    /// Not read: the findings of a file with the same content.
    shared: bool,
}

/// [`scan_one`], unless a file with the same content was read already (then its findings at
/// this path) or is being read by another worker (then `None`: set aside in `reuse`).
fn scan_entry(
    reader: &Result<Box<dyn crate::fs::FsReader>, crate::fs::FsError>,
    entry: &Entry,
    scanner: &Scanner<'_>,
    digests: &Digests,
) -> Option<One> {
    let Scanner {
        det,
        opts,
        limits,
        reuse,
    } = *scanner;
    let plan = match reader {
        Ok(r) => reuse.plan(r.as_ref(), entry, det),
        Err(_) => Plan::Read(None),
    };
    match plan {
        Plan::Wait => {
            reuse.defer(entry);
            None
        }
        Plan::Reuse(first) => {
            let path = String::from_utf8_lossy(&entry.path);
            Some(One {
                findings: super::reuse::rebase(&first, &path),
                bytes: 0,
                complete: true,
                errors: Vec::new(),
                shared: true,
            })
        }
        Plan::Read(key) => {
            let one = scan_one(reader, entry, det, opts, limits, digests);
            if let Some(key) = key {
                let path = String::from_utf8_lossy(&entry.path);
                reuse.done(key, &path, one.complete, &one.findings);
            }
            Some(one)
        }
    }
}

fn scan_one(
    reader: &Result<Box<dyn crate::fs::FsReader>, crate::fs::FsError>,
    entry: &Entry,
    det: &Detector,
    opts: &DetectOptions,
    limits: &Limits,
    digests: &Digests,
) -> One {
    let (path, path_bytes) = crate::model::path_fields(&entry.path);
    let fail = |message: String| One {
        findings: vec![],
        bytes: 0,
        complete: false,
        shared: false,
        errors: vec![ScanError {
            path_bytes: path_bytes.clone(),
            path: Some(path.clone()),
            message,
        }],
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => return fail(format!("not scanned: {e}")),
    };
    // Random access where the filesystem gives it: archives are then opened by offset. A
    // large file is read without its long holes (`size` is then the shortened length).
    let mut size = entry.size;
    let mut content = match reader.open_seekable(entry) {
        Ok(Some(c)) => Content::Seek(without_long_holes(reader.as_ref(), entry, c, &mut size)),
        Ok(None) => match reader.open_file(entry) {
            Ok(c) => Content::Stream(c),
            Err(e) => return fail(format!("not scanned: {e}")),
        },
        Err(e) => return fail(format!("not scanned: {e}")),
    };
    let exact = path_bytes.is_some().then(|| entry.path.clone());
    let meta = FileMeta {
        path: path.clone(),
        path_bytes: exact,
        size,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
    };
    let seekable = matches!(content, Content::Seek(_));
    let scan = |c: &mut dyn SeekRead| {
        if seekable {
            archive::scan_file_at(&meta, c, det, opts, limits)
        } else {
            archive::scan_file(&meta, c, det, opts, limits)
        }
    };
    let out = if det.wants_md5(&path, entry.mode) {
        let mut tap = Tap {
            inner: content,
            md5: Md5::new(),
            read: 0,
            jumped: false,
        };
        let out = scan(&mut tap);
        // Only a file read to its end, in order, has the digest of its content.
        if tap.read == entry.size && !tap.jumped && out.errors.is_empty() {
            digests.insert(&entry.path, tap.md5.finalize().into());
        }
        out
    } else {
        scan(&mut content)
    };
    // A file with a secret finding is judged after the scan by its package's digest
    // (provenance): hash it now, while its blocks are still in the cache, not at the end of
    // the scan, where a remote volume reads it again one round trip after another.
    if out
        .findings
        .iter()
        .any(|f| det.judged_by_provenance(&f.rule))
        && entry.size <= MAX_REHASH_BYTES
        && digests.get(&entry.path).is_none()
        && digests.room_for_provenance(entry.size)
        && let Some(d) = md5_of(reader.as_ref(), entry)
    {
        digests.insert(&entry.path, d);
    }
    let mut out = out;
    if path_bytes.is_some() {
        // Every path under a file whose name is not UTF-8 is the visible form of its bytes.
        for (p, pb) in out
            .findings
            .iter_mut()
            .map(|f| (&f.path, &mut f.path_bytes))
            .chain(out.errors.iter_mut().map(|e| (&e.path, &mut e.path_bytes)))
        {
            if let Some(p) = p
                && pb.is_none()
            {
                *pb = exact_of_visible(p);
            }
        }
    }
    One {
        findings: out.findings,
        bytes: out.bytes,
        complete: out.errors.is_empty(),
        errors: out.errors,
        shared: false,
    }
}

/// The MD5 of `entry`'s whole content, when all of it (exactly its size) can be read.
fn md5_of(reader: &dyn crate::fs::FsReader, entry: &Entry) -> Option<[u8; 16]> {
    let mut r = reader
        .open_file(entry)
        .ok()?
        .take(entry.size.saturating_add(1));
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut read = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                md5.update(&buf[..n]);
                read += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    (read == entry.size).then(|| md5.finalize().into())
}

/// `c`, the content of `entry`, without its holes longer than [`sparse::GAP`] when the file is
/// large enough for it to matter and the filesystem knows its data ranges; `size` becomes the
/// length read. When the ranges cannot be had, the file is read whole (its read then reports
/// whatever is wrong with it).
fn without_long_holes<'a>(
    reader: &dyn crate::fs::FsReader,
    entry: &Entry,
    c: Box<dyn SeekRead + 'a>,
    size: &mut u64,
) -> Box<dyn SeekRead + 'a> {
    if entry.size < sparse::MIN_SIZE {
        return c;
    }
    match reader.data_ranges(entry) {
        Ok(Some(ranges)) => match sparse::Dense::new(c, &ranges, entry.size) {
            Ok(d) => {
                *size = d.len();
                Box::new(d)
            }
            Err(c) => c,
        },
        _ => c,
    }
}

/// Base64 of the bytes `shown` is the [`visible`](crate::model::escape::visible) form of, if it
/// is one.
fn exact_of_visible(shown: &str) -> Option<String> {
    use crate::model::escape::{unescape, visible};
    use base64::Engine as _;
    unescape(shown)
        .filter(|b| visible(b) == shown)
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
}

/// What the content scan runs with: the detector, its options and the archive limits.
#[derive(Clone, Copy)]
pub struct Scanner<'a> {
    /// The rules.
    pub det: &'a Detector,
    /// Detection options.
    pub opts: &'a DetectOptions,
    /// Limits for archives and compressed files.
    pub limits: &'a Limits,
    /// Content keys seen on this volume: a file with the same content as one read is not
    /// read again.
    pub reuse: &'a Reuse,
}

/// Files a worker of [`scan_files`] takes from the shared cursor at once (remote sources).
const STEP: usize = 4;

/// Scan `files` of `fs` in parallel, in the order of their first physical byte where the
/// filesystem gives it.
///
/// Locally each worker takes a contiguous share of that order (a split of the list), so each
/// reads forward through the volume. On a remote source (`remote`) the workers instead take
/// the next few files from one shared cursor, so together they move forward right behind the
/// sweep of the blocks: a split sends the second worker to the middle of the volume, where
/// nothing has been fetched yet, to wait a round trip for each block. (Locally the cursor
/// costs 5 to 8% on the Debian image, so the split stays there.)
pub fn scan_files(
    fs: &dyn Filesystem,
    files: &[Entry],
    scanner: Scanner<'_>,
    progress: &dyn VolumeProgress,
    remote: bool,
    digests: &Digests,
) -> ContentResult {
    let mut order: Vec<&Entry> = files.iter().collect();
    order.sort_by_key(|e| e.phys);
    let mut res = scan_order(fs, &order, &scanner, progress, remote, digests);
    // Files whose content another worker was reading: by now it is read (reused) or failed
    // (read again). Each round ends every read it waited for, so a second round is the last.
    for _ in 0..4 {
        let deferred = scanner.reuse.take_deferred();
        if deferred.is_empty() {
            break;
        }
        let order: Vec<&Entry> = deferred.iter().collect();
        res.merge(scan_order(fs, &order, &scanner, progress, remote, digests));
    }
    // Anything still set aside is read as it is.
    let left = scanner.reuse.take_deferred();
    if !left.is_empty() {
        let reader = fs.reader();
        for entry in &left {
            let Scanner {
                det, opts, limits, ..
            } = scanner;
            res.add(scan_one(&reader, entry, det, opts, limits, digests));
            progress.inc(entry.size);
        }
    }
    res
}

/// One pass of [`scan_files`] over `order`.
fn scan_order(
    fs: &dyn Filesystem,
    order: &[&Entry],
    scanner: &Scanner<'_>,
    progress: &dyn VolumeProgress,
    remote: bool,
    digests: &Digests,
) -> ContentResult {
    if !remote {
        return order
            .par_iter()
            .with_min_len(16)
            .map_init(
                || fs.reader(),
                |reader, entry| {
                    let one = scan_entry(reader, entry, scanner, digests);
                    if one.is_some() {
                        progress.inc(entry.size);
                    }
                    one
                },
            )
            .fold(ContentResult::default, |mut acc, one| {
                if let Some(one) = one {
                    acc.add(one);
                }
                acc
            })
            .reduce(ContentResult::default, |mut a, b| {
                a.merge(b);
                a
            });
    }
    let next = AtomicUsize::new(0);
    let done = Mutex::new(ContentResult::default());
    let workers = rayon::current_num_threads().clamp(1, order.len().div_ceil(STEP).max(1));
    rayon::in_place_scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| {
                let reader = fs.reader();
                let mut acc = ContentResult::default();
                loop {
                    let at = next.fetch_add(STEP, Ordering::Relaxed);
                    let batch = order.get(at..).unwrap_or_default();
                    if batch.is_empty() {
                        break;
                    }
                    for entry in batch.iter().take(STEP) {
                        if let Some(one) = scan_entry(&reader, entry, scanner, digests) {
                            acc.add(one);
                            progress.inc(entry.size);
                        }
                    }
                }
                done.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .merge(acc);
            });
        }
    });
    done.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// Files an idle worker takes at once from those set aside.
const BATCH: usize = 32;

impl ContentResult {
    fn add(&mut self, one: One) {
        self.findings.extend(one.findings);
        self.bytes_scanned = self.bytes_scanned.saturating_add(one.bytes);
        if one.shared {
            self.files_shared = self.files_shared.saturating_add(1);
        } else if one.complete {
            self.files_scanned = self.files_scanned.saturating_add(1);
        }
        self.errors.extend(one.errors);
    }

    /// Add another part's totals.
    pub fn merge(&mut self, other: ContentResult) {
        self.findings.extend(other.findings);
        self.files_scanned = self.files_scanned.saturating_add(other.files_scanned);
        self.bytes_scanned = self.bytes_scanned.saturating_add(other.bytes_scanned);
        self.files_shared = self.files_shared.saturating_add(other.files_shared);
        self.errors.extend(other.errors);
    }
}

/// Scan files while a walk finds them, those whose bytes are at hand. `walk` runs on the
/// calling thread and hands each directory's files to the sink it is given (from any thread);
/// one worker per rayon thread, each with its own reader, scans each file `ready` accepts (a
/// remote source holds its blocks already) and sets the others aside; a worker with no new
/// files looks again among those set aside for files that have become ready since. Returns
/// what `walk` returned, the results so far, and the files still set aside when the walk
/// ended, for a scan in physical order. On a remote source this puts the cores to work while
/// the walk waits for one directory after another, without reading in walk order what is not
/// fetched yet.
pub fn scan_during<W>(
    fs: &dyn Filesystem,
    scanner: Scanner<'_>,
    progress: &dyn VolumeProgress,
    digests: &Digests,
    ready: &(dyn Fn(&Entry) -> bool + Sync),
    walk: impl FnOnce(&(dyn Fn(&[Entry]) + Sync)) -> W,
) -> (W, ContentResult, Vec<Entry>) {
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
    /// How long an idle worker waits for new files before it looks at those set aside again.
    const IDLE: std::time::Duration = std::time::Duration::from_millis(2);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<Entry>>();
    let rx = Mutex::new(rx);
    let aside: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    let done = Mutex::new(ContentResult::default());
    let workers = rayon::current_num_threads().max(1);
    let walked = rayon::in_place_scope(|s| {
        // Dropped when the walk ends, even by a panic: the workers then stop.
        let tx = tx;
        for _ in 0..workers {
            s.spawn(|_| {
                let reader = fs.reader();
                let mut acc = ContentResult::default();
                let mut scan = |entry: &Entry| {
                    if let Some(one) = scan_entry(&reader, entry, &scanner, digests) {
                        acc.add(one);
                        progress.inc(entry.size);
                    }
                };
                let sort = |batch: Vec<Entry>, scan: &mut dyn FnMut(&Entry)| {
                    let mut not_yet = Vec::new();
                    for entry in batch {
                        if ready(&entry) {
                            scan(&entry);
                        } else {
                            not_yet.push(entry);
                        }
                    }
                    if !not_yet.is_empty() {
                        aside
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .append(&mut not_yet);
                    }
                };
                loop {
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).try_recv();
                    match next {
                        Ok(batch) => {
                            sort(batch, &mut scan);
                            continue;
                        }
                        Err(TryRecvError::Disconnected) => break,
                        Err(TryRecvError::Empty) => {}
                    }
                    // No new files: those set aside whose blocks have arrived since.
                    let now: Vec<Entry> = {
                        let mut a = aside.lock().unwrap_or_else(PoisonError::into_inner);
                        let mut now = Vec::new();
                        let mut i = 0;
                        while i < a.len() && now.len() < BATCH {
                            if ready(&a[i]) {
                                now.push(a.swap_remove(i));
                            } else {
                                i += 1;
                            }
                        }
                        now
                    };
                    if !now.is_empty() {
                        now.iter().for_each(&mut scan);
                        continue;
                    }
                    let next = rx
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv_timeout(IDLE);
                    match next {
                        Ok(batch) => sort(batch, &mut scan),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                done.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .merge(acc);
            });
        }
        let walked = walk(&|files: &[Entry]| {
            let mut order: Vec<Entry> = files.to_vec();
            order.sort_by_key(|e| e.phys);
            progress.inc_length(order.iter().map(|e| e.size).fold(0, u64::saturating_add));
            // The workers outlive the walk: a send cannot fail.
            let _ = tx.send(order);
        });
        drop(tx);
        walked
    });
    let done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut aside = aside.into_inner().unwrap_or_else(PoisonError::into_inner);
    // Files whose content another worker was reading: [`scan_files`] reuses or reads them.
    aside.extend(scanner.reuse.take_deferred());
    (walked, done, aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{EntryKind, FsError, FsReader};
    use std::sync::Arc;

    /// A filesystem that logs the files opened, in the order the workers open them.
    #[derive(Clone, Default)]
    struct Opens(Arc<Mutex<Vec<u64>>>);
    impl FsReader for Opens {
        fn list_dir(&self, _: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            Ok(Vec::new())
        }
        fn open_file<'a>(&'a self, e: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            self.0.lock().unwrap().push(e.phys);
            Ok(Box::new(&b"plain text"[..]))
        }
        fn read_link(&self, _: &Entry) -> Result<Vec<u8>, FsError> {
            Ok(Vec::new())
        }
    }

    /// 400 files, listed last first; the n-th in disk order starts at byte 4096 × (n + 1).
    fn files() -> Vec<Entry> {
        (0..400u64)
            .rev()
            .map(|n| Entry {
                path: format!("/f{n}").into_bytes(),
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: 10,
                mtime: 0,
                ino: n + 100,
                phys: 4096 * (n + 1),
            })
            .collect()
    }

    /// `scan_files` with the built-in catalog and default options.
    fn scan(fs: &Opens, files: &[Entry], remote: bool, digests: &Digests) -> ContentResult {
        let det = Detector::builtin().unwrap();
        let scanner = Scanner {
            det: &det,
            opts: &DetectOptions::default(),
            limits: &Limits::default(),
            reuse: &Reuse::default(),
        };
        scan_files(
            fs,
            files,
            scanner,
            &crate::scan::NoProgress,
            remote,
            digests,
        )
    }

    /// While it scans them, the content scan keeps the MD5 of the files the package check
    /// verifies (a sensitive binary, a setuid file), and of no other.
    #[test]
    fn digests_are_kept_for_the_files_the_checks_verify() {
        let fs = Opens::default();
        let mut files = files();
        files.truncate(3);
        files[0].path = b"/usr/bin/ls".to_vec();
        files[1].path = b"/opt/tool".to_vec();
        files[1].mode = 0o4755;
        files[2].path = b"/usr/share/doc/ls".to_vec();
        let digests = Digests::default();
        for remote in [false, true] {
            scan(&fs, &files, remote, &digests);
            let want: [u8; 16] = Md5::digest(b"plain text").into();
            assert_eq!(digests.get(b"/usr/bin/ls"), Some(want));
            assert_eq!(digests.get(b"/opt/tool"), Some(want));
            assert_eq!(digests.get(b"/usr/share/doc/ls"), None);
        }
        // A file not read to its end (its size says more) has no digest.
        let mut long = files[0].clone();
        long.path = b"/usr/bin/ps".to_vec();
        long.size = 11;
        scan(&fs, &[long], false, &digests);
        assert_eq!(digests.get(b"/usr/bin/ps"), None);
    }

    /// A filesystem whose every file holds a (freshly generated, fake) GitHub token.
    #[derive(Clone)]
    struct Tokens;
    const TOKEN: &[u8] = b"url = https://ci: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@github.com\n";
    impl FsReader for Tokens {
        fn list_dir(&self, _: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            Ok(Vec::new())
        }
        fn open_file<'a>(&'a self, _: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Ok(Box::new(TOKEN))
        }
        fn read_link(&self, _: &Entry) -> Result<Vec<u8>, FsError> {
            Ok(Vec::new())
        }
    }

    /// A file with a secret finding gets its MD5 kept right after its scan (provenance judges
    /// it by that digest without reading it again); a file whose size is not what can be read
    /// gets none.
    #[test]
    fn digests_are_kept_for_files_with_a_secret_finding() {
        let det = Detector::builtin().unwrap();
        let scanner = Scanner {
            det: &det,
            opts: &DetectOptions::default(),
            limits: &Limits::default(),
            reuse: &Reuse::default(),
        };
        let mut files = files();
        files.truncate(2);
        files[0].path = b"/usr/share/doc/x/example.conf".to_vec();
        files[0].size = TOKEN.len() as u64;
        files[1].path = b"/etc/x.conf".to_vec();
        files[1].size = TOKEN.len() as u64 + 1;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for remote in [false, true] {
            let digests = Digests::default();
            let res = scan_files(
                &Tokens,
                &files,
                scanner,
                &crate::scan::NoProgress,
                remote,
                &digests,
            );
            assert_eq!(res.findings.len(), 2, "{:?}", res.findings);
            let want: [u8; 16] = Md5::digest(TOKEN).into();
            assert_eq!(digests.get(b"/usr/share/doc/x/example.conf"), Some(want));
            assert_eq!(digests.get(b"/etc/x.conf"), None);
        }
    }

    /// On a remote source the workers go through the volume together, in disk order: when
    /// the n-th file is opened, no file further than one batch per worker ahead of it in that
    /// order has been (a split of the list would start a second worker in the middle).
    #[test]
    fn remote_files_are_opened_together_in_disk_order() {
        let fs = Opens::default();
        let res = scan(&fs, &files(), true, &Digests::default());
        assert_eq!(res.files_scanned, 400);
        let opened = fs.0.lock().unwrap().clone();
        assert_eq!(opened.len(), 400);
        let slack = STEP * rayon::current_num_threads();
        for (n, phys) in opened.iter().enumerate() {
            let k = usize::try_from(phys / 4096 - 1).unwrap();
            assert!(
                k < n + slack,
                "file {k} in disk order opened {n}th: {opened:?}"
            );
        }
    }
}
