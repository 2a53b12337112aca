//! The scan: lay out the target's volumes, open each filesystem, walk it, and stream every
//! regular file through the detector in parallel. Everything that could not be read lands in the
//! report, and makes the target incomplete.

pub mod archive;
mod content;
mod lookup;
pub mod quick;
mod raw;
pub mod unallocated;
pub mod walk;

use crate::detect::{DetectOptions, Detector, VolumeFindings};
use crate::fs;
use crate::fs::Entry;
use crate::fs::probe::{FsKind, Probe, probe};
use crate::report::{ScanError, ScanMode, Severity, TargetReport, VolumeReport, VolumeStatus};
use crate::source::{FileSource, SharedSource};
use crate::volume::{self, Role, Volume};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
use std::sync::Arc;

/// How to scan.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Passed to the detector (`show_secrets`).
    pub detect: DetectOptions,
    /// Draw a progress bar on stderr (the caller decides: only on a terminal).
    pub progress: bool,
    /// Walk and read only the well-known places ([`quick::Scope`]) instead of every file.
    pub quick: bool,
    /// Also scan the blocks the filesystem marks free, and its journal or log.
    pub unallocated: bool,
    /// Findings below this severity are left out of the report.
    pub min_severity: Severity,
    /// Bounds on opening archives and compressed files.
    pub archives: archive::Limits,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            detect: DetectOptions::default(),
            progress: false,
            quick: false,
            unallocated: false,
            min_severity: Severity::Info,
            archives: archive::Limits::default(),
        }
    }
}

/// Why a target could not be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The image file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path given.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Scan a local raw disk image.
pub fn scan_image(
    path: &Path,
    det: &Detector,
    opts: &ScanOptions,
) -> Result<TargetReport, TargetError> {
    let src = FileSource::open(path).map_err(|source| TargetError::Open {
        path: path.display().to_string(),
        source,
    })?;
    Ok(scan_source(
        path.display().to_string(),
        Arc::new(src),
        det,
        opts,
    ))
}

/// One disk of a target: a local image, or one snapshot of an AMI.
pub struct Disk {
    /// Prefix for the ids of this disk's volumes when a target has several disks (the AMI's
    /// device name, `xvda`); `None` for a single disk.
    pub label: Option<String>,
    /// Its bytes.
    pub source: SharedSource,
}

/// Scan any source: the volumes inside it, then each volume's files.
pub fn scan_source(
    target: String,
    src: SharedSource,
    det: &Detector,
    opts: &ScanOptions,
) -> TargetReport {
    scan_disks(
        target,
        vec![Disk {
            label: None,
            source: src,
        }],
        det,
        opts,
    )
}

/// Scan the disks of one target together (an AMI's volumes): LVM volume groups may span them.
pub fn scan_disks(
    target: String,
    disks: Vec<Disk>,
    det: &Detector,
    opts: &ScanOptions,
) -> TargetReport {
    let mut report = TargetReport {
        target,
        mode: if opts.quick {
            ScanMode::Quick
        } else {
            ScanMode::Full
        },
        complete: false,
        errors: vec![],
        warnings: vec![],
        snapshots: vec![],
        volumes: vec![],
        findings: vec![],
        suppressed: 0,
    };
    let mut volumes = vec![];
    for disk in disks {
        if !opts.quick {
            disk.source.will_read_most();
        }
        let prefix = disk
            .label
            .as_deref()
            .map(|l| format!("{l}:"))
            .unwrap_or_default();
        let layout = volume::discover(disk.source);
        let err = |m: String| ScanError {
            path: None,
            message: format!("{prefix}{m}"),
        };
        report.errors.extend(layout.errors.into_iter().map(err));
        report.warnings.extend(layout.warnings.into_iter().map(err));
        for mut v in layout.volumes {
            v.id = format!("{prefix}{}", v.id);
            volumes.push(v);
        }
    }
    let lvm = volume::lvm::assemble(&volumes);
    report
        .errors
        .extend(lvm.errors.into_iter().map(|message| ScanError {
            path: None,
            message,
        }));
    for (i, v) in volumes.iter().enumerate() {
        if lvm.physical.contains(&i) {
            report.volumes.push(container(v));
            continue;
        }
        let (vr, findings) = scan_volume(v, det, opts);
        report.findings.extend(findings);
        report.volumes.push(vr);
    }
    for v in &lvm.logical {
        let (vr, findings) = scan_volume(v, det, opts);
        report.findings.extend(findings);
        report.volumes.push(vr);
    }
    report.findings.retain(|f| f.severity >= opts.min_severity);
    report.finalize();
    report
}

fn blank(v: &Volume) -> VolumeReport {
    VolumeReport {
        id: v.id.clone(),
        offset: v.offset,
        size: v.size,
        partition_name: v.partition_name.clone(),
        partition_type: v.partition_type.clone(),
        filesystem: None,
        status: VolumeStatus::NotScanned,
        files_scanned: 0,
        bytes_scanned: 0,
        unallocated_bytes_scanned: None,
        quick_roots: Vec::new(),
        errors: v
            .errors
            .iter()
            .map(|m| ScanError {
                path: None,
                message: m.clone(),
            })
            .collect(),
    }
}

fn container(v: &Volume) -> VolumeReport {
    let mut vr = blank(v);
    vr.filesystem = Some(FsKind::LvmPv.name().into());
    vr.status = VolumeStatus::Container;
    vr
}

/// Scan a volume's bytes with the content signatures after its filesystem could not be walked.
fn fall_back_to_raw(
    v: &Volume,
    mut vr: VolumeReport,
    why: String,
    det: &Detector,
    opts: &ScanOptions,
) -> (VolumeReport, Vec<crate::report::Finding>) {
    vr.errors.push(ScanError {
        path: None,
        message: format!(
            "{why}; the volume was scanned raw (block by block, content signatures only)"
        ),
    });
    let res = raw::scan_raw(v.source.as_ref(), det, &opts.detect);
    vr.status = VolumeStatus::ScannedRaw;
    vr.bytes_scanned = res.bytes_scanned;
    vr.errors.extend(res.errors);
    let mut findings = res.findings;
    for f in &mut findings {
        f.volume = v.id.clone();
    }
    (vr, findings)
}

/// What the filesystem could not take into account when it opened (an XFS log that could not be
/// replayed): each an error of the volume, and the bytes it names scanned raw.
fn open_problems(
    v: &Volume,
    filesystem: &dyn fs::Filesystem,
    vr: &mut VolumeReport,
    det: &Detector,
    opts: &ScanOptions,
) -> Vec<crate::report::Finding> {
    let mut findings = Vec::new();
    for p in filesystem.open_problems() {
        vr.errors.push(ScanError {
            path: None,
            message: p.message,
        });
        if let Some(r) = p.raw {
            let part = crate::source::Window::new(
                v.source.clone(),
                r.start,
                r.end.saturating_sub(r.start),
                format!("{} bytes {}..{}", v.source.describe(), r.start, r.end),
            );
            let res = raw::scan_raw(&part, det, &opts.detect);
            vr.errors.extend(res.errors);
            findings.extend(res.findings.into_iter().map(|mut f| {
                f.offset = Some(r.start + f.offset.unwrap_or(0));
                f
            }));
        }
    }
    findings
}

/// The parts of `ranges` inside `within` (sorted, disjoint).
fn within(
    ranges: &[std::ops::Range<u64>],
    within: &[std::ops::Range<u64>],
) -> Vec<std::ops::Range<u64>> {
    let mut out = Vec::new();
    for r in ranges {
        let from = within.partition_point(|w| w.end <= r.start);
        for w in within[from..].iter().take_while(|w| w.start < r.end) {
            out.push(r.start.max(w.start)..r.end.min(w.end));
        }
    }
    out
}

fn scan_volume(
    v: &Volume,
    det: &Detector,
    opts: &ScanOptions,
) -> (VolumeReport, Vec<crate::report::Finding>) {
    let mut vr = blank(v);
    if v.size == 0 {
        vr.errors.push(ScanError {
            path: None,
            message: "partition of zero bytes".into(),
        });
        return (vr, vec![]);
    }
    let probed = match probe(v.source.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            vr.errors.push(ScanError {
                path: None,
                message: format!("cannot read the start of the volume: {e}"),
            });
            return (vr, vec![]);
        }
    };
    let kind = match (probed, v.role) {
        (Probe::Known(k), _) => k,
        (probed, role) => {
            // No filesystem: a BIOS boot partition (boot-loader code) or a volume whose start is
            // zero. Its bytes still go through the signatures; data in a volume that should be
            // empty is an unknown format, and the scan says so.
            let res = raw::scan_raw(v.source.as_ref(), det, &opts.detect);
            vr.status = VolumeStatus::NoFilesystem;
            vr.bytes_scanned = res.bytes_scanned;
            vr.errors.extend(res.errors);
            let unknown_data = match (probed, role) {
                (Probe::Unknown, Role::Data) => true,
                (Probe::Zeroed, Role::Data) => res.bytes_scanned > 0,
                _ => false,
            };
            if unknown_data {
                vr.status = VolumeStatus::ScannedRaw;
                vr.errors.push(ScanError {
                    path: None,
                    message: "no filesystem recognised: no ext4/XFS/FAT superblock magic at the \
                              start of the volume (corrupt or zeroed superblock, or an unknown \
                              format); the volume was scanned raw (block by block, content \
                              signatures only)"
                        .into(),
                });
            }
            let mut findings = res.findings;
            for f in &mut findings {
                f.volume = v.id.clone();
            }
            return (vr, findings);
        }
    };
    vr.filesystem = Some(kind.name().to_string());
    if kind == FsKind::Swap {
        let why = "swap area: it has no files but may hold memory pages with secrets";
        return fall_back_to_raw(v, vr, why.into(), det, opts);
    }
    let filesystem = match fs::open(kind, v.source.clone()) {
        Ok(f) => f,
        Err(e) => return fall_back_to_raw(v, vr, e.to_string(), det, opts),
    };
    let reader = match filesystem.reader() {
        Ok(r) => r,
        Err(e) => return fall_back_to_raw(v, vr, e.to_string(), det, opts),
    };
    let mut open_findings = open_problems(v, filesystem.as_ref(), &mut vr, det, opts);
    if !opts.quick {
        v.source.will_read_most();
    }
    // --quick walks only its scope: the fixed roots and the home directories of /etc/passwd.
    // A volume without /etc/passwd or /etc/os-release is not a root filesystem (a separate
    // /home, /var or /usr/local): it is walked whole.
    let scope = opts.quick.then(|| {
        use crate::detect::{FileLookup, MetaKind};
        let root = lookup::FsLookup::new(reader.as_ref(), &[]);
        let is_file = |p: &str| root.metadata(p).is_some_and(|m| m.kind == MetaKind::File);
        let has_passwd = is_file("/etc/passwd");
        if has_passwd || is_file("/etc/os-release") {
            let passwd = root.read("/etc/passwd", 1 << 20);
            if passwd.is_none() && has_passwd {
                vr.errors.push(ScanError {
                    path: Some("/etc/passwd".into()),
                    message: "quick scan: /etc/passwd could not be read, so the home \
                              directories it names were not walked"
                        .into(),
                });
            }
            quick::Scope::new(passwd.as_deref(), &|d| root.real_dir(d))
        } else {
            quick::Scope::everything()
        }
    });
    drop(reader);
    let bar = if opts.progress {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_prefix(format!("{} {}", v.id, kind.name()));
        b
    } else {
        ProgressBar::hidden()
    };
    // A full scan of a remote volume, where the walk waits for one directory after another:
    // - the source is given the allocation map (read on a thread of its own while the walk
    //   starts), so it fetches the blocks the scan will read in the background whenever the
    //   walk leaves the request quota idle (if the map cannot be read, the scan only loses that
    //   head start);
    // - the files the walk finds whose blocks have arrived are scanned while it goes on; the
    //   others after it, in physical order.
    let remote_full = !opts.quick && v.source.remote();
    let threads = if v.source.remote() {
        walk::REMOTE_THREADS
    } else {
        rayon::current_num_threads()
    };
    let ready = |e: &Entry| e.size == 0 || e.phys == 0 || v.source.ready(e.phys, e.size);
    let digests = content::Digests::default();
    let scanner = content::Scanner {
        det,
        opts: &opts.detect,
        limits: &opts.archives,
    };
    let (mut walked, early, later, allocated) = std::thread::scope(|s| {
        let planner = remote_full.then(|| {
            s.spawn(|| {
                let plan = fs::allocated(kind, &v.source).and_then(Result::ok)?;
                v.source.will_read(&plan);
                Some(plan)
            })
        });
        let (walked, early, later) = match &scope {
            Some(q) => (
                walk::walk_within(filesystem.as_ref(), threads, &|d| q.lists(d), &|_| {}),
                content::ContentResult::default(),
                None,
            ),
            None if remote_full => {
                let (w, done, later) = content::scan_during(
                    filesystem.as_ref(),
                    scanner,
                    &bar,
                    &digests,
                    &ready,
                    |found| walk::walk_within(filesystem.as_ref(), threads, &|_| true, found),
                );
                (w, done, Some(later))
            }
            None => (
                walk::walk(filesystem.as_ref(), threads),
                content::ContentResult::default(),
                None,
            ),
        };
        let allocated = planner.and_then(|p| p.join().ok().flatten());
        (walked, early, later, allocated)
    });
    vr.status = VolumeStatus::Scanned;
    vr.quick_roots = scope.iter().flat_map(quick::Scope::roots).collect();
    vr.errors.append(&mut walked.errors);
    let quick_files: Vec<Entry>;
    let content_files: &[Entry] = match (&scope, &later) {
        (Some(s), _) => {
            quick_files = walked
                .files
                .iter()
                .filter(|f| s.reads(&f.path))
                .cloned()
                .collect();
            &quick_files
        }
        (None, Some(later)) => later,
        (None, None) => &walked.files,
    };
    if let Some(later) = &later {
        // What is left is read in physical order: the sweep now fetches just that, within the
        // allocated space (a sparse file's byte range spans blocks it does not have).
        let mut plan: Vec<std::ops::Range<u64>> = later
            .iter()
            .filter(|e| e.phys != 0 && e.size != 0)
            .map(|e| e.phys..e.phys.saturating_add(e.size))
            .collect();
        plan.sort_unstable_by_key(|r| r.start);
        if let Some(allocated) = &allocated {
            plan = within(&plan, allocated);
        }
        v.source.will_read(&plan);
    } else {
        bar.set_length(
            content_files
                .iter()
                .map(|f| f.size)
                .fold(0, u64::saturating_add),
        );
    }
    // The checks that need several files of the volume (sshd includes, sudoers.d, the package
    // database, setuid files) run alongside the content scan, through their own reader: they
    // are mostly one thread's work (reading the package database, hashing the packaged
    // binaries whose MD5 the content scan has not computed yet: `digests`), which the content
    // scan's other workers overlap. On a remote source without a sweep (--quick) they run
    // first (see `Source::remote`). They see every walked file; --quick judges the setuid
    // files its walk saw but does not verify packaged files.
    let checks = || match filesystem.reader() {
        Ok(reader) => {
            let mut lookup =
                lookup::FsLookup::new(reader.as_ref(), &walked.files).with_digests(&digests);
            if opts.quick {
                lookup = lookup.without_content_verification();
            }
            det.scan_volume(&lookup, &opts.detect)
        }
        Err(e) => VolumeFindings {
            findings: Vec::new(),
            errors: vec![ScanError {
                path: None,
                message: format!("volume checks could not open the filesystem: {e}"),
            }],
        },
    };
    let content = || {
        content::scan_files(
            filesystem.as_ref(),
            content_files,
            scanner,
            &bar,
            v.source.remote(),
            &digests,
        )
    };
    let (checked, mut res) = if v.source.remote() && !remote_full {
        let checked = checks();
        (checked, content())
    } else {
        rayon::join(checks, content)
    };
    res.merge(early);
    // Which files were scanned during the walk depends on timing: the report does not.
    res.errors
        .sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.message.cmp(&b.message)));
    bar.finish_and_clear();
    if remote_full {
        v.source.will_read(&[]);
    }
    vr.errors.extend(checked.errors);
    let mut volume_findings = checked.findings;
    vr.files_scanned = res.files_scanned;
    vr.bytes_scanned = res.bytes_scanned;
    vr.errors.extend(res.errors);
    let mut findings = res.findings;
    findings.append(&mut volume_findings);
    findings.append(&mut open_findings);
    if opts.unallocated {
        let free = unallocated::scan_free(v, kind, &findings, det, &opts.detect);
        vr.unallocated_bytes_scanned = Some(free.bytes_scanned);
        vr.errors.extend(free.errors);
        findings.extend(free.findings);
    }
    for f in &mut findings {
        f.volume = v.id.clone();
    }
    (vr, findings)
}

#[cfg(test)]
mod tests {
    /// The remote plan after a walk keeps only what lies in the allocated space.
    #[test]
    fn a_plan_is_cut_to_the_allocated_space() {
        let allocated = [0..10, 20..30, 40..50];
        assert_eq!(
            super::within(&[5..25, 8..9, 30..40, 45..100], &allocated),
            [5..10, 20..25, 8..9, 45..50]
        );
    }
}
