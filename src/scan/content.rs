//! Scan the content of every regular file in parallel: each rayon worker opens its own reader on
//! the filesystem and streams files through the detector, opening archives and compressed
//! files on the way (see [`super::archive`]).

use super::archive::{self, FileMeta, Limits};
use crate::detect::{DetectOptions, Detector};
use crate::fs::{Entry, Filesystem};
use crate::report::{Finding, ScanError};
use indicatif::ProgressBar;
use rayon::prelude::*;

/// Totals for one volume's files.
#[derive(Default)]
pub struct ContentResult {
    /// Findings, with `volume` still empty.
    pub findings: Vec<Finding>,
    /// Files read to their end (an archive counts once, when all of it was read).
    pub files_scanned: u64,
    /// Bytes of content given to the detector (decompressed bytes inside compressed files).
    pub bytes_scanned: u64,
    /// Files that could not be opened or read completely.
    pub errors: Vec<ScanError>,
}

struct One {
    findings: Vec<Finding>,
    bytes: u64,
    complete: bool,
    errors: Vec<ScanError>,
}

fn scan_one(
    reader: &Result<Box<dyn crate::fs::FsReader>, crate::fs::FsError>,
    entry: &Entry,
    det: &Detector,
    opts: &DetectOptions,
    limits: &Limits,
) -> One {
    let path = entry.display_path();
    let fail = |message: String| One {
        findings: vec![],
        bytes: 0,
        complete: false,
        errors: vec![ScanError {
            path: Some(path.clone()),
            message,
        }],
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => return fail(format!("not scanned: {e}")),
    };
    let mut content = match reader.open_file(entry) {
        Ok(c) => c,
        Err(e) => return fail(format!("not scanned: {e}")),
    };
    let meta = FileMeta {
        path: path.clone(),
        size: entry.size,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
    };
    let out = archive::scan_file(&meta, &mut content, det, opts, limits);
    One {
        findings: out.findings,
        bytes: out.bytes,
        complete: out.errors.is_empty(),
        errors: out.errors,
    }
}

/// Scan `files` of `fs` in parallel, in the order of their first physical byte where the
/// filesystem gives it (each worker takes a contiguous share of that order, so reads run
/// forward on the volume: sequential on a disk, prefetchable through EBS).
pub fn scan_files(
    fs: &dyn Filesystem,
    files: &[Entry],
    det: &Detector,
    opts: &DetectOptions,
    limits: &Limits,
    progress: &ProgressBar,
) -> ContentResult {
    let mut order: Vec<&Entry> = files.iter().collect();
    order.sort_by_key(|e| e.phys);
    order
        .par_iter()
        .with_min_len(16)
        .map_init(
            || fs.reader(),
            |reader, entry| {
                let one = scan_one(reader, entry, det, opts, limits);
                progress.inc(entry.size);
                one
            },
        )
        .fold(ContentResult::default, |mut acc, one| {
            acc.findings.extend(one.findings);
            acc.bytes_scanned = acc.bytes_scanned.saturating_add(one.bytes);
            if one.complete {
                acc.files_scanned = acc.files_scanned.saturating_add(1);
            }
            acc.errors.extend(one.errors);
            acc
        })
        .reduce(ContentResult::default, |mut a, b| {
            a.findings.extend(b.findings);
            a.files_scanned = a.files_scanned.saturating_add(b.files_scanned);
            a.bytes_scanned = a.bytes_scanned.saturating_add(b.bytes_scanned);
            a.errors.extend(b.errors);
            a
        })
}
