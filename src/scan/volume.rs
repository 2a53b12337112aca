//! The scan of one volume, step by step: probe its start → open its filesystem (or fall back
//! to a raw, block-by-block scan) → the --quick scope → walk → the inode sweep (the files the
//! walk could not reach; not with --quick) → content scan and the checks that need several
//! files → the unallocated space. Each step adds what it could not read to the
//! volume's report; a step that ends the volume's scan (nothing to walk) returns its findings.

use super::content::{self, ContentResult, Digests, Scanner};
use super::walk::{self, Walk};
use super::{ScanOptions, VolumeProgress, lookup, plan, quick, raw, unallocated, unreached};
use crate::detect::{Detector, VolumeFindings};
use crate::fs;
use crate::fs::probe::{FsKind, Probe, probe};
use crate::fs::{Entry, Filesystem, FsReader};
use crate::report::{Finding, ScanError, VolumeReport, VolumeStatus};
use crate::volume::{Role, Volume};
use std::ops::Range;

/// A volume's report with nothing scanned yet (its layout errors only).
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
        files_shared: 0,
        bytes_scanned: 0,
        unallocated_bytes_scanned: None,
        quick_roots: Vec::new(),
        warnings: Vec::new(),
        note: None,
        errors: v
            .errors
            .iter()
            .map(|m| ScanError {
                path_bytes: None,
                path: None,
                message: m.to_string(),
            })
            .collect(),
    }
}

/// The report of an LVM physical volume: a container, scanned through its logical volumes.
pub(super) fn container(v: &Volume) -> VolumeReport {
    let mut vr = blank(v);
    vr.filesystem = Some(FsKind::LvmPv.name().into());
    vr.status = VolumeStatus::Container;
    vr
}

/// The report of a device of a btrfs filesystem of several devices other than the one it is
/// read from (`primary`, the volume id): its files are in that volume's report.
pub(super) fn btrfs_member(v: &Volume, devid: u64, fsid: &str, primary: &str) -> VolumeReport {
    let mut vr = blank(v);
    vr.filesystem = Some(FsKind::Btrfs.name().into());
    vr.status = VolumeStatus::Container;
    vr.note = Some(format!(
        "btrfs device {devid} of filesystem {fsid}: read with volume {primary}"
    ));
    vr
}

/// Scan one volume: every step below, in order; `others` are the other devices of the btrfs
/// filesystem it holds, when it has several ([`crate::fs::btrfs_groups`]).
pub(super) fn scan_volume_with(
    v: &Volume,
    others: Vec<crate::source::SharedSource>,
    det: &Detector,
    opts: &ScanOptions,
) -> (VolumeReport, Vec<Finding>) {
    let mut vr = blank(v);
    let kind = match probe_volume(v, &mut vr, det, opts) {
        Ok(kind) => kind,
        Err(findings) => return (vr, findings),
    };
    vr.filesystem = Some(kind.name().to_string());
    let (filesystem, reader) = match open(v, kind, others) {
        Ok(opened) => opened,
        Err(why) => return fall_back_to_raw(v, vr, why, det, opts),
    };
    scan_filesystem(v, Some(kind), filesystem, reader, vr, det, opts)
}

/// Scan a filesystem that is not on a volume of a disk: a directory or a tar archive
/// (`scan/target.rs`). `v` is its stand-in volume (the archive's bytes, or none). Every step
/// of [`scan_volume`] after the filesystem is open runs as for a disk image.
pub(super) fn scan_tree(
    v: &Volume,
    filesystem: Box<dyn Filesystem>,
    det: &Detector,
    opts: &ScanOptions,
) -> (VolumeReport, Vec<Finding>) {
    let mut vr = blank(v);
    vr.filesystem = Some(filesystem.name().to_string());
    let reader = match filesystem.reader() {
        Ok(r) => r,
        Err(e) => {
            vr.errors.push(ScanError {
                path: None,
                path_bytes: None,
                message: e.to_string(),
            });
            return (vr, Vec::new());
        }
    };
    scan_filesystem(v, None, filesystem, reader, vr, det, opts)
}

/// The steps after the filesystem is open: `kind` is the probed kind on a disk volume, `None`
/// for a directory or a tar archive (no free space, no allocation map).
fn scan_filesystem(
    v: &Volume,
    kind: Option<FsKind>,
    filesystem: Box<dyn Filesystem>,
    reader: Box<dyn FsReader>,
    mut vr: VolumeReport,
    det: &Detector,
    opts: &ScanOptions,
) -> (VolumeReport, Vec<Finding>) {
    let mut open_findings = open_problems(v, filesystem.as_ref(), &mut vr, det, opts);
    if !opts.quick {
        v.source.will_read_most();
    }
    let scope = opts.quick.then(|| quick_scope(reader.as_ref(), &mut vr));
    drop(reader);
    let bar = opts
        .progress
        .volume(&v.id, kind.map_or(filesystem.name(), |k| k.name()));
    let digests = Digests::default();
    let reuse = super::reuse::Reuse::default();
    let scanner = Scanner {
        det,
        opts: &opts.detect,
        limits: &opts.archives,
        reuse: &reuse,
    };
    let remote_full = !opts.quick && v.source.remote();
    let (mut walked, early, mut later, allocated) = walk(
        v,
        kind,
        filesystem.as_ref(),
        scope.as_ref(),
        scanner,
        bar.as_ref(),
        &digests,
    );
    vr.status = VolumeStatus::Scanned;
    vr.quick_roots = scope.iter().flat_map(quick::Scope::roots).collect();
    vr.errors.append(&mut walked.errors);
    if scope.is_none() {
        let mut swept = unreached::sweep(filesystem.as_ref(), &walked);
        if opts.unallocated {
            let deleted = unreached::deleted(filesystem.as_ref());
            swept.errors.extend(deleted.errors);
            swept.files.extend(deleted.files);
        }
        vr.errors.extend(swept.errors);
        if !swept.files.is_empty() {
            if let Some(later) = &mut later {
                later.extend(swept.files.iter().cloned());
            }
            walked.files.extend(swept.files);
            walked.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        }
    }
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
        // allocated space.
        plan::sweep_remaining(&v.source, later, allocated.as_deref());
    } else {
        bar.set_length(
            content_files
                .iter()
                .map(|f| f.size)
                .fold(0, u64::saturating_add),
        );
    }
    let checks = || checks(filesystem.as_ref(), &walked.files, &digests, det, opts);
    let content = || {
        content::scan_files(
            filesystem.as_ref(),
            content_files,
            scanner,
            bar.as_ref(),
            v.source.remote(),
            &digests,
        )
    };
    // On a remote source without a sweep (--quick) the checks run first (see
    // `Source::remote`); otherwise alongside the content scan, whose other workers overlap
    // their mostly single-threaded work.
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
    bar.finish();
    if remote_full {
        v.source.scan_ended();
    }
    vr.errors.extend(checked.errors);
    let mut volume_findings = checked.findings;
    vr.files_scanned = res.files_scanned;
    vr.files_shared = res.files_shared;
    vr.bytes_scanned = res.bytes_scanned;
    vr.errors.extend(res.errors);
    let mut findings = res.findings;
    findings.append(&mut volume_findings);
    provenance(
        filesystem.as_ref(),
        &walked.files,
        &digests,
        det,
        &mut findings,
    );
    findings.append(&mut open_findings);
    vr.warnings
        .extend(filesystem.warnings().into_iter().map(|message| ScanError {
            path: None,
            path_bytes: None,
            message,
        }));
    match kind {
        Some(kind) if opts.unallocated => {
            scan_unallocated(v, kind, &mut vr, &mut findings, det, opts)
        }
        None if opts.unallocated => vr.warnings.push(ScanError {
            path: None,
            path_bytes: None,
            message: format!(
                "--unallocated: a {} has no free space to read",
                filesystem.name()
            ),
        }),
        _ => {}
    }
    for f in &mut findings {
        f.volume = v.id.clone();
    }
    (vr, findings)
}

/// Probe the start of the volume for a filesystem. `Err` ends the volume's scan with its
/// findings: a volume of zero bytes, an unreadable start, or no filesystem (a BIOS boot
/// partition, a volume whose start is zero, a dm-verity hash tree, a swap area), whose bytes
/// still go through the signatures; data in a volume that should be empty is an unknown
/// format, and the scan says so.
fn probe_volume(
    v: &Volume,
    vr: &mut VolumeReport,
    det: &Detector,
    opts: &ScanOptions,
) -> Result<FsKind, Vec<Finding>> {
    if v.size == 0 {
        vr.errors.push(ScanError {
            path_bytes: None,
            path: None,
            message: "partition of zero bytes".into(),
        });
        return Err(vec![]);
    }
    let probed = match probe(v.source.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            vr.errors.push(ScanError {
                path_bytes: None,
                path: None,
                message: format!("cannot read the start of the volume: {e}"),
            });
            return Err(vec![]);
        }
    };
    const HASHES: &str = "the hashes of another partition's blocks, no files";
    const BOOT_CODE: &str = "boot-loader code, no files; its bytes were scanned raw";
    let note = match (&probed, v.role) {
        (Probe::Known(FsKind::Swap), _) => return Err(swap(v, vr, det, opts)),
        (Probe::Known(FsKind::Verity), _) => {
            vr.filesystem = Some(FsKind::Verity.name().into());
            Some(format!("dm-verity hash tree (verity superblock): {HASHES}"))
        }
        (Probe::Known(k), _) => return Ok(*k),
        (_, Role::VerityHash) => Some(format!(
            "dm-verity hash partition (by its partition type {}): {HASHES}",
            v.partition_type.as_deref().unwrap_or("?")
        )),
        (_, Role::BiosBoot) => Some(format!(
            "BIOS boot partition (by its partition type {}): {BOOT_CODE}",
            v.partition_type.as_deref().unwrap_or("?")
        )),
        (_, Role::PrepBoot) => Some(format!(
            "PowerPC PReP boot partition (by its partition type {}): {BOOT_CODE}",
            v.partition_type.as_deref().unwrap_or("?")
        )),
        _ => None,
    };
    let res = raw::scan_raw(v.source.as_ref(), det, &opts.detect);
    vr.status = VolumeStatus::NoFilesystem;
    vr.note = note;
    vr.bytes_scanned = res.bytes_scanned;
    vr.errors.extend(res.errors);
    let unknown_data = match (probed, v.role) {
        (Probe::Unknown, Role::Data) => true,
        (Probe::Zeroed, Role::Data) => res.bytes_scanned > 0,
        _ => false,
    };
    if unknown_data {
        vr.status = VolumeStatus::ScannedRaw;
        vr.errors.push(ScanError {
            path_bytes: None,
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
    Err(findings)
}

/// A swap area: no files, but memory pages that may hold secrets. Every non-zero byte is
/// scanned raw; the volume holds no filesystem by design, so it is incomplete only when some
/// of it could not be read. The note says whether anything was ever swapped out (all zeros
/// after the header page).
fn swap(v: &Volume, vr: &mut VolumeReport, det: &Detector, opts: &ScanOptions) -> Vec<Finding> {
    vr.filesystem = Some(FsKind::Swap.name().into());
    vr.status = VolumeStatus::NoFilesystem;
    let len = v.source.len();
    let mut head = vec![0u8; usize::try_from(len.min(64 * 1024)).unwrap_or(0)];
    // The probe just read these bytes: a failure here is as good as a header of one page.
    let header = match v.source.read_at(0, &mut head) {
        Ok(()) => crate::fs::probe::swap_header_len(&head).unwrap_or(4096),
        Err(_) => 4096,
    }
    .min(len);
    let mut findings = Vec::new();
    let mut pages = 0u64;
    for (start, end) in [(0, header), (header, len)] {
        let part = crate::source::Window::new(
            v.source.clone(),
            start,
            end - start,
            format!("{} bytes {start}..{end}", v.source.describe()),
        );
        let res = raw::scan_raw(&part, det, &opts.detect);
        vr.bytes_scanned = vr.bytes_scanned.saturating_add(res.bytes_scanned);
        if start > 0 {
            pages = res.bytes_scanned;
        }
        vr.errors.extend(res.errors);
        findings.extend(res.findings.into_iter().map(|mut f| {
            f.offset = Some(start + f.offset.unwrap_or(0));
            f.volume = v.id.clone();
            f
        }));
    }
    vr.note = Some(if pages == 0 {
        "swap area, all zeros after its header: nothing was ever swapped out, no files".into()
    } else {
        format!(
            "swap area: no files; its {pages} non-zero bytes after the header were scanned \
             raw (memory pages can hold secrets)"
        )
    });
    findings
}

/// A volume's filesystem and a reader on it.
type Opened = (Box<dyn Filesystem>, Box<dyn FsReader>);

/// Open the filesystem and a reader on it. `Err` says why it cannot be walked (a format amiscan
/// names but does not read; a filesystem that does not open): the volume is then scanned raw.
fn open(
    v: &Volume,
    kind: FsKind,
    others: Vec<crate::source::SharedSource>,
) -> Result<Opened, String> {
    if !fs::readable(kind) {
        return Err(match kind {
            FsKind::Luks => format!("{}: not read (its content is encrypted)", kind.describe()),
            _ => format!("{}: not read", kind.describe()),
        });
    }
    let filesystem = if kind == FsKind::Btrfs && !others.is_empty() {
        fs::open_btrfs_devices(v.source.clone(), others)
    } else {
        fs::open(kind, v.source.clone())
    }
    .map_err(|e| e.to_string())?;
    let reader = filesystem.reader().map_err(|e| e.to_string())?;
    Ok((filesystem, reader))
}

/// What the filesystem could not take into account when it opened (an XFS log that could not be
/// replayed): each an error of the volume, and the bytes it names scanned raw.
fn open_problems(
    v: &Volume,
    filesystem: &dyn Filesystem,
    vr: &mut VolumeReport,
    det: &Detector,
    opts: &ScanOptions,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for p in filesystem.open_problems() {
        vr.errors.push(ScanError {
            path_bytes: None,
            path: None,
            message: p.message,
        });
        for r in p.raw {
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

/// Scan a volume's bytes with the content signatures after its filesystem could not be walked.
fn fall_back_to_raw(
    v: &Volume,
    mut vr: VolumeReport,
    why: String,
    det: &Detector,
    opts: &ScanOptions,
) -> (VolumeReport, Vec<Finding>) {
    vr.errors.push(ScanError {
        path_bytes: None,
        path: None,
        message: format!(
            "{why}; its bytes were scanned raw (block by block, content signatures only: the \
             checks that need a file's path could not run)"
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

/// What --quick walks: the fixed roots and the home directories of /etc/passwd. A Windows
/// volume (NTFS, no /etc, `Windows\System32`) walks the Windows places of the registry. A volume
/// without /etc/passwd or /etc/os-release is not a root filesystem (a separate /home, /var or
/// /usr/local): it is walked whole. What cannot be read to decide this is an error of the
/// volume (the fixed roots are walked, the home directories are not known).
fn quick_scope(reader: &dyn FsReader, vr: &mut VolumeReport) -> quick::Scope {
    use crate::detect::{FileLookup, MetaKind, Unreadable};
    let root = lookup::FsLookup::new(reader, &[]);
    let passwd = || -> Result<Option<Vec<u8>>, Unreadable> {
        let is_file = |p: &str| {
            root.metadata(p)
                .map(|m| m.is_some_and(|m| m.kind == MetaKind::File))
        };
        if !is_file("/etc/passwd")? && !is_file("/etc/os-release")? {
            return Ok(None);
        }
        Ok(Some(root.read("/etc/passwd", 1 << 20)?.unwrap_or_default()))
    };
    let passwd = match passwd() {
        Ok(Some(passwd)) => Some(passwd),
        Ok(None) if vr.filesystem.as_deref() == Some(FsKind::Ntfs.name()) && windows(&root) => {
            return quick::Scope::windows();
        }
        Ok(None) => return quick::Scope::everything(),
        Err(e) => {
            vr.errors.push(
                e.scan_error("quick scan: the home directories /etc/passwd names were not walked"),
            );
            None
        }
    };
    let unread = std::cell::RefCell::new(Vec::new());
    let scope = quick::Scope::new(passwd.as_deref(), &|d| {
        root.real_dir(d).unwrap_or_else(|e| {
            unread.borrow_mut().push(e);
            None
        })
    });
    for e in unread.into_inner() {
        vr.errors.push(e.scan_error(
            "quick scan: where this directory leads could not be resolved; only its own path \
             was walked",
        ));
    }
    scope
}

/// Whether the (NTFS) volume is a Windows system volume: `Windows\System32` (any case) is a
/// directory at its root. What cannot be read to decide this says no (the volume is walked
/// whole).
fn windows(root: &lookup::FsLookup<'_>) -> bool {
    use crate::detect::{FileLookup, MetaKind};
    let found = crate::detect::checks::windows_hives::find_path(root, &["Windows", "System32"]);
    matches!(found, Ok(Some(p)) if root
        .metadata(&p)
        .is_ok_and(|m| m.is_some_and(|m| m.kind == MetaKind::Dir)))
}

/// What the walk step gives: the walk, the files already scanned during it, the files left for
/// after it (a full remote scan only) and the allocated space (when the remote plan read it).
type Walked = (
    Walk,
    ContentResult,
    Option<Vec<Entry>>,
    Option<Vec<Range<u64>>>,
);

/// Walk the filesystem (within the --quick `scope` if any). A full scan of a remote volume,
/// where the walk waits for one directory after another:
/// - the source is given the allocation map (read on a thread of its own while the walk
///   starts, [`plan::prefetch_allocated`]), so it fetches the blocks the scan will read in the
///   background whenever the walk leaves the request quota idle;
/// - the files the walk finds whose blocks have arrived are scanned while it goes on; the
///   others after it, in physical order.
fn walk(
    v: &Volume,
    kind: Option<FsKind>,
    filesystem: &dyn Filesystem,
    scope: Option<&quick::Scope>,
    scanner: Scanner<'_>,
    bar: &dyn VolumeProgress,
    digests: &Digests,
) -> Walked {
    let remote_full = scope.is_none() && v.source.remote();
    let threads = if v.source.remote() {
        walk::REMOTE_THREADS
    } else {
        rayon::current_num_threads()
    };
    let ready = |e: &Entry| e.size == 0 || e.phys == 0 || v.source.ready(e.phys, e.size);
    if scope.is_none() {
        filesystem.will_walk_whole();
    }
    std::thread::scope(|s| {
        let planner = kind
            .filter(|_| remote_full)
            .map(|kind| s.spawn(move || plan::prefetch_allocated(kind, &v.source)));
        let (walked, early, later) = match scope {
            Some(q) => (
                walk::walk_within(filesystem, threads, &|d| q.lists(d), &|_| {}),
                ContentResult::default(),
                None,
            ),
            None if remote_full => {
                let (w, done, later) =
                    content::scan_during(filesystem, scanner, bar, digests, &ready, |found| {
                        walk::walk_within(filesystem, threads, &|_| true, found)
                    });
                (w, done, Some(later))
            }
            None => (
                walk::walk(filesystem, threads),
                ContentResult::default(),
                None,
            ),
        };
        let allocated = planner.and_then(|p| p.join().ok().flatten());
        (walked, early, later, allocated)
    })
}

/// The checks that need several files of the volume (sshd includes, sudoers.d, the package
/// database, setuid files), through their own reader: mostly one thread's work (reading the
/// package database, hashing the packaged binaries whose MD5 the content scan has not computed
/// yet: `digests`). They see every walked file; --quick judges the setuid files its walk saw
/// but does not verify packaged files.
fn checks(
    filesystem: &dyn Filesystem,
    files: &[Entry],
    digests: &Digests,
    det: &Detector,
    opts: &ScanOptions,
) -> VolumeFindings {
    match filesystem.reader() {
        Ok(reader) => {
            let mut lookup = lookup::FsLookup::new(reader.as_ref(), files).with_digests(digests);
            if opts.quick {
                lookup = lookup.without_content_verification();
            }
            det.scan_volume(&lookup, &opts.detect)
        }
        Err(e) => VolumeFindings {
            findings: Vec::new(),
            errors: vec![ScanError {
                path_bytes: None,
                path: None,
                message: format!("volume checks could not open the filesystem: {e}"),
            }],
        },
    }
}

/// Judge the findings in files against the volume's package databases, once the checks (which
/// read those databases too) are done: vendor content shipped unmodified becomes info (see
/// [`Detector::apply_provenance`]). The MD5s the content scan kept for the package check are
/// used here too (`digests`); other files with findings are read again.
fn provenance(
    filesystem: &dyn Filesystem,
    files: &[Entry],
    digests: &Digests,
    det: &Detector,
    findings: &mut [Finding],
) {
    if findings.iter().all(|f| f.path.is_none()) {
        return;
    }
    // A filesystem that cannot give a second reader was reported by the checks already.
    if let Ok(reader) = filesystem.reader() {
        let lookup = lookup::FsLookup::new(reader.as_ref(), files).with_digests(digests);
        det.apply_provenance(&lookup, findings);
    }
}

/// Scan the blocks the filesystem marks free, and its journal or log (`--unallocated`).
fn scan_unallocated(
    v: &Volume,
    kind: FsKind,
    vr: &mut VolumeReport,
    findings: &mut Vec<Finding>,
    det: &Detector,
    opts: &ScanOptions,
) {
    let free = unallocated::scan_free(v, kind, findings.as_slice(), det, &opts.detect);
    vr.unallocated_bytes_scanned = Some(free.bytes_scanned);
    vr.errors.extend(free.errors);
    findings.extend(free.findings);
}
