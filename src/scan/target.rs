//! Local targets that are not disk images: a directory (an extracted or chroot root) and a tar
//! archive of a root (`.tar`, or gzip, zstd, xz, bzip2 around it: a rootfs tarball, a `docker
//! export`). Each is one filesystem ([`crate::fs::dir::DirFs`], [`crate::fs::tarfs::TarFs`])
//! scanned by the same steps as a volume of a disk image (`volume::scan_tree`): the walk,
//! every signature and check, package verification, provenance, `--quick`, archives inside.
//!
//! What a path is, is decided by its content, never its name: a directory; a file whose first
//! block is a tar header (checksum valid); a compressed stream whose first 512 decompressed
//! bytes are one. Anything else is a disk image. A compressed tar cannot be read by offset, so
//! it is decompressed once, as a stream, into an unlinked temporary file (in `$TMPDIR`: as much
//! disk as the uncompressed archive, no more memory than the decoder's window); a stream that
//! breaks off is an error of the target and the archive is read up to where it broke.

use super::archive::decode::decoder;
use super::archive::magic::{self, Kind};
use super::{ScanOptions, TargetError, volume};
use crate::detect::Detector;
use crate::fs::Filesystem;
use crate::fs::tarfs::header::checksum_ok;
use crate::report::{ScanError, TargetReport};
use crate::source::{FileSource, MemSource, SharedSource};
use crate::volume::{Role, Volume};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

/// What a local path holds, by its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    /// A directory: a root to walk.
    Dir,
    /// A tar archive, compressed with this, if at all.
    Tar(Option<Kind>),
    /// Anything else: a disk image (raw or in a container).
    Image,
}

/// Read up to `n` bytes.
fn head(mut r: impl Read, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    let _ = r.by_ref().take(n as u64).read_to_end(&mut v);
    v
}

/// Whether `block` is a tar header.
fn is_tar(block: &[u8]) -> bool {
    block.len() == 512 && block.iter().any(|&b| b != 0) && checksum_ok(block)
}

/// What `path` holds. An error only when it cannot be opened.
pub fn local_kind(path: &Path) -> Result<LocalKind, std::io::Error> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Ok(LocalKind::Dir);
    }
    let file = File::open(path)?;
    let first = head(&file, magic::PROBE);
    if is_tar(&first) {
        return Ok(LocalKind::Tar(None));
    }
    match magic::detect(&first) {
        Some(k @ (Kind::Gzip | Kind::Bzip2 | Kind::Xz | Kind::Zstd)) => {
            let limits = super::archive::Limits::default();
            let file = File::open(path)?;
            let inner = head(decoder(k, BufReader::new(file), &limits), 512);
            Ok(if is_tar(&inner) {
                LocalKind::Tar(Some(k))
            } else {
                LocalKind::Image
            })
        }
        _ => Ok(LocalKind::Image),
    }
}

/// A stand-in volume for a filesystem that is not on a disk: `source` holds its bytes (the
/// archive) or none (a directory).
fn stand_in(id: &str, source: SharedSource) -> Volume {
    Volume {
        id: id.into(),
        offset: 0,
        size: source.len(),
        partition_name: None,
        partition_type: None,
        role: Role::Data,
        errors: Vec::new(),
        source,
    }
}

/// Scan `filesystem` as the one volume of target `target`.
fn scan_one(
    target: String,
    v: &Volume,
    filesystem: Box<dyn Filesystem>,
    note: Option<String>,
    errors: Vec<ScanError>,
    det: &Detector,
    opts: &ScanOptions,
) -> TargetReport {
    let mut report = super::scan_disks(target, vec![], det, opts);
    let (mut vr, findings) = volume::scan_tree(v, filesystem, det, opts);
    vr.note = note;
    report.errors.extend(errors);
    report.findings.extend(findings);
    report.findings.retain(|f| f.severity >= opts.min_severity);
    report.volumes.push(vr);
    report.finalize();
    report
}

/// Scan directory `path` as the root of a filesystem.
pub fn scan_dir(
    path: &Path,
    det: &Detector,
    opts: &ScanOptions,
) -> Result<TargetReport, TargetError> {
    let target = path.display().to_string();
    let fs = crate::fs::dir::DirFs::open(path).map_err(|e| TargetError::Unreadable {
        path: target.clone(),
        why: e.to_string(),
    })?;
    let v = stand_in("dir", Arc::new(MemSource::new(Vec::new(), &target)));
    Ok(scan_one(target, &v, Box::new(fs), None, vec![], det, opts))
}

/// Scan the tar archive `path`, compressed with `compression` if at all.
pub fn scan_tar(
    path: &Path,
    compression: Option<Kind>,
    det: &Detector,
    opts: &ScanOptions,
) -> Result<TargetReport, TargetError> {
    let target = path.display().to_string();
    let (source, note, errors) = open_tar(path, compression, &opts.archives)?;
    let fs = crate::fs::tarfs::TarFs::open(source.clone());
    let v = stand_in("tar", source);
    Ok(scan_one(target, &v, Box::new(fs), note, errors, det, opts))
}

/// A tar archive's bytes, how they were obtained, and the errors met.
type OpenedTar = (SharedSource, Option<String>, Vec<ScanError>);

/// The bytes of tar archive `path` (decompressed into a temporary file when `compression` is
/// set), a note saying how they were obtained, and the errors met (a stream that broke off).
fn open_tar(
    path: &Path,
    compression: Option<Kind>,
    limits: &super::archive::Limits,
) -> Result<OpenedTar, TargetError> {
    let target = path.display().to_string();
    let open_err = |source| TargetError::Open {
        path: target.clone(),
        source,
    };
    let mut errors = Vec::new();
    let Some(k) = compression else {
        let src: SharedSource = Arc::new(FileSource::open(path).map_err(open_err)?);
        return Ok((src, None, errors));
    };
    let file = File::open(path).map_err(open_err)?;
    let spooled = spool(file, k, limits).map_err(|e| TargetError::Unreadable {
        path: target.clone(),
        why: format!("cannot decompress into a temporary file ($TMPDIR): {e}"),
    })?;
    if let Some(e) = spooled.broken {
        errors.push(ScanError {
            path: None,
            path_bytes: None,
            message: format!(
                "{} stream of {target}: {e} after {} bytes of the archive: it was read \
                 up to there",
                k.name(),
                spooled.len
            ),
        });
    }
    let src = FileSource::from_file(spooled.file, format!("{target} (decompressed)"))
        .map_err(open_err)?;
    let note = format!(
        "{}-compressed tar archive, decompressed to a temporary file ({} bytes)",
        k.name(),
        spooled.len
    );
    Ok((Arc::new(src), Some(note), errors))
}

/// A directory's or tar archive's filesystem, and the messages of what went wrong opening it.
pub type OpenedTree = (Box<dyn Filesystem>, Vec<String>);

/// The filesystem of a directory or tar target (`kind` from [`local_kind`]), for readers other
/// than the scan (the SBOM), with the messages of what went wrong opening it. `None` for a
/// disk image.
pub fn open_tree(
    path: &Path,
    kind: LocalKind,
    limits: &super::archive::Limits,
) -> Result<Option<OpenedTree>, TargetError> {
    match kind {
        LocalKind::Image => Ok(None),
        LocalKind::Dir => {
            let fs = crate::fs::dir::DirFs::open(path).map_err(|e| TargetError::Unreadable {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
            Ok(Some((Box::new(fs), Vec::new())))
        }
        LocalKind::Tar(compression) => {
            let (source, _, errors) = open_tar(path, compression, limits)?;
            let fs = crate::fs::tarfs::TarFs::open(source);
            Ok(Some((
                Box::new(fs),
                errors.into_iter().map(|e| e.message).collect(),
            )))
        }
    }
}

/// A decompressed archive in an unlinked temporary file.
struct Spooled {
    file: File,
    len: u64,
    /// Why the stream ended early, if it did.
    broken: Option<std::io::Error>,
}

/// Decompress `file` into a temporary file, as a stream. A decoding error keeps what was
/// decompressed before it; a write error (disk full) is the outer error.
fn spool(file: File, kind: Kind, limits: &super::archive::Limits) -> std::io::Result<Spooled> {
    let mut out = tempfile::tempfile()?;
    let mut dec = decoder(kind, BufReader::with_capacity(1 << 20, file), limits);
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    let broken = loop {
        match dec.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                std::io::Write::write_all(&mut out, &buf[..n])?;
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    Ok(Spooled {
        file: out,
        len,
        broken,
    })
}
