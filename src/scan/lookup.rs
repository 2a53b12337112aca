//! [`FileLookup`] over a real filesystem, for the checks that need several files of a volume
//! (sshd_config and its includes, sudoers and sudoers.d, the dpkg or rpm database, setuid files).
//! Paths resolve like `open(2)` in a chroot: symbolic links are followed inside the volume.
//! A directory on the way that cannot be listed (or some of whose entries cannot be read), a
//! link that cannot be read, a file whose content fails: each is [`Unreadable`], never absence.

use crate::detect::{FileLookup, Looked, Meta, MetaKind, Unreadable};
use crate::fs::{Entry, EntryKind, FsError, FsReader, join};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

/// Symbolic links followed while resolving one path (Linux's limit).
const MAX_HOPS: usize = 40;
/// Path components handled while resolving one path (links can expand a path).
const MAX_COMPONENTS: usize = 4096;
/// Directories whose listings are kept.
const MAX_CACHED_DIRS: usize = 4096;
/// Most file data one [`FileLookup::prefetch`] hint names: a quarter of the EBS source's
/// default cache, so the hinted files do not push out the blocks the content scan is about to
/// read.
const MAX_PREFETCH_BYTES: u64 = 64 << 20;

/// One directory's listing: the entries that could be read, and the first error of one that
/// could not (then a name missing from `entries` may still be in the directory).
struct Listing {
    entries: Vec<Entry>,
    bad_entry: Option<String>,
}

/// Lookups through one filesystem reader, with the walk's file list.
pub struct FsLookup<'a> {
    reader: &'a dyn FsReader,
    files: &'a [Entry],
    dirs: RefCell<HashMap<Vec<u8>, Rc<Listing>>>,
    verify_content: bool,
    digests: Option<&'a super::content::Digests>,
}

fn meta(e: &Entry) -> Meta {
    Meta {
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        size: e.size,
        kind: match e.kind {
            EntryKind::File => MetaKind::File,
            EntryKind::Dir => MetaKind::Dir,
            EntryKind::Symlink => MetaKind::Symlink,
            EntryKind::Special => MetaKind::Special,
        },
    }
}

fn root_entry() -> Entry {
    Entry {
        path: b"/".to_vec(),
        kind: EntryKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
        ino: 0,
        phys: 0,
    }
}

/// `path` could not be read, for `why`.
fn unreadable(path: &[u8], why: impl std::fmt::Display) -> Unreadable {
    Unreadable {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: why.to_string(),
    }
}

impl<'a> FsLookup<'a> {
    /// Lookups through `reader`; `files` are the walk's regular files, sorted by path.
    pub fn new(reader: &'a dyn FsReader, files: &'a [Entry]) -> Self {
        FsLookup {
            reader,
            files,
            dirs: RefCell::new(HashMap::new()),
            verify_content: true,
            digests: None,
        }
    }

    /// Lookups that answer [`FileLookup::md5`] from the digests the content scan computed.
    pub fn with_digests(mut self, digests: &'a super::content::Digests) -> Self {
        self.digests = Some(digests);
        self
    }

    /// Lookups that refuse package content verification (`--quick`, see
    /// [`FileLookup::verify_content`]).
    pub fn without_content_verification(mut self) -> Self {
        self.verify_content = false;
        self
    }

    /// Where directory `path` really is in the volume, after following symbolic links;
    /// `Ok(None)` when it does not exist or is not a directory.
    pub fn real_dir(&self, path: &[u8]) -> Looked<Option<Vec<u8>>> {
        let e = self.resolve(path)?;
        Ok(e.filter(|e| e.kind == EntryKind::Dir).map(|e| e.path))
    }

    fn listing(&self, dir: &[u8]) -> Looked<Rc<Listing>> {
        if let Some(l) = self.dirs.borrow().get(dir) {
            return Ok(l.clone());
        }
        let mut listing = Listing {
            entries: Vec::new(),
            bad_entry: None,
        };
        for r in self
            .reader
            .list_dir(dir)
            .map_err(|e| unreadable(dir, format!("directory cannot be listed: {e}")))?
        {
            match r {
                Ok(e) => listing.entries.push(e),
                Err(e) => {
                    listing.bad_entry.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let l = Rc::new(listing);
        let mut cache = self.dirs.borrow_mut();
        if cache.len() >= MAX_CACHED_DIRS {
            cache.clear();
        }
        cache.insert(dir.to_vec(), l.clone());
        Ok(l)
    }

    /// Entry `name` of directory `dir`: `Ok(None)` only when the whole listing was read.
    fn child(&self, dir: &[u8], name: &[u8]) -> Looked<Option<Entry>> {
        let want = join(dir, name);
        let l = self.listing(dir)?;
        if let Some(e) = l.entries.iter().find(|e| e.path == want) {
            return Ok(Some(e.clone()));
        }
        match &l.bad_entry {
            Some(why) => Err(unreadable(
                &want,
                format!("an entry of its directory cannot be read: {why}"),
            )),
            None => Ok(None),
        }
    }

    /// Resolve `path`, following symbolic links (also the last component). `Ok(None)`: no such
    /// entry, a component that is not a directory, or too many links or components (`ELOOP`).
    /// A regular file of the walk, named by its path, is that file: no directory is listed
    /// again (on a remote volume the listings read at the start of the scan are long out of
    /// the cache by the steps after it, and each would cost a round trip).
    fn resolve(&self, path: &[u8]) -> Looked<Option<Entry>> {
        if let Ok(i) = self.files.binary_search_by(|e| e.path.as_slice().cmp(path)) {
            return Ok(Some(self.files[i].clone()));
        }
        let mut pending: Vec<Vec<u8>> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(<[u8]>::to_vec)
            .collect();
        let mut current = root_entry();
        let mut hops = 0usize;
        let mut steps = 0usize;
        while let Some(comp) = pending.pop() {
            steps += 1;
            if steps > MAX_COMPONENTS {
                return Ok(None);
            }
            match comp.as_slice() {
                b"." => continue,
                b".." => {
                    let parent = match current.path.iter().rposition(|&b| b == b'/') {
                        Some(0) | None => b"/".to_vec(),
                        Some(i) => current.path[..i].to_vec(),
                    };
                    current = if parent == b"/" {
                        root_entry()
                    } else {
                        match self.resolve(&parent)? {
                            Some(e) => e,
                            None => return Ok(None),
                        }
                    };
                    continue;
                }
                _ => {}
            }
            if current.kind != EntryKind::Dir {
                return Ok(None);
            }
            let Some(e) = self.child(&current.path, &comp)? else {
                return Ok(None);
            };
            if e.kind == EntryKind::Symlink {
                hops += 1;
                if hops > MAX_HOPS {
                    return Ok(None);
                }
                let target = self
                    .reader
                    .read_link(&e)
                    .map_err(|err| unreadable(&e.path, format!("symbolic link: {err}")))?;
                if target.starts_with(b"/") {
                    current = root_entry();
                }
                pending.extend(
                    target
                        .split(|&b| b == b'/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(<[u8]>::to_vec),
                );
            } else {
                current = e;
            }
        }
        Ok(Some(current))
    }
}

/// `path`'s content could not be read, for `why` (the path asked for, with the real one when a
/// link led elsewhere).
fn content_error(asked: &str, real: &[u8], why: &FsError) -> Unreadable {
    let reason = if real == asked.as_bytes() {
        why.to_string()
    } else {
        format!("{} (via {}): {why}", String::from_utf8_lossy(real), asked)
    };
    Unreadable {
        path: asked.to_string(),
        reason,
    }
}

impl FileLookup for FsLookup<'_> {
    fn read(&self, path: &str, max: usize) -> Looked<Option<Vec<u8>>> {
        let Some(e) = self.resolve(path.as_bytes())? else {
            return Ok(None);
        };
        if e.kind != EntryKind::File {
            return Ok(None);
        }
        let r = self
            .reader
            .open_file(&e)
            .map_err(|err| content_error(path, &e.path, &err))?;
        let mut out = Vec::with_capacity(usize::try_from(e.size).unwrap_or(max).min(max));
        r.take(u64::try_from(max).unwrap_or(u64::MAX))
            .read_to_end(&mut out)
            .map_err(|err| Unreadable {
                path: path.to_string(),
                reason: format!("read error: {err}"),
            })?;
        Ok(Some(out))
    }

    fn list(&self, dir: &str) -> Looked<Vec<String>> {
        let Some(d) = self.resolve(dir.as_bytes())? else {
            return Ok(vec![]);
        };
        if d.kind != EntryKind::Dir {
            return Ok(vec![]);
        }
        let l = self.listing(&d.path)?;
        if let Some(why) = &l.bad_entry {
            return Err(unreadable(
                dir.as_bytes(),
                format!("an entry cannot be read: {why}"),
            ));
        }
        Ok(l.entries
            .iter()
            .filter_map(|e| {
                let name = e.path.rsplit(|&b| b == b'/').next()?;
                String::from_utf8(name.to_vec()).ok()
            })
            .collect())
    }

    fn metadata(&self, path: &str) -> Looked<Option<Meta>> {
        Ok(self.resolve(path.as_bytes())?.map(|e| meta(&e)))
    }

    fn for_each_file(&self, visit: &mut dyn FnMut(&str, &Meta)) {
        for f in self.files {
            visit(&f.display_path(), &meta(f));
        }
    }

    fn verify_content(&self) -> bool {
        self.verify_content
    }

    fn mtime(&self, path: &str) -> Option<i64> {
        self.resolve(path.as_bytes())
            .ok()
            .flatten()
            .map(|e| e.mtime)
    }

    /// The content scan's digest of the file `path` resolves to, when it read all of it.
    fn md5(&self, path: &str) -> Option<[u8; 16]> {
        let digests = self.digests?;
        let e = self.resolve(path.as_bytes()).ok()??;
        (e.kind == EntryKind::File)
            .then(|| digests.get(&e.path))
            .flatten()
    }

    /// Each file's inode and data are hinted to the reader (the same file under two names
    /// once), until [`MAX_PREFETCH_BYTES`] of data. What does not resolve is not hinted.
    fn prefetch(&self, paths: &[String]) {
        let mut budget = MAX_PREFETCH_BYTES;
        let mut seen = std::collections::HashSet::new();
        for p in paths {
            let Ok(Some(e)) = self.resolve(p.as_bytes()) else {
                continue;
            };
            if e.kind != EntryKind::File || !seen.insert(e.path.clone()) {
                continue;
            }
            let Some(left) = budget.checked_sub(e.size) else {
                break;
            };
            budget = left;
            self.reader.prefetch_file(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsError;

    /// `/usr/bin/ls` (file), `/bin -> usr/bin`, `/etc/alt -> /usr/bin/ls`, `/loop -> loop`.
    struct Tree;
    fn e(path: &[u8], kind: EntryKind) -> Entry {
        Entry {
            path: path.to_vec(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 3,
            mtime: 0,
            ino: 0,
            phys: 0,
        }
    }
    impl FsReader for Tree {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            let v = match path {
                b"/" => vec![
                    e(b"/usr", EntryKind::Dir),
                    e(b"/bin", EntryKind::Symlink),
                    e(b"/etc", EntryKind::Dir),
                    e(b"/loop", EntryKind::Symlink),
                ],
                b"/usr" => vec![e(b"/usr/bin", EntryKind::Dir)],
                b"/usr/bin" => vec![e(b"/usr/bin/ls", EntryKind::File)],
                b"/etc" => vec![e(b"/etc/alt", EntryKind::Symlink)],
                _ => vec![],
            };
            Ok(v.into_iter().map(Ok).collect())
        }
        fn open_file<'a>(&'a self, _: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Ok(Box::new(&b"ELF"[..]))
        }
        fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
            Ok(match e.path.as_slice() {
                b"/bin" => b"usr/bin".to_vec(),
                b"/etc/alt" => b"/usr/bin/../bin/ls".to_vec(),
                _ => b"loop".to_vec(),
            })
        }
    }

    /// [`Tree`] with `/usr/bin/big` (as large as one hint may name), logging the hints.
    #[derive(Default)]
    struct Hinted {
        hints: std::cell::RefCell<Vec<Vec<u8>>>,
    }
    impl FsReader for Hinted {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            let mut v = Tree.list_dir(path)?;
            if path == b"/usr/bin" {
                let mut big = e(b"/usr/bin/big", EntryKind::File);
                big.size = MAX_PREFETCH_BYTES;
                v.push(Ok(big));
            }
            Ok(v)
        }
        fn open_file<'a>(&'a self, e: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Tree.open_file(e)
        }
        fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
            Tree.read_link(e)
        }
        fn prefetch_file(&self, e: &Entry) {
            self.hints.borrow_mut().push(e.path.clone());
        }
    }

    /// A hint reaches the reader once per file, after links are followed; directories,
    /// missing paths and what is past the byte budget are left out.
    #[test]
    fn prefetch_names_each_file_once_within_the_budget() {
        let r = Hinted::default();
        let l = FsLookup::new(&r, &[]);
        let paths = [
            "/bin/ls",
            "/etc/alt",
            "/usr/bin/ls",
            "/usr",
            "/nope",
            "/loop",
        ];
        l.prefetch(&paths.map(String::from));
        assert_eq!(*r.hints.borrow(), [b"/usr/bin/ls".to_vec()]);
        // 3 bytes of ls are hinted first: big no longer fits, and the hint stops there.
        r.hints.borrow_mut().clear();
        l.prefetch(&["/usr/bin/ls", "/usr/bin/big", "/etc/alt"].map(String::from));
        assert_eq!(*r.hints.borrow(), [b"/usr/bin/ls".to_vec()]);
        r.hints.borrow_mut().clear();
        l.prefetch(&["/bin/big"].map(String::from));
        assert_eq!(*r.hints.borrow(), [b"/usr/bin/big".to_vec()]);
    }

    /// [`Tree`], counting the directories listed.
    #[derive(Default)]
    struct Counted {
        listed: std::cell::Cell<usize>,
    }
    impl FsReader for Counted {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            self.listed.set(self.listed.get() + 1);
            Tree.list_dir(path)
        }
        fn open_file<'a>(&'a self, e: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Tree.open_file(e)
        }
        fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
            Tree.read_link(e)
        }
    }

    /// A regular file of the walk, named by its own path, is found without listing a
    /// directory again; through a link, or when not among the walk's files, the path is
    /// resolved as before, to the same entry.
    #[test]
    fn a_walked_file_by_its_path_lists_no_directory() {
        let r = Counted::default();
        let files = [e(b"/usr/bin/ls", EntryKind::File)];
        let l = FsLookup::new(&r, &files);
        assert_eq!(l.read("/usr/bin/ls", 100).unwrap().unwrap(), b"ELF");
        assert_eq!(l.metadata("/usr/bin/ls").unwrap().unwrap().size, 3);
        assert_eq!(r.listed.get(), 0);
        assert_eq!(l.read("/bin/ls", 100).unwrap().unwrap(), b"ELF");
        assert!(
            r.listed.get() > 0,
            "/bin is a link: resolved through the listings"
        );
        let r = Counted::default();
        let l = FsLookup::new(&r, &[]);
        assert_eq!(l.read("/usr/bin/ls", 100).unwrap().unwrap(), b"ELF");
        assert_eq!(r.listed.get(), 3, "/, /usr and /usr/bin");
    }

    /// The content scan's digests are found by the file's real path, after links.
    #[test]
    fn md5_comes_from_the_content_scan_by_real_path() {
        let digests = crate::scan::content::Digests::default();
        let l = FsLookup::new(&Tree, &[]);
        assert_eq!(l.md5("/bin/ls"), None, "no digests given");
        let l = FsLookup::new(&Tree, &[]).with_digests(&digests);
        assert_eq!(l.md5("/bin/ls"), None, "not scanned");
        digests.insert(b"/usr/bin/ls", [7; 16]);
        assert_eq!(l.md5("/bin/ls"), Some([7; 16]));
        assert_eq!(l.md5("/etc/alt"), Some([7; 16]));
        assert_eq!(l.md5("/usr/bin"), None);
    }

    #[test]
    fn follows_links_inside_the_volume_and_stops_on_loops() {
        let l = FsLookup::new(&Tree, &[]);
        assert_eq!(l.read("/bin/ls", 100).unwrap().unwrap(), b"ELF");
        assert_eq!(l.read("/etc/alt", 2).unwrap().unwrap(), b"EL");
        assert_eq!(l.metadata("/bin").unwrap().unwrap().kind, MetaKind::Dir);
        assert_eq!(l.read("/loop", 10), Ok(None));
        assert_eq!(l.read("/nope", 10), Ok(None));
        assert_eq!(l.list("/bin").unwrap(), vec!["ls".to_string()]);
    }

    /// [`Tree`] whose `/etc` cannot be listed, `/usr/bin` has an entry that cannot be read,
    /// and whose file content fails.
    struct Broken;
    impl FsReader for Broken {
        fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
            match path {
                b"/etc" => Err(FsError::Io {
                    context: "directory block".into(),
                    message: "block 7 failed".into(),
                    at: Default::default(),
                }),
                b"/usr/bin" => {
                    let mut v = Tree.list_dir(path)?;
                    v.push(Err(FsError::Corrupt {
                        context: "entry".into(),
                        message: "bad name length".into(),
                        at: Default::default(),
                    }));
                    Ok(v)
                }
                _ => Tree.list_dir(path),
            }
        }
        fn open_file<'a>(&'a self, _: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
            Err(FsError::Io {
                context: "extent".into(),
                message: "block 9 failed".into(),
                at: Default::default(),
            })
        }
        fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
            Tree.read_link(e)
        }
    }

    /// A read that fails is never an absent file: a directory that cannot be listed, a
    /// missing name in a directory with an unreadable entry, a file whose content fails.
    #[test]
    fn unreadable_is_not_absent() {
        let l = FsLookup::new(&Broken, &[]);
        let err = l.read("/etc/ssh/sshd_config", 10).unwrap_err();
        assert_eq!(err.path, "/etc");
        assert!(err.reason.contains("block 7 failed"), "{err}");
        assert!(l.metadata("/etc/sudoers").is_err());
        assert!(l.list("/etc").is_err());
        // ls is listed: found; its content fails through the link too.
        assert_eq!(l.metadata("/bin/ls").unwrap().unwrap().kind, MetaKind::File);
        let err = l.read("/bin/ls", 10).unwrap_err();
        assert_eq!(err.path, "/bin/ls");
        assert!(err.reason.contains("/usr/bin/ls") && err.reason.contains("block 9"));
        // A name not among the readable entries may be the unreadable one.
        assert!(l.metadata("/usr/bin/sudo").is_err());
        assert!(l.list("/usr/bin").is_err());
        // A directory fully read answers absence.
        assert_eq!(l.metadata("/usr/nope"), Ok(None));
    }
}
