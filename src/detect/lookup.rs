//! What volume checks read a volume through: the [`FileLookup`] seam, the metadata it gives
//! ([`Meta`]) and its in-memory double ([`MemLookup`]). Imports nothing of the checks, so every
//! check and the scanner can depend on it ([`super::volume_scan`] runs the checks over one).
//!
//! A per-file check sees one file's bytes. Some judgements need several files: the effective
//! sshd configuration is `sshd_config` plus the files it `Include`s, sudoers pulls in
//! `/etc/sudoers.d`, a setuid binary is only suspicious when no package owns it, and a system
//! binary is only tampered with when it differs from its package (dpkg `md5sums`, rpm database).
//!
//! For those, the scanner calls [`Detector::scan_volume`](super::Detector::scan_volume) once per walked volume, after the walk,
//! handing it a [`FileLookup`] over that volume. The checks read the few files they need through
//! it (each read bounded by a size cap) and visit every regular file's metadata once (for the
//! setuid check).

use crate::model::ScanError;
use std::collections::BTreeMap;

/// A file or directory a check needed is there (or may be) but could not be read: an I/O
/// error of the source, a corrupt directory on the way to it, a symbolic link that cannot be
/// read. Kept apart from absence (`Ok(None)`, an empty listing) so that a check never judges
/// a file it could not see: it gives up its verdict and the scan reports this instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Unreadable {
    /// The path the check asked for (or the directory on its way that failed).
    pub path: String,
    /// Why, as the filesystem or the source said it.
    pub reason: String,
}

impl Unreadable {
    /// This failure as an error of the volume's scan, saying what `what` (a check's verdict)
    /// could not be made.
    pub fn scan_error(&self, what: &str) -> ScanError {
        ScanError {
            path: Some(self.path.clone()),
            path_bytes: None,
            message: format!("cannot be read ({}): {what}", self.reason),
        }
    }
}

/// What a lookup gives: an answer (which may be "absent"), or [`Unreadable`].
pub type Looked<T> = Result<T, Unreadable>;

/// Type of a filesystem entry, as a volume check needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only returned when the lookup did not follow it).
    Symlink,
    /// A device, FIFO or socket.
    Special,
}

/// Metadata of one entry of a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (`0o7777` mask is enough: setuid, setgid, sticky, rwx).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Entry type.
    pub kind: MetaKind,
}

/// Read access to the files of one volume, for checks that need several files.
///
/// Paths are absolute inside the volume (`/etc/ssh/sshd_config`). The scanner implements this
/// over the real filesystem; [`MemLookup`] is the in-memory double used by tests.
///
/// Contract for implementations:
/// - [`read`](FileLookup::read) and [`metadata`](FileLookup::metadata) resolve symbolic links
///   inside the volume (an absolute target is relative to the volume's root; at most 40 hops),
///   as `open(2)` would in a chroot: on a merged-/usr system `/bin/ls` must reach `/usr/bin/ls`.
/// - Absent and unreadable are different answers. A path that does not exist, is not a
///   regular file (for `read`) or does not resolve (a symbolic link loop, as `open(2)` gives
///   `ELOOP`) is `Ok(None)`. A path that could not be read, or whose existence could not be
///   decided (a directory on the way whose listing failed, wholly or for some entry), is
///   `Err(Unreadable)`. A check that gets `Err` makes no verdict from that input and reports
///   the error (see `checks::volume`): an unreadable `sshd_config` is not an unset one.
/// - Nothing here may panic or block indefinitely.
pub trait FileLookup {
    /// The first `max` bytes of the regular file at `path` (all of it when it is smaller);
    /// `Ok(None)` when there is no regular file there.
    fn read(&self, path: &str, max: usize) -> Looked<Option<Vec<u8>>>;

    /// The names (not paths) of the entries of directory `dir`, in any order; empty when `dir`
    /// does not exist or is not a directory; `Err` when some entry could not be read (a
    /// partial listing would read as "no such file"). Names that are not UTF-8 may be skipped.
    fn list(&self, dir: &str) -> Looked<Vec<String>>;

    /// Metadata of the entry at `path` (after following symbolic links); `Ok(None)` when
    /// nothing is there.
    fn metadata(&self, path: &str) -> Looked<Option<Meta>>;

    /// Call `visit` once for every regular file of the volume, with its path and metadata (no
    /// symbolic link is followed). The walk the scanner already did is enough: no content is
    /// read. Used to find setuid/setgid files.
    fn for_each_file(&self, visit: &mut dyn FnMut(&str, &Meta));

    /// The MD5 of the file at `path`, when the scanner computed it while streaming the file's
    /// content anyway; `None` (the default) makes the check read the file itself, which it does
    /// only for a short list of sensitive paths.
    fn md5(&self, _path: &str) -> Option<[u8; 16]> {
        None
    }

    /// Whether checks may read packaged files to verify their content against the package
    /// database (`true`, the default). `--quick` says no: it walks only the well-known
    /// directories, so ownership of the setuid files found there is still judged (metadata and
    /// the package file lists, read only when there is such a file) but binaries and PAM modules
    /// are not hashed.
    fn verify_content(&self) -> bool {
        true
    }

    /// The modification time (seconds since the epoch) of the entry at `path`, after following
    /// symbolic links; `None` (the default) when unknown.
    fn mtime(&self, _path: &str) -> Option<i64> {
        None
    }

    /// A hint that the regular files at `paths` will be read soon, in that order: a volume
    /// read over the network fetches them together rather than one round trip after another.
    /// The default does nothing.
    fn prefetch(&self, _paths: &[String]) {}
}

/// An in-memory volume: a map from absolute path to (metadata, content). Directories are
/// implied by the files under them. The test double for [`FileLookup`]; a file or directory
/// can be made unreadable ([`MemLookup::unreadable`], [`MemLookup::unreadable_dir`]) to test
/// what a check does when a read fails.
#[derive(Clone, Debug, Default)]
pub struct MemLookup {
    files: BTreeMap<String, (Meta, Vec<u8>)>,
    mtimes: BTreeMap<String, i64>,
    /// Files whose content cannot be read (their metadata can): path → reason.
    bad_files: BTreeMap<String, String>,
    /// Directories that cannot be listed, so nothing under them resolves: path → reason.
    bad_dirs: BTreeMap<String, String>,
}

impl MemLookup {
    /// An empty volume.
    pub fn new() -> MemLookup {
        MemLookup::default()
    }

    /// Add (or replace) a root-owned `0644` regular file.
    pub fn file(mut self, path: &str, content: impl AsRef<[u8]>) -> MemLookup {
        self.add(path, 0o644, content);
        self
    }

    /// Add (or replace) a root-owned regular file with permission bits `mode`.
    pub fn add(&mut self, path: &str, mode: u32, content: impl AsRef<[u8]>) {
        let content = content.as_ref().to_vec();
        let meta = Meta {
            mode,
            uid: 0,
            gid: 0,
            size: content.len() as u64,
            kind: MetaKind::File,
        };
        self.files.insert(path.to_string(), (meta, content));
    }

    /// Set the modification time of the file at `path` (unset: unknown).
    pub fn with_mtime(mut self, path: &str, mtime: i64) -> MemLookup {
        self.mtimes.insert(path.to_string(), mtime);
        self
    }

    /// Add a regular file that exists but whose content cannot be read (as a file whose
    /// blocks the source could not fetch): `read` gives [`Unreadable`], `metadata` works.
    pub fn unreadable(mut self, path: &str) -> MemLookup {
        self.add(path, 0o644, "");
        self.bad_files
            .insert(path.to_string(), "injected read error".to_string());
        self
    }

    /// Make directory `dir` unlistable (as a directory block the source could not fetch):
    /// listing it, and reading or resolving anything under it, gives [`Unreadable`].
    pub fn unreadable_dir(mut self, dir: &str) -> MemLookup {
        self.bad_dirs.insert(
            dir.trim_end_matches('/').to_string(),
            "injected directory read error".to_string(),
        );
        self
    }

    /// The unlistable directory `path` is in (or is, when `itself`), if any.
    fn bad_dir(&self, path: &str, itself: bool) -> Looked<()> {
        for (dir, reason) in &self.bad_dirs {
            let under = path.starts_with(&dir_prefix(dir));
            if under || (itself && path.trim_end_matches('/') == dir) {
                return Err(Unreadable {
                    path: dir.clone(),
                    reason: reason.clone(),
                });
            }
        }
        Ok(())
    }

    /// Whether `dir` is a directory: some file lives under it.
    fn is_dir(&self, dir: &str) -> bool {
        let prefix = dir_prefix(dir);
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }
}

/// `dir` with exactly one trailing `/`.
fn dir_prefix(dir: &str) -> String {
    format!("{}/", dir.trim_end_matches('/'))
}

impl FileLookup for MemLookup {
    fn read(&self, path: &str, max: usize) -> Looked<Option<Vec<u8>>> {
        self.bad_dir(path, false)?;
        if let Some(reason) = self.bad_files.get(path) {
            return Err(Unreadable {
                path: path.to_string(),
                reason: reason.clone(),
            });
        }
        Ok(self
            .files
            .get(path)
            .map(|(_, data)| data.get(..max).unwrap_or(data).to_vec()))
    }

    fn list(&self, dir: &str) -> Looked<Vec<String>> {
        self.bad_dir(dir, true)?;
        let prefix = dir_prefix(dir);
        let mut names: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, _)| p.get(prefix.len()..))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        names.dedup();
        Ok(names)
    }

    fn metadata(&self, path: &str) -> Looked<Option<Meta>> {
        self.bad_dir(path, false)?;
        if let Some((meta, _)) = self.files.get(path) {
            return Ok(Some(*meta));
        }
        let is_dir = self.is_dir(path) || self.bad_dirs.contains_key(path.trim_end_matches('/'));
        Ok(is_dir.then_some(Meta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 4096,
            kind: MetaKind::Dir,
        }))
    }

    fn for_each_file(&self, visit: &mut dyn FnMut(&str, &Meta)) {
        for (path, (meta, _)) in &self.files {
            visit(path, meta);
        }
    }

    fn mtime(&self, path: &str) -> Option<i64> {
        self.mtimes.get(path).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_lookup_lists_and_reads() {
        let l = MemLookup::new()
            .file("/etc/ssh/sshd_config", "Port 22\n")
            .file("/etc/ssh/sshd_config.d/a.conf", "x")
            .file("/etc/sshx", "y");
        let mut names = l.list("/etc/ssh").unwrap();
        names.sort();
        assert_eq!(names, ["sshd_config", "sshd_config.d"]);
        assert_eq!(l.list("/etc/ssh/").unwrap(), names);
        assert_eq!(l.read("/etc/ssh/sshd_config", 4).unwrap().unwrap(), b"Port");
        assert_eq!(l.metadata("/etc/ssh").unwrap().unwrap().kind, MetaKind::Dir);
        assert_eq!(l.metadata("/etc/s"), Ok(None));
        assert_eq!(l.read("/etc/s", 1), Ok(None));
        assert!(l.list("/nope").unwrap().is_empty());
        let mut n = 0;
        l.for_each_file(&mut |_, _| n += 1);
        assert_eq!(n, 3);
    }

    #[test]
    fn mem_lookup_tells_unreadable_from_absent() {
        let l = MemLookup::new()
            .unreadable("/etc/shadow")
            .file("/etc/sudoers.d/a", "x")
            .unreadable_dir("/etc/sudoers.d");
        let err = l.read("/etc/shadow", 10).unwrap_err();
        assert_eq!(err.path, "/etc/shadow");
        assert_eq!(
            l.metadata("/etc/shadow").unwrap().unwrap().kind,
            MetaKind::File
        );
        assert!(l.list("/etc/sudoers.d").is_err());
        assert!(l.read("/etc/sudoers.d/a", 10).is_err());
        assert!(l.metadata("/etc/sudoers.d/zz").is_err());
        assert_eq!(l.read("/etc/passwd", 10), Ok(None));
        let e = err.scan_error("sshd not judged");
        assert_eq!(e.path.as_deref(), Some("/etc/shadow"));
        assert!(e.message.contains("injected read error"), "{}", e.message);
    }
}
