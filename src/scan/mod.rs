//! The scan: lay out the target's volumes, open each filesystem, walk it, and stream every
//! regular file through the detector in parallel. Everything that could not be read lands in the
//! report, and makes the target incomplete.

pub mod archive;
mod content;
pub(crate) mod lookup;
mod plan;
mod progress;
pub mod quick;
mod raw;
mod reuse;
mod sparse;
pub mod target;
pub mod unallocated;
mod unreached;
mod volume;
pub mod walk;

pub use progress::{NoProgress, Progress, VolumeProgress};

use crate::detect::{DetectOptions, Detector};
use crate::report::{ScanError, ScanMode, Severity, TargetReport};
use crate::source::{FileSource, SharedSource};
use std::path::Path;
use std::sync::Arc;

/// How to scan.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Passed to the detector (`show_secrets`).
    pub detect: DetectOptions,
    /// Where the scan reports its progress (default: nowhere).
    pub progress: Arc<dyn Progress>,
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
            progress: Arc::new(NoProgress),
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
    /// The image file could not be opened. The OS error is the source, not part of the
    /// message: a chain printed with its causes says it once.
    #[error("cannot open {path}")]
    Open {
        /// The path given.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The target could not be read as what it is (a directory that cannot be listed, a
    /// compressed archive that cannot be decompressed).
    #[error("cannot read {path}: {why}")]
    Unreadable {
        /// The path given.
        path: String,
        /// Why.
        why: String,
    },
}

/// Scan a local target: a directory (the root of a filesystem), a tar archive of a root
/// (compressed or not), or a disk image ([`scan_image`]); which one is decided by content
/// ([`target::local_kind`]).
pub fn scan_path(
    path: &Path,
    det: &Detector,
    opts: &ScanOptions,
) -> Result<TargetReport, TargetError> {
    let kind = target::local_kind(path).map_err(|source| TargetError::Open {
        path: path.display().to_string(),
        source,
    })?;
    match kind {
        target::LocalKind::Dir => target::scan_dir(path, det, opts),
        target::LocalKind::Tar(c) => target::scan_tar(path, c, det, opts),
        target::LocalKind::Image => scan_image(path, det, opts),
    }
}

/// Scan a local disk image: a raw image, or a qcow2, VMDK, VHD or VHDX container (by magic)
/// read as the virtual disk it holds. A container that cannot be opened (a backing file,
/// encryption, a corrupt header) is a target-level error: the report is incomplete.
pub fn scan_image(
    path: &Path,
    det: &Detector,
    opts: &ScanOptions,
) -> Result<TargetReport, TargetError> {
    let file = FileSource::open(path).map_err(|source| TargetError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let file: SharedSource = Arc::new(file);
    let target = path.display().to_string();
    let kind = crate::source::container::detect(&*file);
    let mut report = match crate::source::container::open_source(file, Some(path)) {
        Ok(opened) => scan_source(target, opened.source, det, opts),
        Err(e) => {
            let mut r = scan_disks(target, vec![], det, opts);
            r.errors.push(ScanError {
                path: None,
                path_bytes: None,
                message: e.to_string(),
            });
            r.finalize();
            r
        }
    };
    report.container = kind.map(str::to_string);
    Ok(report)
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
        container: None,
        errors: vec![],
        warnings: vec![],
        snapshots: vec![],
        accounts: vec![],
        volumes: vec![],
        findings: vec![],
        suppressed: 0,
        vendor: 0,
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
        let layout = crate::volume::discover(disk.source);
        let err = |m: crate::volume::VolumeError| ScanError {
            path_bytes: None,
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
    let lvm = crate::volume::lvm::assemble(&volumes);
    report
        .errors
        .extend(lvm.errors.into_iter().map(|e| ScanError {
            path_bytes: None,
            path: None,
            message: e.to_string(),
        }));
    // btrfs filesystems of several devices, on any volume (logical volumes too): read once,
    // from the device with the lowest devid, the others attached.
    let all: Vec<&crate::volume::Volume> = volumes
        .iter()
        .enumerate()
        .filter(|(i, _)| !lvm.physical.contains(i))
        .map(|(_, v)| v)
        .chain(lvm.logical.iter())
        .collect();
    let none = crate::source::MemSource::new(Vec::new(), "no data");
    let sources: Vec<&dyn crate::source::Source> = all
        .iter()
        .map(|v| {
            if v.role == crate::volume::Role::Data {
                v.source.as_ref()
            } else {
                &none as &dyn crate::source::Source
            }
        })
        .collect();
    let groups = crate::fs::btrfs_groups(&sources);
    for (i, v) in volumes.iter().enumerate() {
        if lvm.physical.contains(&i) {
            report.volumes.push(volume::container(v));
        }
    }
    for (i, v) in all.iter().enumerate() {
        if let Some((g, devid)) = groups
            .iter()
            .find_map(|g| g.others.iter().find(|o| o.0 == i).map(|o| (g, o.1)))
        {
            let primary = all.get(g.primary).map_or("?", |p| p.id.as_str());
            report
                .volumes
                .push(volume::btrfs_member(v, devid, &g.fsid, primary));
            continue;
        }
        let others: Vec<SharedSource> = groups
            .iter()
            .find(|g| g.primary == i)
            .map(|g| {
                g.others
                    .iter()
                    .filter_map(|o| all.get(o.0).map(|v| v.source.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let (vr, findings) = volume::scan_volume_with(v, others, det, opts);
        report.findings.extend(findings);
        report.volumes.push(vr);
    }
    report.findings.retain(|f| f.severity >= opts.min_severity);
    report.finalize();
    report
}
