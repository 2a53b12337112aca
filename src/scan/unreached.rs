//! The inode sweep, after the walk: the files a walk from the root cannot reach (in use but
//! named by no directory, or deleted while still open) are found in the filesystem's inode
//! tables ([`Filesystem::unreached`]) and scanned like any other, under paths that say so:
//! `<unlinked inode 1234>`, `<orphan inode 54>`, and for an unreached directory its files
//! under `<unlinked inode N>/name` (the directory is walked, as `e2fsck` would reconnect it to
//! `lost+found`).
//!
//! Unreached directories are walked in inode order; a directory already reached from one walked
//! before it is not walked again, and one that was (a child whose number is below its
//! parent's) is not entered twice: every file is reported once, under the first unreached
//! directory that led to it. Bounded as the walk is (depth and entries).

use super::walk::{MAX_DEPTH, MAX_ENTRIES, Walk};
use crate::fs::{Entry, EntryKind, Filesystem, FsReader};
use crate::report::ScanError;
use std::collections::HashSet;

/// What the sweep found.
#[derive(Default)]
pub(super) struct Swept {
    /// Regular files to scan, with their synthesized paths.
    pub files: Vec<Entry>,
    /// Inodes that could not be looked at, and unreached directories that could not be listed.
    pub errors: Vec<ScanError>,
}

fn err(path: Option<&[u8]>, e: impl std::fmt::Display) -> ScanError {
    let (path, path_bytes) = match path.map(crate::model::path_fields) {
        Some((p, b)) => (Some(p), b),
        None => (None, None),
    };
    ScanError {
        path,
        path_bytes,
        message: e.to_string(),
    }
}

/// Sweep `fs` for what `walked` did not reach.
pub(super) fn sweep(fs: &dyn Filesystem, walked: &Walk) -> Swept {
    let mut s = Swept::default();
    let found = match fs.unreached(&|ino| walked.reached(ino)) {
        None => return s,
        Some(Ok(found)) => found,
        Some(Err(e)) => {
            s.errors.push(err(
                None,
                format!(
                    "inode sweep: {e}: in-use files that no directory names were not looked for"
                ),
            ));
            return s;
        }
    };
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for item in found {
        match item {
            Ok(e) if e.kind == EntryKind::Dir => dirs.push(e),
            Ok(e) if e.kind == EntryKind::File => files.push(e),
            Ok(_) => {}
            Err(e) => s.errors.push(err(None, e)),
        }
    }
    // Inodes reached through the unreached directories.
    let mut more: HashSet<u64> = HashSet::new();
    if !dirs.is_empty() {
        match fs.reader() {
            Ok(reader) => {
                dirs.sort_unstable_by_key(|d| d.ino);
                let mut listed = 0u64;
                for d in &dirs {
                    if more.insert(d.ino) {
                        walk_dir(reader.as_ref(), d, walked, &mut more, &mut listed, &mut s);
                    }
                }
            }
            Err(e) => s.errors.push(err(
                None,
                format!("inode sweep: unreached directories not listed: {e}"),
            )),
        }
    }
    s.files
        .extend(files.into_iter().filter(|f| !more.contains(&f.ino)));
    s.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    s
}

/// Walk unreached directory `top`: its files go to `s.files`, every inode met to `more`.
fn walk_dir(
    reader: &dyn FsReader,
    top: &Entry,
    walked: &Walk,
    more: &mut HashSet<u64>,
    listed: &mut u64,
    s: &mut Swept,
) {
    let mut stack = vec![(top.path.clone(), top.ino, 0usize)];
    while let Some((path, ino, depth)) = stack.pop() {
        let entries = match reader.list_dir_at(&path, ino) {
            Ok(entries) => entries,
            Err(e) => {
                s.errors.push(err(Some(&path), e));
                continue;
            }
        };
        for item in entries {
            *listed = listed.saturating_add(1);
            if *listed > MAX_ENTRIES {
                s.errors.push(err(
                    None,
                    format!(
                        "inode sweep stopped after {MAX_ENTRIES} entries of unreached directories"
                    ),
                ));
                return;
            }
            let e: Entry = match item {
                Ok(e) => e,
                Err(e) => {
                    s.errors.push(err(None, e));
                    continue;
                }
            };
            // Reached from the root (a hard link), or already through another unreached
            // directory: scanned once.
            if e.ino != 0 && (walked.reached(e.ino) || !more.insert(e.ino)) {
                continue;
            }
            match e.kind {
                EntryKind::File => s.files.push(e),
                EntryKind::Dir if depth >= MAX_DEPTH => s.errors.push(err(
                    Some(&e.path),
                    format!("directory nested deeper than {MAX_DEPTH} levels: not walked"),
                )),
                EntryKind::Dir => stack.push((e.path, e.ino, depth + 1)),
                EntryKind::Symlink | EntryKind::Special => {}
            }
        }
    }
}

/// With `--unallocated`: the deleted files whose content `fs` still holds in its metadata
/// ([`Filesystem::deleted`]: NTFS's free MFT records), scanned like the swept ones, at
/// `<deleted inode N>/name`.
pub(super) fn deleted(fs: &dyn Filesystem) -> Swept {
    let mut s = Swept::default();
    match fs.deleted() {
        None => {}
        Some(Ok(found)) => {
            for item in found {
                match item {
                    Ok(e) if e.kind == EntryKind::File => s.files.push(e),
                    Ok(_) => {}
                    Err(e) => s.errors.push(err(None, e)),
                }
            }
        }
        Some(Err(e)) => s.errors.push(err(
            None,
            format!("--unallocated: deleted files kept in the filesystem's metadata were not looked for: {e}"),
        )),
    }
    s.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    s
}
