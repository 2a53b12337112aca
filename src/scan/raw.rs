//! The raw fallback: a volume whose filesystem cannot be walked is still read block by block and
//! every byte goes through the content signatures. All-zero regions are skipped. Findings carry
//! the volume and byte offset, no path.
//!
//! Disk bytes are never "text" as a file is (a text file's last block ends in zeros, metadata
//! sits between files), and the rules that only run on text (the labelled AWS secret, command
//! lines with passwords, most token labels) would never run. So each run of non-zero bytes is
//! scanned twice: as it is (binary, every rule that runs on binaries), and with every NUL byte
//! made a newline, as text (every content rule). A match found by both is one finding (same
//! rule, same offset). What needs a path (the checks of shadow, histories, sshd, credential
//! files) cannot run on raw bytes; the report says so.

use crate::detect::{DetectOptions, Detector, FileInfo};
use crate::report::{Finding, ScanError};
use crate::source::Source;
use rayon::prelude::*;
use std::collections::HashSet;

/// Bytes read and scanned per task.
const SEGMENT: u64 = 8 * 1024 * 1024;
/// Each segment also reads this much of the next one, so a secret across the boundary is found.
const OVERLAP: u64 = 64 * 1024;
/// Unreadable ranges listed one by one; the rest are counted.
const MAX_ERRORS: usize = 10;
/// A granule of all zeros splits the data: no secret holds 4 KiB of zeros.
const GRANULE: usize = 4096;

/// What a raw scan found.
#[derive(Default)]
pub struct RawResult {
    /// Findings with `path: None` and `offset` from the start of the volume.
    pub findings: Vec<Finding>,
    /// Non-zero bytes scanned.
    pub bytes_scanned: u64,
    /// Ranges that could not be read.
    pub errors: Vec<ScanError>,
}

/// Scan every non-zero byte of `src`.
pub fn scan_raw(src: &dyn Source, det: &Detector, opts: &DetectOptions) -> RawResult {
    let len = src.len();
    let count = len.div_ceil(SEGMENT);
    let parts: Vec<RawResult> = (0..count)
        .into_par_iter()
        .map(|i| scan_segment(src, i * SEGMENT, det, opts))
        .collect();
    let mut out = RawResult::default();
    let mut seen = HashSet::new();
    let mut unreadable = 0u64;
    for p in parts {
        out.bytes_scanned = out.bytes_scanned.saturating_add(p.bytes_scanned);
        for e in p.errors {
            unreadable += 1;
            if out.errors.len() < MAX_ERRORS {
                out.errors.push(e);
            }
        }
        for f in p.findings {
            // The overlap makes a boundary-crossing secret show up in two segments.
            if seen.insert((f.rule.clone(), f.offset)) {
                out.findings.push(f);
            }
        }
    }
    if unreadable > MAX_ERRORS as u64 {
        out.errors.push(ScanError {
            path_bytes: None,
            path: None,
            message: format!(
                "raw scan: {} more unreadable ranges of {} MiB not listed",
                unreadable - MAX_ERRORS as u64,
                SEGMENT >> 20
            ),
        });
    }
    out
}

fn scan_segment(src: &dyn Source, start: u64, det: &Detector, opts: &DetectOptions) -> RawResult {
    let mut out = RawResult::default();
    let end = start
        .saturating_add(SEGMENT)
        .saturating_add(OVERLAP)
        .min(src.len());
    let mut buf = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
    if let Err(e) = src.read_at(start, &mut buf) {
        out.errors.push(ScanError {
            path_bytes: None,
            path: None,
            message: format!("raw scan: bytes {start}..{end} unreadable: {e}"),
        });
        return out;
    }
    // Only the first SEGMENT bytes count as scanned here; the overlap belongs to the next task.
    let own = usize::try_from(SEGMENT)
        .unwrap_or(usize::MAX)
        .min(buf.len());
    let mut run_start: Option<usize> = None;
    let granules = buf.len().div_ceil(GRANULE);
    for g in 0..=granules {
        let lo = g * GRANULE;
        let zero = match buf.get(lo..(lo + GRANULE).min(buf.len())) {
            Some(chunk) if !chunk.is_empty() => chunk.iter().all(|&b| b == 0),
            _ => true, // past the end: closes the last run
        };
        match (zero, run_start) {
            (false, None) => run_start = Some(lo),
            (true, Some(rs)) => {
                let hi = lo.min(buf.len());
                // A run that starts in the overlap is the next segment's to scan.
                if rs < own {
                    scan_run(&buf[rs..hi], start + rs as u64, det, opts, &mut out);
                    out.bytes_scanned += (hi.min(own) - rs) as u64;
                }
                run_start = None;
            }
            _ => {}
        }
    }
    out
}

fn scan_run(data: &[u8], base: u64, det: &Detector, opts: &DetectOptions, out: &mut RawResult) {
    let info = FileInfo {
        path: "",
        size: data.len() as u64,
        mode: 0,
        uid: 0,
        gid: 0,
    };
    let mut reader = data;
    let binary = det.scan_file(&info, &mut reader, opts).findings;
    // The same bytes as text: NULs (file tails, padding, metadata) become line breaks, so the
    // text-only rules run; offsets are unchanged.
    let mut findings = binary;
    if data.contains(&0) {
        let text: Vec<u8> = data
            .iter()
            .map(|&b| if b == 0 { b'\n' } else { b })
            .collect();
        let mut reader = text.as_slice();
        findings.extend(det.scan_file(&info, &mut reader, opts).findings);
    }
    let mut seen = HashSet::new();
    for mut f in findings {
        if !seen.insert((f.rule.clone(), f.offset)) {
            continue;
        }
        f.path = None;
        f.line = None;
        f.offset = Some(base + f.offset.unwrap_or(0));
        out.findings.push(f);
    }
}
