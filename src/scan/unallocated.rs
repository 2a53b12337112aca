//! `--unallocated`: scan what the filesystem no longer lists but the snapshot still holds (the
//! blocks its allocation maps mark free, where deleted files survive) and its journal or log,
//! with the raw scanner. Findings have no path, the volume byte offset, and evidence that starts
//! with `[unallocated]` or `[journal]`.

use super::raw;
use crate::detect::{DetectOptions, Detector};
use crate::fs::ext4_free::{Region, RegionKind};
use crate::fs::probe::FsKind;
use crate::report::{Finding, ScanError};
use crate::source::Window;
use crate::volume::Volume;
use rayon::prelude::*;

/// What scanning a volume's free space gave.
#[derive(Default)]
pub struct FreeResult {
    /// Findings (volume still empty), path `None`, offset from the start of the volume.
    pub findings: Vec<Finding>,
    /// Non-zero bytes scanned.
    pub bytes_scanned: u64,
    /// What could not be located or read.
    pub errors: Vec<ScanError>,
}

fn label(kind: RegionKind) -> &'static str {
    match kind {
        RegionKind::Unallocated => "[unallocated] ",
        RegionKind::Journal => "[journal] ",
    }
}

/// Scan the free space and journal of volume `v`, whose filesystem is `kind`. For a
/// filesystem whose free space amiscan cannot locate (FAT), the whole volume is scanned raw and
/// secrets already found in its files (`known`: rule and fingerprint) are not repeated.
pub fn scan_free(
    v: &Volume,
    kind: FsKind,
    known: &[Finding],
    det: &Detector,
    opts: &DetectOptions,
) -> FreeResult {
    let regions = match kind {
        FsKind::Ext4 => crate::fs::ext4_free::free_regions(&v.source),
        FsKind::Xfs => crate::fs::xfs::free::free_regions(v.source.as_ref()),
        FsKind::Ntfs => crate::fs::ntfs_free::free_regions(&v.source),
        _ => Ok(vec![Region {
            offset: 0,
            len: v.size,
            kind: RegionKind::Unallocated,
        }]),
    };
    let regions = match regions {
        Ok(r) => r,
        Err(e) => {
            return FreeResult {
                errors: vec![ScanError {
                    path_bytes: None,
                    path: None,
                    message: format!("--unallocated: free space not scanned: {e}"),
                }],
                ..FreeResult::default()
            };
        }
    };
    let whole = !matches!(kind, FsKind::Ext4 | FsKind::Xfs | FsKind::Ntfs);
    let parts: Vec<(Region, raw::RawResult)> = regions
        .par_iter()
        .filter(|r| r.len > 0)
        .map(|r| {
            let w = Window::new(
                v.source.clone(),
                r.offset,
                r.len.min(v.size.saturating_sub(r.offset)),
                format!("{} free space", v.id),
            );
            (*r, raw::scan_raw(&w, det, opts))
        })
        .collect();
    let mut out = FreeResult::default();
    for (r, res) in parts {
        out.bytes_scanned = out.bytes_scanned.saturating_add(res.bytes_scanned);
        if out.errors.len() < 10 {
            out.errors.extend(res.errors);
        }
        for mut f in res.findings {
            if whole
                && known
                    .iter()
                    .any(|k| k.rule == f.rule && k.fingerprint == f.fingerprint)
            {
                continue;
            }
            f.offset = Some(r.offset.saturating_add(f.offset.unwrap_or(0)));
            f.evidence = format!("{}{}", label(r.kind), f.evidence);
            out.findings.push(f);
        }
    }
    out
}
