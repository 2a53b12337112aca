//! FAT12/16/32 through `fatfs`: the EFI system partition of every modern AMI. Read-only: the
//! cursor under it refuses writes, and nothing here asks for one. Every call into the crate
//! runs under [`crate::model::caught`]: a panic on malformed metadata is an error.

use super::{Entry, EntryKind, Filesystem, FsError, FsReader, SeekRead};
use crate::model::caught::Caught;
use crate::source::{Cursor, SharedSource};
use std::io::Read;

type Fat = fatfs::FileSystem<Cursor>;

/// A FAT filesystem on a volume.
pub struct FatFs {
    src: SharedSource,
}

fn mount(src: &SharedSource) -> Result<Fat, FsError> {
    guarded(&|| "FAT boot sector".into(), || {
        fatfs::FileSystem::new(Cursor::new(src.clone()), fatfs::FsOptions::new())
    })?
    .map_err(|e| FsError::Corrupt {
        context: "FAT boot sector".into(),
        message: e.to_string(),
        at: Default::default(),
    })
}

/// Run a call into fatfs: a panic on malformed input is an error naming `context`.
fn guarded<T>(context: &dyn Fn() -> String, f: impl FnOnce() -> T) -> Result<T, FsError> {
    crate::model::caught::catch(f).map_err(|_| FsError::Corrupt {
        context: context(),
        message: "the FAT reader failed on malformed metadata".into(),
        at: Default::default(),
    })
}

impl FatFs {
    /// Mount once to check the boot sector.
    pub fn open(src: SharedSource) -> Result<Self, FsError> {
        mount(&src)?;
        Ok(FatFs { src })
    }
}

impl Filesystem for FatFs {
    fn name(&self) -> &'static str {
        "vfat"
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        Ok(Box::new(FatReader {
            fs: mount(&self.src)?,
        }))
    }
}

struct FatReader {
    fs: Fat,
}

/// fatfs takes paths relative to the root without a leading slash.
fn relative(path: &[u8]) -> Result<&str, FsError> {
    let s = std::str::from_utf8(path).map_err(|e| FsError::Other {
        context: String::from_utf8_lossy(path).into_owned(),
        message: e.to_string(),
        at: Default::default(),
    })?;
    Ok(s.trim_start_matches('/'))
}

fn io(context: String, e: std::io::Error) -> FsError {
    FsError::Io {
        context,
        message: e.to_string(),
        at: Default::default(),
    }
}

impl FatReader {
    /// The file behind `e` (fatfs's file reads and seeks).
    fn file(&self, e: &Entry) -> Result<Caught<fatfs::File<'_, Cursor>>, FsError> {
        let rel = relative(&e.path)?;
        let ctx = || format!("file {}", e.display_path());
        guarded(&ctx, || self.fs.root_dir().open_file(rel))?
            .map(Caught)
            .map_err(|err| io(ctx(), err))
    }
}

impl FsReader for FatReader {
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let ctx = || format!("directory {}", String::from_utf8_lossy(path));
        guarded(&ctx, || self.list(path))?
    }

    fn open_file<'a>(&'a self, e: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        Ok(Box::new(self.file(e)?))
    }

    fn open_seekable<'a>(&'a self, e: &Entry) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        Ok(Some(Box::new(self.file(e)?)))
    }

    fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
        Err(FsError::Other {
            context: format!("symlink {}", e.display_path()),
            message: "FAT has no symbolic links".into(),
            at: Default::default(),
        })
    }
}

impl FatReader {
    fn list(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let ctx = || format!("directory {}", String::from_utf8_lossy(path));
        let rel = relative(path)?;
        let root = self.fs.root_dir();
        let dir = if rel.is_empty() {
            root
        } else {
            root.open_dir(rel).map_err(|e| io(ctx(), e))?
        };
        let mut out = vec![];
        for item in dir.iter() {
            let de = match item {
                Ok(de) => de,
                Err(e) => {
                    out.push(Err(io(ctx(), e)));
                    break;
                }
            };
            let name = de.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let kind = if de.is_dir() {
                EntryKind::Dir
            } else if de.is_file() {
                EntryKind::File
            } else {
                EntryKind::Special
            };
            let read_only = de.attributes().contains(fatfs::FileAttributes::READ_ONLY);
            let mode = match (kind, read_only) {
                (EntryKind::Dir, _) => 0o755,
                (_, true) => 0o444,
                _ => 0o644,
            };
            out.push(Ok(Entry {
                path: super::join(path, name.as_bytes()),
                kind,
                mode,
                uid: 0,
                gid: 0,
                size: de.len(),
                mtime: 0,
                ino: 0,
                phys: 0,
            }));
        }
        Ok(out)
    }
}
