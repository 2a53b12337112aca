//! `amiscan sweep`: every AMI of some owners in some regions, each snapshot set scanned once per
//! catalog version (results cached in the [`super::state`] file), public images first,
//! `parallel` images at a time, a failing image never stopping the others.

use super::ec2ops::{self, ImageInfo};
use super::scan::{EbsTarget, scan_ebs_target};
use super::state::{CachedScan, StateError, SweepState, key};
use super::{AwsError, AwsOptions, AwsSession};
use crate::detect::Detector;
pub use crate::model::fleet::{FindingBrief, ImageOutcome, ImageStatus, SweepSummary};
use crate::model::{Finding, Severity};
use crate::scan::ScanOptions;
use crate::source::ebs::EbsOptions;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Region used for `DescribeRegions` when none is configured.
pub const FALLBACK_REGION: &str = "us-east-1";

/// What to sweep and how.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Regions; `None` = every enabled region (`DescribeRegions`).
    pub regions: Option<Vec<String>>,
    /// `self`, account ids, `amazon`, ...
    pub owners: Vec<String>,
    /// Images scanned at once (at least 1).
    pub parallel: usize,
    /// Findings at or above this fail the image.
    pub fail_on: Severity,
    /// The state file.
    pub state_path: PathBuf,
    /// Stop taking new images after this many finished (tests simulate an interruption).
    pub stop_after: Option<usize>,
    /// EBS source options.
    pub ebs: EbsOptions,
    /// Scan options.
    pub scan: ScanOptions,
}

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Listing regions, or setting up clients, failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

fn location(f: &Finding) -> String {
    match &f.path {
        Some(p) => format!("{}:{p}", f.volume),
        None => format!("{}@{}", f.volume, f.offset.unwrap_or(0)),
    }
}

fn outcome(
    img: &ImageInfo,
    findings: &[Finding],
    complete: bool,
    cached: bool,
    fail_on: Severity,
    error: Option<String>,
) -> ImageOutcome {
    let mut counts = BTreeMap::new();
    for f in findings {
        *counts.entry(f.severity).or_insert(0) += 1;
    }
    let at = findings
        .iter()
        .filter(|f| f.severity >= fail_on && !f.is_vendor())
        .count();
    let status = if at > 0 {
        ImageStatus::Findings
    } else if !complete {
        ImageStatus::Incomplete
    } else {
        ImageStatus::Clean
    };
    ImageOutcome {
        region: img.region.clone(),
        image_id: img.id.clone(),
        name: img.name.clone(),
        public: img.public,
        snapshots: img.snapshot_ids.clone(),
        status,
        cached,
        max_severity: findings
            .iter()
            .filter(|f| !f.is_vendor())
            .map(|f| f.severity)
            .max(),
        counts,
        at_or_above_fail_on: at,
        findings: findings
            .iter()
            .map(|f| FindingBrief {
                rule: f.rule.clone(),
                severity: f.severity,
                location: location(f),
                path_bytes: f.path_bytes.clone(),
                fingerprint: f.fingerprint.clone(),
            })
            .collect(),
        error,
    }
}

fn failed(img: &ImageInfo, why: String) -> ImageOutcome {
    let mut o = outcome(img, &[], false, false, Severity::Critical, Some(why));
    o.status = ImageStatus::Failed;
    o
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A session per region, made from the same options.
pub(crate) fn session_for(aws: &AwsOptions, region: &str) -> Result<AwsSession, AwsError> {
    let mut o = aws.clone();
    o.region = Some(region.to_string());
    AwsSession::new(&o)
}

/// The regions to work in: the given ones, or every enabled region.
pub(crate) fn resolve_regions(
    aws: &AwsOptions,
    regions: Option<&[String]>,
) -> Result<Vec<String>, AwsError> {
    if let Some(r) = regions {
        return Ok(r.to_vec());
    }
    let base = session_for(aws, aws.region.as_deref().unwrap_or(FALLBACK_REGION))?;
    let ec2 = base.ec2_client().clone();
    base.run(async move { ec2ops::list_regions(&ec2).await })
}

/// Scan (or recall) one image.
fn sweep_image(
    session: &AwsSession,
    img: &ImageInfo,
    opts: &SweepOptions,
    det: &Detector,
    state: &Mutex<SweepState>,
) -> (ImageOutcome, Option<CachedScan>) {
    if img.snapshot_ids.is_empty() {
        return (
            failed(img, "no EBS snapshot to read (instance-store AMI)".into()),
            None,
        );
    }
    let k = key(&img.snapshot_ids, &cache_version(det, opts));
    let hit = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entries
        .get(&k)
        .cloned();
    if let Some(c) = hit {
        return (
            outcome(img, &c.findings, true, true, opts.fail_on, None),
            None,
        );
    }
    let report = match scan_ebs_target(
        session,
        &EbsTarget::Ami(img.id.clone()),
        &opts.ebs,
        det,
        &opts.scan,
    ) {
        Ok(r) => r,
        Err(e) => return (failed(img, e.to_string()), None),
    };
    let error = (!report.complete).then(|| {
        let msgs: Vec<String> = report
            .errors
            .iter()
            .chain(report.volumes.iter().flat_map(|v| v.errors.iter()))
            .take(3)
            .map(|e| e.message.clone())
            .collect();
        format!("incomplete scan: {}", msgs.join("; "))
    });
    let out = outcome(
        img,
        &report.findings,
        report.complete,
        false,
        opts.fail_on,
        error,
    );
    let cache = report.complete.then(|| CachedScan {
        image_id: img.id.clone(),
        region: img.region.clone(),
        snapshot_ids: img.snapshot_ids.clone(),
        catalog_version: cache_version(det, opts),
        scanned_at: now(),
        findings: report.findings.clone(),
    });
    (out, cache)
}

/// What results are cached under: the catalog version, marked `+quick` for `--quick` scans.
/// A quick scan does not read every file, so it never stands in for a full one (a full sweep
/// scans the image again, and `audit`, which looks up full scans, does not count it).
fn cache_version(det: &Detector, opts: &SweepOptions) -> String {
    if opts.scan.quick {
        format!("{}+quick", det.catalog_version())
    } else {
        det.catalog_version().to_string()
    }
}

/// Run a sweep. `on_image` sees every image as it finishes (from worker threads, one at a
/// time); `stop` set (Ctrl-C) makes workers take no new image. The state file is saved after
/// every newly scanned image.
pub fn sweep(
    aws: &AwsOptions,
    opts: &SweepOptions,
    det: &Detector,
    stop: &AtomicBool,
    on_image: &mut (dyn FnMut(&ImageOutcome) + Send),
) -> Result<SweepSummary, SweepError> {
    let mut summary = SweepSummary {
        catalog_version: cache_version(det, opts),
        ..SweepSummary::default()
    };
    let state = Mutex::new(SweepState::load(&opts.state_path)?);
    let regions = resolve_regions(aws, opts.regions.as_deref())?;
    let mut sessions = BTreeMap::new();
    let mut images: Vec<ImageInfo> = Vec::new();
    for r in &regions {
        let listed = session_for(aws, r).and_then(|s| {
            let ec2 = s.ec2_client().clone();
            let (region, owners) = (r.clone(), opts.owners.clone());
            let imgs = s.run(async move {
                ec2ops::list_images(&ec2, &region, &owners, &[("state", "available")]).await
            })?;
            Ok((s, imgs))
        });
        match listed {
            Ok((s, imgs)) => {
                sessions.insert(r.clone(), Arc::new(s));
                images.extend(imgs);
            }
            Err(e) => summary.region_errors.push(format!("{r}: {e}")),
        }
    }
    summary.regions = regions;
    // Public images first: they are the ones that hurt.
    images.sort_by(|a, b| {
        b.public
            .cmp(&a.public)
            .then_with(|| a.region.cmp(&b.region))
            .then_with(|| a.id.cmp(&b.id))
    });
    images.dedup_by(|a, b| a.region == b.region && a.id == b.id);
    summary.images = images.len();
    summary.public_images = images.iter().filter(|i| i.public).count();

    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let save_error: Mutex<Option<StateError>> = Mutex::new(None);
    let shared = Mutex::new((&mut summary, on_image));
    let workers = opts.parallel.clamp(1, 64).min(images.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let stopped = stop.load(Ordering::SeqCst)
                        || opts
                            .stop_after
                            .is_some_and(|k| finished.load(Ordering::SeqCst) >= k);
                    if stopped {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(img) = images.get(i) else { return };
                    let (out, cache) = match sessions.get(&img.region) {
                        Some(s) => sweep_image(s, img, opts, det, &state),
                        None => (failed(img, "no session for its region".into()), None),
                    };
                    if let Some(c) = cache {
                        let mut st = state
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        st.entries
                            .insert(key(&c.snapshot_ids, &c.catalog_version), c);
                        if let Err(e) = st.save(&opts.state_path) {
                            *save_error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        }
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                    let mut g = shared
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let (sum, cb) = &mut *g;
                    if out.cached {
                        sum.cached += 1;
                    } else if out.status != ImageStatus::Failed {
                        sum.scanned += 1;
                    }
                    match out.status {
                        ImageStatus::Clean => sum.clean += 1,
                        ImageStatus::Findings => {
                            sum.with_findings += 1;
                            if out.public {
                                sum.public_with_findings += 1;
                            }
                        }
                        ImageStatus::Incomplete => sum.incomplete += 1,
                        ImageStatus::Failed => sum.failed += 1,
                    }
                    cb(&out);
                }
            });
        }
    });
    let _ = shared.into_inner();
    let done = finished.load(Ordering::SeqCst);
    summary.not_reached = summary.images.saturating_sub(done);
    summary.interrupted = summary.not_reached > 0;
    if let Some(e) = save_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e.into());
    }
    Ok(summary)
}
