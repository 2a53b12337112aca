//! Scan the content of every regular file in parallel: each rayon worker opens its own reader on
//! the filesystem and streams files through the detector.

use crate::detect::{DetectOptions, Detector, FileInfo};
use crate::fs::{Entry, Filesystem};
use crate::report::{Finding, ScanError};
use indicatif::ProgressBar;
use rayon::prelude::*;

/// Totals for one volume's files.
#[derive(Default)]
pub struct ContentResult {
    /// Findings, with `volume` still empty.
    pub findings: Vec<Finding>,
    /// Files read to their end.
    pub files_scanned: u64,
    /// Bytes of content read.
    pub bytes_scanned: u64,
    /// Files that could not be opened or read completely.
    pub errors: Vec<ScanError>,
}

struct One {
    findings: Vec<Finding>,
    bytes: u64,
    complete: bool,
    error: Option<ScanError>,
}

fn scan_one(
    reader: &Result<Box<dyn crate::fs::FsReader>, crate::fs::FsError>,
    entry: &Entry,
    det: &Detector,
    opts: &DetectOptions,
) -> One {
    let path = entry.display_path();
    let fail = |message: String| One {
        findings: vec![],
        bytes: 0,
        complete: false,
        error: Some(ScanError {
            path: Some(path.clone()),
            message,
        }),
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => return fail(format!("not scanned: {e}")),
    };
    let mut content = match reader.open_file(entry) {
        Ok(c) => c,
        Err(e) => return fail(format!("not scanned: {e}")),
    };
    let info = FileInfo {
        path: &path,
        size: entry.size,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
    };
    let out = det.scan_file(&info, &mut content, opts);
    let error = out.error.map(|e| ScanError {
        path: Some(path.clone()),
        message: format!(
            "read stopped after {} of {} bytes: {e}",
            out.bytes_scanned, entry.size
        ),
    });
    One {
        findings: out.findings,
        bytes: out.bytes_scanned,
        complete: error.is_none(),
        error,
    }
}

/// Scan `files` of `fs` in parallel.
pub fn scan_files(
    fs: &dyn Filesystem,
    files: &[Entry],
    det: &Detector,
    opts: &DetectOptions,
    progress: &ProgressBar,
) -> ContentResult {
    files
        .par_iter()
        .with_min_len(16)
        .map_init(
            || fs.reader(),
            |reader, entry| {
                let one = scan_one(reader, entry, det, opts);
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
            acc.errors.extend(one.error);
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
