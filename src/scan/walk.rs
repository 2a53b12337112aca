//! Walk a filesystem's directory tree: every regular file is collected for content scanning,
//! symlinks are counted and never followed, special files are skipped.
//!
//! The walk is bounded in depth and in entries, so a corrupt directory that loops back on itself
//! ends with an error instead of running on. A directory inode reached a second time (a loop,
//! or a directory "hard-linked" into several parents, which no real filesystem has) is reported
//! and walked once: two entries per level that point at the same directory would otherwise make
//! the walk exponential in its depth.
//!
//! Several threads list directories at once, each with its own reader, taking them from one
//! queue in the order they were found (breadth first). On a remote source each listing may wait
//! a round trip; with one thread the walk of a Debian root through EBS at 20 ms per request
//! waited 0.45 s in 39 reads, one after another.

use crate::fs::{Entry, EntryKind, Filesystem, FsReader};
use crate::report::ScanError;
use std::collections::{HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Deepest directory level walked. Real trees rarely pass 30.
pub const MAX_DEPTH: usize = 512;
/// Most entries listed in one volume before the walk stops with an error.
pub const MAX_ENTRIES: u64 = 50_000_000;
/// Threads that list directories at once on a remote source (each mostly waits for the network).
pub const REMOTE_THREADS: usize = 16;

/// What a walk found.
#[derive(Default)]
pub struct Walk {
    /// Regular files, sorted by path.
    pub files: Vec<Entry>,
    /// Directories listed.
    pub dirs: u64,
    /// Symbolic links seen (not followed).
    pub symlinks: u64,
    /// Devices, FIFOs and sockets (no content to scan).
    pub specials: u64,
    /// Directories or entries that could not be read, sorted by path.
    pub errors: Vec<ScanError>,
    /// Inode numbers of every entry listed (files, directories, links, specials), sorted and
    /// without repeats: what the inode sweep ([`super::unreached`]) need not look at. Eight
    /// bytes per entry, a fraction of what `files` holds per file.
    pub inos: Vec<u64>,
}

impl Walk {
    /// Whether the walk listed an entry for inode `ino`.
    pub fn reached(&self, ino: u64) -> bool {
        self.inos.binary_search(&ino).is_ok()
    }
}

fn err(path: Option<&[u8]>, e: impl std::fmt::Display) -> ScanError {
    let (path, path_bytes) = path.map(crate::model::path_fields).unzip();
    ScanError {
        path_bytes: path_bytes.flatten(),
        path,
        message: e.to_string(),
    }
}

/// A directory to list: its path, inode number (0 if unknown) and depth.
type Dir = (Vec<u8>, u64, usize);

struct State {
    queue: VecDeque<Dir>,
    /// Threads listing a directory now: the walk ends when none is and the queue is empty.
    busy: usize,
    stopped: bool,
    seen: u64,
    /// Inode numbers of the directories queued (filesystems without inode numbers give 0).
    dir_inos: HashSet<u64>,
    walk: Walk,
}

struct Shared<'a> {
    state: Mutex<State>,
    cv: Condvar,
    lists: &'a (dyn Fn(&[u8]) -> bool + Sync),
    found: &'a (dyn Fn(&[Entry]) + Sync),
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Walk the whole tree from `/` with `threads` threads (at least one).
pub fn walk(fs: &dyn Filesystem, threads: usize) -> Walk {
    walk_within(fs, threads, &|_| true, &|_| {})
}

/// Walk the tree from `/` with `threads` threads (at least one), listing only the directories
/// `lists` accepts (`/` always is): the files, links and directories found in them are still
/// counted and returned. A directory's subdirectories are named to the reader
/// ([`FsReader::prefetch_dir`]) when it is listed, and listed after the directories found
/// before them, so on a remote source their blocks are on the way by then. The regular files
/// of each directory are also handed to `found` (from the thread that listed it) as soon as it
/// is listed, so their content can be scanned while the walk goes on.
pub fn walk_within(
    fs: &dyn Filesystem,
    threads: usize,
    lists: &(dyn Fn(&[u8]) -> bool + Sync),
    found: &(dyn Fn(&[Entry]) + Sync),
) -> Walk {
    let first = match fs.reader() {
        Ok(r) => r,
        Err(e) => {
            return Walk {
                errors: vec![err(Some(b"/"), format!("not walked: {e}"))],
                ..Walk::default()
            };
        }
    };
    let shared = Shared {
        state: Mutex::new(State {
            queue: VecDeque::from([(b"/".to_vec(), 0, 0)]),
            busy: 0,
            stopped: false,
            seen: 0,
            dir_inos: HashSet::new(),
            walk: Walk::default(),
        }),
        cv: Condvar::new(),
        lists,
        found,
    };
    std::thread::scope(|s| {
        for _ in 1..threads.max(1) {
            s.spawn(|| {
                // A thread without a reader leaves the work to the others.
                if let Ok(reader) = fs.reader() {
                    work(reader.as_ref(), &shared);
                }
            });
        }
        work(first.as_ref(), &shared);
    });
    let mut w = shared
        .state
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .walk;
    w.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    w.inos.sort_unstable();
    w.inos.dedup();
    w.errors
        .sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.message.cmp(&b.message)));
    w
}

/// One walking thread: take a directory, list it, queue its subdirectories; until the queue is
/// empty and no other thread is listing (or the walk was stopped).
fn work(reader: &dyn FsReader, shared: &Shared<'_>) {
    loop {
        let (dir, ino, depth) = {
            let mut st = shared.lock();
            loop {
                if st.stopped {
                    return;
                }
                if let Some(d) = st.queue.pop_front() {
                    st.busy += 1;
                    break d;
                }
                if st.busy == 0 {
                    shared.cv.notify_all();
                    return;
                }
                st = shared
                    .cv
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let unwinding = Unwinding(shared);
        let listed = reader.list_dir_at(&dir, ino);
        std::mem::forget(unwinding);
        let mut named: Vec<Entry> = Vec::new();
        let files = {
            let mut st = shared.lock();
            st.busy -= 1;
            let before = st.walk.files.len();
            add(&mut st, shared, &dir, depth, listed, &mut named);
            st.walk.files.get(before..).map(<[Entry]>::to_vec)
        };
        shared.cv.notify_all();
        for e in &named {
            reader.prefetch_dir(e);
        }
        if let Some(files) = files
            && !files.is_empty()
        {
            (shared.found)(&files);
        }
    }
}

/// Armed while a thread lists a directory: if the listing panics, the walk stops, so the other
/// threads do not wait for it forever (the panic then reaches the caller).
struct Unwinding<'a, 'b>(&'a Shared<'b>);

impl Drop for Unwinding<'_, '_> {
    fn drop(&mut self) {
        {
            let mut st = self.0.lock();
            st.busy -= 1;
            st.stopped = true;
        }
        self.0.cv.notify_all();
    }
}

/// Record one listed directory; the subdirectories to walk are queued and put in `named`.
fn add(
    st: &mut State,
    shared: &Shared<'_>,
    dir: &[u8],
    depth: usize,
    listed: Result<Vec<Result<Entry, crate::fs::FsError>>, crate::fs::FsError>,
    named: &mut Vec<Entry>,
) {
    let State {
        queue,
        stopped,
        seen,
        dir_inos,
        walk: w,
        ..
    } = st;
    if *stopped {
        return;
    }
    w.dirs = w.dirs.saturating_add(1);
    let entries = match listed {
        Ok(e) => e,
        Err(e) => {
            w.errors.push(err(Some(dir), e));
            return;
        }
    };
    for item in entries {
        *seen = seen.saturating_add(1);
        if *seen > MAX_ENTRIES {
            w.errors.push(err(
                None,
                format!(
                    "walk stopped after {MAX_ENTRIES} entries: the directory tree is corrupt or loops"
                ),
            ));
            *stopped = true;
            return;
        }
        let e = match item {
            Ok(e) => e,
            Err(e) => {
                w.errors.push(err(None, e));
                continue;
            }
        };
        if e.ino != 0 {
            w.inos.push(e.ino);
        }
        match e.kind {
            EntryKind::File => w.files.push(e),
            EntryKind::Dir if !(shared.lists)(&e.path) => {}
            EntryKind::Dir => {
                if e.ino != 0 && !dir_inos.insert(e.ino) {
                    w.errors.push(err(
                        Some(&e.path),
                        format!(
                            "directory inode {} is reached again (a loop or a hard-linked directory): not walked twice",
                            e.ino
                        ),
                    ));
                } else if depth >= MAX_DEPTH {
                    w.errors.push(err(
                        Some(&e.path),
                        format!("directory nested deeper than {MAX_DEPTH} levels: not walked"),
                    ));
                } else {
                    queue.push_back((e.path.clone(), e.ino, depth.saturating_add(1)));
                    named.push(e);
                }
            }
            EntryKind::Symlink => w.symlinks = w.symlinks.saturating_add(1),
            EntryKind::Special => w.specials = w.specials.saturating_add(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsError;
    use std::io::Read;

    /// A test reader as a filesystem: every thread gets a copy.
    impl<T: FsReader + Clone + Send + Sync + 'static> Filesystem for T {
        fn name(&self) -> &'static str {
            "test"
        }
        fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
            Ok(Box::new(self.clone()))
        }
    }

    /// A directory that contains itself forever.
    #[derive(Clone)]
    struct Loop;
    impl FsReader for Loop {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            let mk = |name: &[u8], kind| Entry {
                path: crate::fs::join(path, name),
                kind,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 1,
                mtime: 0,
                ino: 0,
                phys: 0,
            };
            Ok(vec![
                Ok(mk(b"self", EntryKind::Dir)),
                Ok(mk(b"f", EntryKind::File)),
                Ok(mk(b"l", EntryKind::Symlink)),
                Err(FsError::Corrupt {
                    context: "inode 12".into(),
                    message: "bad checksum".into(),
                    at: Default::default(),
                }),
            ])
        }
        fn open_file<'a>(&'a self, _: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Ok(Box::new(std::io::empty()))
        }
        fn read_link(&self, _: &Entry) -> Result<Vec<u8>, FsError> {
            Ok(b"/".to_vec())
        }
    }

    /// Every directory holds two entries for the same child directory inode: without the
    /// inode check the walk visits 2^depth directories.
    #[derive(Clone)]
    struct Doubled;
    impl FsReader for Doubled {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            let depth = match path {
                b"/" => 0,
                p => p.iter().filter(|&&b| b == b'/').count() as u64,
            };
            let mk = |name: &[u8]| Entry {
                path: crate::fs::join(path, name),
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 1,
                mtime: 0,
                ino: 100 + depth,
                phys: 0,
            };
            Ok(vec![Ok(mk(b"a")), Ok(mk(b"b"))])
        }
        fn open_file<'a>(&'a self, _: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Ok(Box::new(std::io::empty()))
        }
        fn read_link(&self, _: &Entry) -> Result<Vec<u8>, FsError> {
            Ok(b"/".to_vec())
        }
    }

    #[test]
    fn a_directory_reached_twice_by_inode_is_walked_once() {
        let w = walk(&Doubled, 4);
        assert_eq!(w.dirs, MAX_DEPTH as u64 + 1);
        assert!(w.errors.iter().any(|e| e.message.contains("reached again")));
    }

    #[test]
    fn a_directory_loop_is_bounded_and_reported() {
        let w = walk(&Loop, 1);
        assert_eq!(w.files.len(), MAX_DEPTH + 1);
        assert_eq!(w.symlinks, (MAX_DEPTH + 1) as u64);
        assert!(w.errors.iter().any(|e| e.message.contains("deeper than")));
        assert!(w.errors.iter().any(|e| e.message.contains("bad checksum")));
    }

    /// A tree four levels deep: every directory above the last level holds three directories
    /// and two files.
    #[derive(Clone)]
    struct Tree;
    impl FsReader for Tree {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            let depth = path.iter().filter(|&&b| b == b'/').count() - usize::from(path == b"/");
            let mk = |name: String, kind| {
                Ok(Entry {
                    path: crate::fs::join(path, name.as_bytes()),
                    kind,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    size: 1,
                    mtime: 0,
                    ino: 0,
                    phys: 0,
                })
            };
            let mut out = vec![
                mk("a".into(), EntryKind::File),
                mk("b".into(), EntryKind::File),
            ];
            if depth < 4 {
                out.extend((0..3).map(|i| mk(format!("d{i}"), EntryKind::Dir)));
            }
            Ok(out)
        }
        fn open_file<'a>(&'a self, _: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Ok(Box::new(std::io::empty()))
        }
        fn read_link(&self, _: &Entry) -> Result<Vec<u8>, FsError> {
            Ok(b"/".to_vec())
        }
    }

    /// Several threads walk the same tree one thread does: same files, in the same (path)
    /// order, same counts; and every file is handed to `found` once.
    #[test]
    fn a_parallel_walk_finds_what_one_thread_finds() {
        let one = walk(&Tree, 1);
        // 1 + 3 + 9 + 27 + 81 directories, two files each.
        assert_eq!(one.dirs, 121);
        assert_eq!(one.files.len(), 242);
        let found = std::sync::Mutex::new(Vec::new());
        let many = walk_within(&Tree, 8, &|_| true, &|files| {
            found
                .lock()
                .unwrap()
                .extend(files.iter().map(|f| f.path.clone()));
        });
        let paths = |w: &Walk| w.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&one), paths(&many));
        assert_eq!(many.dirs, one.dirs);
        let mut found = found.into_inner().unwrap();
        found.sort();
        assert_eq!(found, paths(&one));
        // A scope that refuses d1 everywhere: its subtrees are not listed.
        let pruned = walk_within(&Tree, 4, &|d| !d.ends_with(b"d1"), &|_| {});
        assert_eq!(pruned.dirs, 1 + 2 + 4 + 8 + 16);
    }

    /// A reader that panics on one directory: the walk does not hang waiting for that thread,
    /// the panic reaches the caller.
    #[derive(Clone)]
    struct Panics;
    impl FsReader for Panics {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            if path.ends_with(b"d1/d2") {
                panic!("listing {}", String::from_utf8_lossy(path));
            }
            Tree.list_dir(path)
        }
        fn open_file<'a>(&'a self, _: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Ok(Box::new(std::io::empty()))
        }
        fn read_link(&self, _: &Entry) -> Result<Vec<u8>, FsError> {
            Ok(b"/".to_vec())
        }
    }

    #[test]
    fn a_listing_that_panics_stops_the_walk_instead_of_hanging_it() {
        for threads in [1, 4] {
            let r = std::panic::catch_unwind(|| walk(&Panics, threads));
            assert!(r.is_err(), "{threads} threads");
        }
    }
}
