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

use std::collections::BTreeMap;

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
/// - A path that does not exist, is not a regular file (for `read`), or cannot be read gives
///   `None`; the checks treat it as absent. Read errors are the scanner's to report, as for any
///   file.
/// - Nothing here may panic or block indefinitely.
pub trait FileLookup {
    /// The first `max` bytes of the regular file at `path` (all of it when it is smaller).
    fn read(&self, path: &str, max: usize) -> Option<Vec<u8>>;

    /// The names (not paths) of the entries of directory `dir`, in any order; empty when `dir`
    /// does not exist or is not a directory. Names that are not UTF-8 may be skipped.
    fn list(&self, dir: &str) -> Vec<String>;

    /// Metadata of the entry at `path` (after following symbolic links).
    fn metadata(&self, path: &str) -> Option<Meta>;

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
/// implied by the files under them. The test double for [`FileLookup`].
#[derive(Clone, Debug, Default)]
pub struct MemLookup {
    files: BTreeMap<String, (Meta, Vec<u8>)>,
    mtimes: BTreeMap<String, i64>,
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
    fn read(&self, path: &str, max: usize) -> Option<Vec<u8>> {
        let (_, data) = self.files.get(path)?;
        Some(data.get(..max).unwrap_or(data).to_vec())
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let prefix = dir_prefix(dir);
        let mut names: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, _)| p.get(prefix.len()..))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        names.dedup();
        names
    }

    fn metadata(&self, path: &str) -> Option<Meta> {
        if let Some((meta, _)) = self.files.get(path) {
            return Some(*meta);
        }
        self.is_dir(path).then_some(Meta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 4096,
            kind: MetaKind::Dir,
        })
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
        let mut names = l.list("/etc/ssh");
        names.sort();
        assert_eq!(names, ["sshd_config", "sshd_config.d"]);
        assert_eq!(l.list("/etc/ssh/"), names);
        assert_eq!(l.read("/etc/ssh/sshd_config", 4).unwrap(), b"Port");
        assert_eq!(l.metadata("/etc/ssh").unwrap().kind, MetaKind::Dir);
        assert!(l.metadata("/etc/s").is_none());
        assert!(l.list("/nope").is_empty());
        let mut n = 0;
        l.for_each_file(&mut |_, _| n += 1);
        assert_eq!(n, 3);
    }
}
