//! Content read once for files that share it: a btrfs snapshot's (or reflink copy's)
//! unchanged file has the same extents as its source, so the same bytes on the volume. The
//! content scan asks the reader for a content key ([`crate::fs::FsReader::content_key`]); the
//! first file with a key is read, and every other file with the same key, and a path of the
//! same class ([`Detector::path_class`]: the path changes nothing of what is found), gets the
//! first one's findings at its own path without a byte read again (`files_shared` in the
//! report). A file whose path is judged by a check or a credential-file format, whose MD5 the
//! package check wants, or whose name is not UTF-8 is always read. A first read that failed is
//! not reused: the next file with the key is read in turn. Bounded: at most [`MAX_KEYS`] keys
//! are remembered per volume; past that, files are read.

use super::archive;
use crate::detect::{Detector, PathClass};
use crate::fs::{Entry, FsReader};
use crate::report::Finding;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Most content keys remembered per volume (about 100 bytes each).
pub const MAX_KEYS: usize = 1 << 18;

/// What makes two files' findings the same but for their path.
type Key = ([u8; 32], Vec<PathClass>);

enum Slot {
    /// A worker is reading the first file with this key.
    Pending,
    /// Read whole: its findings, at its path.
    Done(Arc<(String, Vec<Finding>)>),
    /// The first read failed: the others are read.
    Again,
}

/// The content keys of one volume's scan, shared by its workers.
#[derive(Default)]
pub struct Reuse {
    slots: Mutex<HashMap<Key, Slot>>,
    /// Files whose key was being read by another worker: scanned (or reused) after the others.
    deferred: Mutex<Vec<Entry>>,
}

/// What to do with one file.
pub(crate) enum Plan {
    /// Read it (and, with a key, record what it gave for the others).
    Read(Option<Key>),
    /// Its findings are those of the file at `.0`, at its own path.
    Reuse(Arc<(String, Vec<Finding>)>),
    /// Another worker reads the same content now: set aside until it is done.
    Wait,
}

impl Reuse {
    /// What to do with `entry`, read through `reader`.
    pub(crate) fn plan(&self, reader: &dyn FsReader, entry: &Entry, det: &Detector) -> Plan {
        let Some(key) = key(reader, entry, det) else {
            return Plan::Read(None);
        };
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.get(&key) {
            Some(Slot::Done(d)) => Plan::Reuse(d.clone()),
            Some(Slot::Pending) => Plan::Wait,
            Some(Slot::Again) => Plan::Read(None),
            None if slots.len() >= MAX_KEYS => Plan::Read(None),
            None => {
                slots.insert(key.clone(), Slot::Pending);
                Plan::Read(Some(key))
            }
        }
    }

    /// The first file with `key`, at `path`, was read: whole (`complete`) with `findings`,
    /// or not.
    pub(crate) fn done(&self, key: Key, path: &str, complete: bool, findings: &[Finding]) {
        // Findings that carry exact bytes of a path (a member name that is not UTF-8) are not
        // rewritten: the others are read.
        let slot = if complete && findings.iter().all(|f| f.path_bytes.is_none()) {
            Slot::Done(Arc::new((path.to_string(), findings.to_vec())))
        } else {
            Slot::Again
        };
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, slot);
    }

    pub(crate) fn defer(&self, entry: &Entry) {
        self.deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry.clone());
    }

    /// The files set aside so far.
    pub(crate) fn take_deferred(&self) -> Vec<Entry> {
        std::mem::take(&mut *self.deferred.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The key of `entry`: its content key and the class of its path and of the paths its
/// decompressed content is judged at (`x.gz` is also `x`).
fn key(reader: &dyn FsReader, entry: &Entry, det: &Detector) -> Option<Key> {
    let path = std::str::from_utf8(&entry.path).ok()?;
    // The reader first: on a filesystem without content keys nothing else is computed.
    let content = reader.content_key(entry)?;
    if det.wants_md5(path, entry.mode) {
        return None;
    }
    let mut classes = Vec::new();
    let mut p = path.to_string();
    loop {
        classes.push(det.path_class(&p)?);
        let next = archive::strip_compression_suffix(&p);
        if next == p || classes.len() > 16 {
            break;
        }
        p = next;
    }
    Some((content, classes))
}

/// `first`'s findings, said of the file at `path` instead (archive members too:
/// `first!member` becomes `path!member`).
pub(crate) fn rebase(first: &(String, Vec<Finding>), path: &str) -> Vec<Finding> {
    let (from, findings) = first;
    findings
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if let Some(p) = &f.path {
                f.path = Some(match p.strip_prefix(from.as_str()) {
                    Some(rest) => format!("{path}{rest}"),
                    None => path.to_string(),
                });
            }
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path of a reused finding is the new file's, archive members included.
    #[test]
    fn findings_are_rebased_on_the_new_path() {
        let det = Detector::builtin().unwrap();
        let mut f = det.scan_bytes(
            "/data/a.txt",
            b"aws_access_key_id = AKIAR7QW3ZK5XN2PLM4T\naws_secret_access_key = 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\n",
            &Default::default(),
        );
        assert!(!f.is_empty());
        let mut member = f[0].clone();
        member.path = Some("/data/a.txt!inner/x".into());
        f.push(member);
        let out = rebase(&("/data/a.txt".into(), f), "/snap/a.txt");
        assert_eq!(out[0].path.as_deref(), Some("/snap/a.txt"));
        assert_eq!(
            out.last().unwrap().path.as_deref(),
            Some("/snap/a.txt!inner/x")
        );
    }

    /// Paths the detector judges differently never share findings: a documentation
    /// directory lowers severities, a check reads `/etc/shadow` itself.
    #[test]
    fn path_classes_tell_what_changes_findings() {
        let det = Detector::builtin().unwrap();
        let c = |p: &str| det.path_class(p);
        assert_eq!(c("/data/app/settings.conf"), c("/snap1/app/settings.conf"));
        assert_ne!(c("/opt/x.pem"), c("/usr/share/doc/x.pem"));
        assert_ne!(c("/opt/x.conf"), c("/opt/x.conf.example"));
        assert_eq!(c("/etc/shadow"), None);
    }
}
