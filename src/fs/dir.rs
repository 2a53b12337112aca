//! A directory of the host as a filesystem: an extracted root or a chroot being built (Packer's
//! chroot builder, an Image Builder staging tree), walked with every rule a disk image gets.
//!
//! Paths are the volume's paths (`/etc/shadow`) under the root given. The root is a jail, as
//! a chroot is: no symbolic link is ever followed by the host. Every path is checked before it
//! is used — the host's resolution of `root + path` must be `root + path` itself, so no
//! component on the way is a link — and files are opened with `O_NOFOLLOW` and checked to be
//! the regular file the walk listed (same inode). Links are recorded and read as links; the
//! scan's own lookups resolve them inside the root (`scan/lookup.rs`), as `open(2)` in a chroot
//! would. Devices, FIFOs and sockets are special entries, never opened. Mode, owner, group,
//! size and times come from `lstat`. The virtual filesystems a chroot build mounts (`/proc`,
//! `/sys`, `/dev` on another device than the root) are not walked, with a warning; other mount
//! points are walked (a separate `/boot`). Limits: a tree changed while it is scanned may give
//! errors for what moved; inode numbers of other devices are mixed with their device number so
//! that the walk's one-visit-per-directory rule holds across mounts.

use super::{Entry, EntryKind, Filesystem, FsError, FsReader, SeekRead};
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Mount points of a chroot build's virtual filesystems: not walked when on another device.
const VIRTUAL_MOUNTS: [&[u8]; 3] = [b"/proc", b"/sys", b"/dev"];

/// A host directory read as the root of a filesystem.
pub struct DirFs(Arc<Root>);

/// The root, its device, and the warnings the listings raise (shared by every reader).
struct Root {
    root: PathBuf,
    dev: u64,
    warnings: Mutex<Vec<String>>,
}

fn io_error(context: &[u8], e: &std::io::Error) -> FsError {
    FsError::Io {
        context: String::from_utf8_lossy(context).into_owned(),
        message: e.to_string(),
        at: Default::default(),
    }
}

fn other(context: &[u8], message: &str) -> FsError {
    FsError::Other {
        context: String::from_utf8_lossy(context).into_owned(),
        message: message.into(),
        at: Default::default(),
    }
}

impl DirFs {
    /// Open `root`, which must be a directory (a link to one is resolved once, here: the
    /// root given on the command line is the user's choice).
    pub fn open(root: &Path) -> Result<DirFs, FsError> {
        let name = root.as_os_str().as_bytes();
        let root = std::fs::canonicalize(root).map_err(|e| io_error(name, &e))?;
        let meta = std::fs::metadata(&root).map_err(|e| io_error(name, &e))?;
        if !meta.is_dir() {
            return Err(other(name, "not a directory"));
        }
        Ok(DirFs(Arc::new(Root {
            root,
            dev: meta.dev(),
            warnings: Mutex::new(Vec::new()),
        })))
    }
}

impl Root {
    /// The host path of volume path `path`, refusing `.`/`..` components and any symbolic
    /// link on the way (the last component may be one: it is then read as a link, never
    /// followed).
    fn host(&self, path: &[u8]) -> Result<PathBuf, FsError> {
        let mut host = self.root.clone();
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        for c in &comps {
            if *c == b"." || *c == b".." {
                return Err(other(
                    path,
                    "path with a `.` or `..` component: not resolved by the host",
                ));
            }
            host.push(OsStr::from_bytes(c));
        }
        if let Some(parent) = host.parent().filter(|_| comps.len() > 1) {
            // The host's resolution of the parent must be the parent itself: no link on the way.
            let real = std::fs::canonicalize(parent).map_err(|e| io_error(path, &e))?;
            if real != parent {
                return Err(other(
                    path,
                    "a symbolic link on the way: not followed by the host",
                ));
            }
        }
        Ok(host)
    }

    fn ino(&self, m: &Metadata) -> u64 {
        if m.dev() == self.dev {
            m.ino()
        } else {
            // Unique across devices as far as the walk needs: another device's inode numbers
            // mixed with its device number, in the upper half.
            (m.ino() ^ m.dev().rotate_left(40)) | (1 << 63)
        }
    }

    fn entry(&self, path: Vec<u8>, m: &Metadata) -> Entry {
        let ft = m.file_type();
        let mut kind = if ft.is_file() {
            EntryKind::File
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Special
        };
        if kind == EntryKind::Dir && m.dev() != self.dev && VIRTUAL_MOUNTS.contains(&&path[..]) {
            kind = EntryKind::Special;
            self.warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "{}: a mount point of another filesystem (the virtual filesystems of a \
                     chroot build): not walked",
                    String::from_utf8_lossy(&path)
                ));
        }
        Entry {
            path,
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: m.mtime(),
            ino: self.ino(m),
            phys: 0,
        }
    }

    /// A regular file opened without following links, checked to be the entry listed.
    fn open_regular(&self, entry: &Entry) -> Result<File, FsError> {
        let host = self.host(&entry.path)?;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(host)
            .map_err(|e| io_error(&entry.path, &e))?;
        let m = f.metadata().map_err(|e| io_error(&entry.path, &e))?;
        if !m.is_file() || (entry.ino != 0 && self.ino(&m) != entry.ino) {
            return Err(other(
                &entry.path,
                "no longer the regular file the walk listed (replaced while scanned)",
            ));
        }
        Ok(f)
    }
}

impl Filesystem for DirFs {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        Ok(Box::new(DirReader(self.0.clone())))
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self
            .0
            .warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        w.sort();
        w.dedup();
        w
    }
}

struct DirReader(Arc<Root>);

impl FsReader for DirReader {
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let host = self.0.host(path)?;
        let m = std::fs::symlink_metadata(&host).map_err(|e| io_error(path, &e))?;
        if !m.is_dir() {
            return Err(other(path, "not a directory"));
        }
        let dir: &[u8] = if path.is_empty() { b"/" } else { path };
        let mut out = Vec::new();
        for de in std::fs::read_dir(&host).map_err(|e| io_error(path, &e))? {
            let de = match de {
                Ok(de) => de,
                Err(e) => {
                    out.push(Err(io_error(path, &e)));
                    continue;
                }
            };
            let child = super::join(dir, de.file_name().as_bytes());
            // `DirEntry::metadata` does not follow a link (fstatat with AT_SYMLINK_NOFOLLOW).
            match de.metadata() {
                Ok(m) => out.push(Ok(self.0.entry(child, &m))),
                Err(e) => out.push(Err(io_error(&child, &e))),
            }
        }
        Ok(out)
    }

    fn open_file<'a>(&'a self, entry: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        Ok(Box::new(self.0.open_regular(entry)?))
    }

    fn open_seekable<'a>(
        &'a self,
        entry: &Entry,
    ) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        Ok(Some(Box::new(self.0.open_regular(entry)?)))
    }

    fn read_link(&self, entry: &Entry) -> Result<Vec<u8>, FsError> {
        let host = self.0.host(&entry.path)?;
        let t = std::fs::read_link(&host).map_err(|e| io_error(&entry.path, &e))?;
        Ok(t.into_os_string().into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_listed_as_links_and_never_crossed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("shadow"), "root:$6$x$y:1::::::\n").unwrap();
        std::fs::write(root.join("etc/motd"), "hi\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc/out")).unwrap();
        std::os::unix::fs::symlink(outside.join("shadow"), root.join("etc/shadow")).unwrap();
        let fs = DirFs::open(&root).unwrap();
        let r = fs.reader().unwrap();
        let etc: Vec<Entry> = r
            .list_dir(b"/etc")
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let kind = |p: &[u8]| etc.iter().find(|e| e.path == p).unwrap().kind;
        assert_eq!(kind(b"/etc/out"), EntryKind::Symlink);
        assert_eq!(kind(b"/etc/shadow"), EntryKind::Symlink);
        assert_eq!(kind(b"/etc/motd"), EntryKind::File);
        // Through a link: refused, whoever asks.
        let e = r.list_dir(b"/etc/out").unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        let through = Entry {
            path: b"/etc/out/shadow".to_vec(),
            ..etc[0].clone()
        };
        let e = r.open_file(&through).err().unwrap().to_string();
        assert!(e.contains("a symbolic link on the way"), "{e}");
        // A link opened as a file: O_NOFOLLOW refuses it.
        let link = etc.iter().find(|e| e.path == b"/etc/shadow").unwrap();
        assert!(r.open_file(link).is_err());
        assert_eq!(
            r.read_link(link).unwrap(),
            outside.join("shadow").as_os_str().as_bytes()
        );
        assert!(r.list_dir(b"/etc/../..").is_err());
    }
}
