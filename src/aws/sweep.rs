//! `amiscan sweep`: every AMI of some owners in some regions (of one account, or of every
//! account of an organisation, [`super::org`]), each snapshot set scanned once per catalog
//! version (results kept in a [`StateStore`]), public images first, `parallel` images at a time,
//! a failing image never stopping the others.
//!
//! Workers on several machines split a sweep with [`Shard`]s: each lists every image and keeps
//! those whose snapshot set falls in its shard, and all share one store (a directory or S3), in
//! which each result is created once and never replaced. Images with the same snapshot set are
//! handled together, by one worker thread: the first is scanned, the others reuse its result.
//! `report_only` lists the images and reads the store, scanning nothing: an image without a
//! stored result is [`ImageStatus::NotScanned`].

use super::ec2ops::{self, ImageInfo};
use super::org::{AccountSelection, member_accounts};
use super::scan::{EbsTarget, scan_ebs_target};
use super::state::{CachedScan, StateError, key};
use super::store::StateStore;
use super::{AwsError, AwsOptions, AwsSession};
use crate::detect::Detector;
pub use crate::model::fleet::Shard;
pub use crate::model::fleet::{FindingBrief, ImageOutcome, ImageStatus, SweepSummary};
use crate::model::{Finding, Severity};
use crate::scan::ScanOptions;
use crate::source::ebs::EbsOptions;
use std::collections::BTreeMap;
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
    /// Where results are kept.
    pub state: Arc<StateStore>,
    /// Only the images of this shard.
    pub shard: Option<Shard>,
    /// The accounts to sweep.
    pub accounts: AccountSelection,
    /// Read results from the state, scan nothing.
    pub report_only: bool,
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
    account: Option<&str>,
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
        account: account.map(str::to_string),
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

fn failed(account: Option<&str>, img: &ImageInfo, why: String) -> ImageOutcome {
    let mut o = outcome(
        account,
        img,
        &[],
        false,
        false,
        Severity::Critical,
        Some(why),
    );
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

/// A session per (account, region); the account is empty for the caller's own.
type Sessions = BTreeMap<(String, String), Arc<AwsSession>>;

/// An image and the account it was listed in.
struct Item {
    account: Option<String>,
    img: ImageInfo,
}

/// Scan (or recall) one image: the result loaded at the start, else one another worker stored
/// since, else a scan. `report_only` never scans.
fn sweep_image(
    session: &AwsSession,
    item: &Item,
    opts: &SweepOptions,
    det: &Detector,
    loaded: &BTreeMap<String, CachedScan>,
) -> (ImageOutcome, Option<CachedScan>) {
    let (acct, img) = (item.account.as_deref(), &item.img);
    if img.snapshot_ids.is_empty() {
        return (
            failed(
                acct,
                img,
                "no EBS snapshot to read (instance-store AMI)".into(),
            ),
            None,
        );
    }
    let k = key(&img.snapshot_ids, &cache_version(det, opts));
    let hit = match loaded.get(&k) {
        Some(c) => Some(c.clone()),
        None if opts.report_only => None,
        None => match opts.state.get(&k) {
            Ok(c) => c,
            Err(e) => return (failed(acct, img, e.to_string()), None),
        },
    };
    if let Some(c) = hit {
        return (
            outcome(acct, img, &c.findings, true, true, opts.fail_on, None),
            None,
        );
    }
    if opts.report_only {
        let mut o = outcome(acct, img, &[], false, false, opts.fail_on, None);
        o.status = ImageStatus::NotScanned;
        o.error = Some(format!(
            "no complete result in the {}",
            opts.state.describe()
        ));
        return (o, None);
    }
    let report = match scan_ebs_target(
        session,
        &EbsTarget::Ami(img.id.clone()),
        &opts.ebs,
        det,
        &opts.scan,
    ) {
        Ok(r) => r,
        Err(e) => return (failed(acct, img, e.to_string()), None),
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
        acct,
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

/// Every image the sweep covers (its accounts and regions, its shard), public first, grouped
/// by cache key; regions or accounts that could not be listed go to `summary.region_errors`.
fn list_items(
    aws: &AwsOptions,
    opts: &SweepOptions,
    det: &Detector,
    summary: &mut SweepSummary,
) -> Result<(Vec<Vec<Item>>, Sessions), SweepError> {
    let accounts = member_accounts(aws, &opts.accounts)?;
    let several = accounts.iter().any(|a| a.account_id.is_some());
    let mut sessions = BTreeMap::new();
    let mut items: Vec<Item> = Vec::new();
    let mut all_regions = Vec::new();
    for acct in &accounts {
        let label = acct.account_id.clone().unwrap_or_default();
        if let Some(id) = &acct.account_id {
            summary.accounts.push(id.clone());
        }
        let regions = match resolve_regions(&acct.options, opts.regions.as_deref()) {
            Ok(r) => r,
            // One account that cannot be reached (its role not assumable) is reported; the
            // caller's own regions not listable stops the sweep, as before.
            Err(e) if several => {
                summary.region_errors.push(format!("account {label}: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for r in &regions {
            let listed = session_for(&acct.options, r).and_then(|s| {
                let ec2 = s.ec2_client().clone();
                let (region, owners) = (r.clone(), opts.owners.clone());
                let imgs = s.run(async move {
                    ec2ops::list_images(&ec2, &region, &owners, &[("state", "available")]).await
                })?;
                Ok((s, imgs))
            });
            match listed {
                Ok((s, imgs)) => {
                    sessions.insert((label.clone(), r.clone()), Arc::new(s));
                    items.extend(imgs.into_iter().map(|img| Item {
                        account: acct.account_id.clone(),
                        img,
                    }));
                }
                Err(e) if several => summary
                    .region_errors
                    .push(format!("account {label} {r}: {e}")),
                Err(e) => summary.region_errors.push(format!("{r}: {e}")),
            }
        }
        all_regions.extend(regions);
    }
    all_regions.sort();
    all_regions.dedup();
    summary.regions = all_regions;
    if let Some(shard) = opts.shard {
        items.retain(|i| shard.contains(&i.img.snapshot_ids));
        summary.shard = Some(shard.to_string());
    }
    // Public images first: they are the ones that hurt.
    items.sort_by(|a, b| {
        b.img
            .public
            .cmp(&a.img.public)
            .then_with(|| a.account.cmp(&b.account))
            .then_with(|| a.img.region.cmp(&b.img.region))
            .then_with(|| a.img.id.cmp(&b.img.id))
    });
    items.dedup_by(|a, b| {
        a.account == b.account && a.img.region == b.img.region && a.img.id == b.img.id
    });
    summary.images = items.len();
    summary.public_images = items.iter().filter(|i| i.img.public).count();
    // Images with the same snapshots (one state entry) go together, in the order of the first.
    let version = cache_version(det, opts);
    let mut groups: Vec<Vec<Item>> = Vec::new();
    let mut group_of: BTreeMap<String, usize> = BTreeMap::new();
    for it in items {
        if it.img.snapshot_ids.is_empty() {
            groups.push(vec![it]);
            continue;
        }
        let k = key(&it.img.snapshot_ids, &version);
        match group_of.get(&k).and_then(|g| groups.get_mut(*g)) {
            Some(g) => g.push(it),
            None => {
                group_of.insert(k, groups.len());
                groups.push(vec![it]);
            }
        }
    }
    Ok((groups, sessions))
}

/// Run a sweep. `on_image` sees every image as it finishes (from worker threads, one at a
/// time); `stop` set (Ctrl-C) makes workers take no new image. Each newly scanned complete
/// result is stored as soon as it is known.
pub fn sweep(
    aws: &AwsOptions,
    opts: &SweepOptions,
    det: &Detector,
    stop: &AtomicBool,
    on_image: &mut (dyn FnMut(&ImageOutcome) + Send),
) -> Result<SweepSummary, SweepError> {
    let mut summary = SweepSummary {
        catalog_version: cache_version(det, opts),
        report_only: opts.report_only,
        ..SweepSummary::default()
    };
    let loaded = opts.state.load_all()?;
    summary.state_errors = loaded.errors;
    let (groups, sessions) = list_items(aws, opts, det, &mut summary)?;

    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let not_scanned = AtomicUsize::new(0);
    let save_error: Mutex<Option<StateError>> = Mutex::new(None);
    let shared = Mutex::new((&mut summary, on_image));
    let workers = opts.parallel.clamp(1, 64).min(groups.len().max(1));
    let entries = &loaded.entries;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(group) = groups.get(i) else { return };
                    // The first complete result of the group stands for the others.
                    let mut first: Option<Vec<Finding>> = None;
                    for item in group {
                        let stopped = stop.load(Ordering::SeqCst)
                            || opts
                                .stop_after
                                .is_some_and(|k| finished.load(Ordering::SeqCst) >= k);
                        if stopped {
                            return;
                        }
                        let acct = item.account.as_deref();
                        let (out, cache) = match &first {
                            Some(f) => (
                                outcome(acct, &item.img, f, true, true, opts.fail_on, None),
                                None,
                            ),
                            None => {
                                let at = (
                                    acct.unwrap_or_default().to_string(),
                                    item.img.region.clone(),
                                );
                                match sessions.get(&at) {
                                    Some(s) => sweep_image(s, item, opts, det, entries),
                                    None => (
                                        failed(acct, &item.img, "no session for its region".into()),
                                        None,
                                    ),
                                }
                            }
                        };
                        if let Some(c) = cache {
                            if let Err(e) = opts.state.put(&c) {
                                *save_error
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                            }
                            first = Some(c.findings);
                        } else if out.cached && first.is_none() {
                            first = entries
                                .get(&key(&item.img.snapshot_ids, &cache_version(det, opts)))
                                .map(|c| c.findings.clone());
                        }
                        finished.fetch_add(1, Ordering::SeqCst);
                        let mut g = shared
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let (sum, cb) = &mut *g;
                        if out.cached {
                            sum.cached += 1;
                        } else if !matches!(
                            out.status,
                            ImageStatus::Failed | ImageStatus::NotScanned
                        ) {
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
                            ImageStatus::NotScanned => {
                                not_scanned.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        cb(&out);
                    }
                }
            });
        }
    });
    let _ = shared.into_inner();
    let done = finished.load(Ordering::SeqCst);
    let missing = summary.images.saturating_sub(done);
    summary.interrupted = missing > 0;
    summary.not_reached = missing.saturating_add(not_scanned.load(Ordering::SeqCst));
    if let Some(e) = save_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e.into());
    }
    Ok(summary)
}
