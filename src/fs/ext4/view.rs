//! ext2/3/4 through `ext4-view` (the fallback of [`super`]), which replays the journal in memory and refuses features it
//! cannot read (inline data, encryption, ...) with a typed error. Every call into the crate
//! runs under [`crate::model::caught`]: a panic on malformed metadata is an error.

use crate::fs::{Entry, EntryKind, Filesystem, FsError, FsReader, SeekRead};
use crate::model::caught::Caught;
use crate::source::SharedSource;
use ext4_view::{Ext4, Ext4Error, Ext4Read, Metadata};
use std::io::Read;

/// Feeds ext4-view from a shared source.
struct SourceReader(SharedSource);

impl Ext4Read for SourceReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0
            .read_at(start_byte, dst)
            .map_err(|e| Box::new(e) as _)
    }
}

/// An ext4 filesystem on a volume.
pub struct Ext4ViewFs {
    src: SharedSource,
}

impl Ext4ViewFs {
    /// Load the superblock once to check that ext4-view accepts the filesystem.
    pub fn open(src: SharedSource) -> Result<Self, FsError> {
        load(&src)?;
        Ok(Ext4ViewFs { src })
    }
}

fn load(src: &SharedSource) -> Result<Ext4, FsError> {
    guarded("ext4 superblock", || {
        Ext4::load(Box::new(SourceReader(src.clone())))
    })
}

/// Run a call into ext4-view: its errors typed, a panic on malformed input an error naming
/// `context`.
fn guarded<T>(context: &str, f: impl FnOnce() -> Result<T, Ext4Error>) -> Result<T, FsError> {
    match crate::model::caught::catch(f) {
        Ok(r) => r.map_err(|e| convert(context, e)),
        Err(_) => Err(FsError::Corrupt {
            context: context.to_string(),
            message: "the ext4 reader (ext4-view) failed on malformed metadata".into(),
            at: Default::default(),
        }),
    }
}

/// Map ext4-view's error to ours, keeping its three-way split.
fn convert(context: &str, e: Ext4Error) -> FsError {
    let context = context.to_string();
    match e {
        Ext4Error::Io(inner) => FsError::Io {
            context,
            message: inner.to_string(),
            at: Default::default(),
        },
        Ext4Error::Incompatible(i) => FsError::Incompatible {
            context,
            message: i.to_string(),
            at: Default::default(),
        },
        Ext4Error::Corrupt(c) => FsError::Corrupt {
            context,
            message: c.to_string(),
            at: Default::default(),
        },
        other => FsError::Other {
            context,
            message: other.to_string(),
            at: Default::default(),
        },
    }
}

impl Filesystem for Ext4ViewFs {
    fn name(&self) -> &'static str {
        "ext4"
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        Ok(Box::new(Ext4Reader {
            fs: load(&self.src)?,
        }))
    }
}

struct Ext4Reader {
    fs: Ext4,
}

fn entry(path: Vec<u8>, md: &Metadata) -> Entry {
    let ft = md.file_type();
    let kind = if ft.is_regular_file() {
        EntryKind::File
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Special
    };
    Entry {
        path,
        kind,
        mode: u32::from(md.mode()),
        uid: md.uid(),
        gid: md.gid(),
        size: md.len(),
        mtime: md.modified().seconds(),
        ino: 0,
        phys: 0,
    }
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

impl Ext4Reader {
    /// The file behind `e`, opened by path (ext4-view's file reads and seeks).
    fn file(&self, e: &Entry) -> Result<Caught<ext4_view::File>, FsError> {
        let ctx = || format!("file {}", e.display_path());
        let p = ext4_view::Path::try_from(e.path.as_slice()).map_err(|err| FsError::Other {
            context: ctx(),
            message: err.to_string(),
            at: Default::default(),
        })?;
        guarded(&ctx(), || self.fs.open(p)).map(Caught)
    }
}

impl FsReader for Ext4Reader {
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let ctx = || format!("directory {}", lossy(path));
        crate::model::caught::catch(|| self.list(path)).unwrap_or_else(|_| {
            Err(FsError::Corrupt {
                context: ctx(),
                message: "the ext4 reader (ext4-view) failed on malformed metadata".into(),
                at: Default::default(),
            })
        })
    }

    fn open_file<'a>(&'a self, e: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        Ok(Box::new(self.file(e)?))
    }

    fn open_seekable<'a>(&'a self, e: &Entry) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        Ok(Some(Box::new(self.file(e)?)))
    }

    fn read_link(&self, e: &Entry) -> Result<Vec<u8>, FsError> {
        let ctx = || format!("symlink {}", e.display_path());
        let p = ext4_view::Path::try_from(e.path.as_slice()).map_err(|err| FsError::Other {
            context: ctx(),
            message: err.to_string(),
            at: Default::default(),
        })?;
        let target = guarded(&ctx(), || self.fs.read_link(p))?;
        Ok(target.as_ref().to_vec())
    }
}

impl Ext4Reader {
    fn list(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let ctx = || format!("directory {}", lossy(path));
        let p = ext4_view::Path::try_from(path).map_err(|e| FsError::Other {
            context: ctx(),
            message: e.to_string(),
            at: Default::default(),
        })?;
        let rd = self.fs.read_dir(p).map_err(|e| convert(&ctx(), e))?;
        let mut out = vec![];
        for item in rd {
            let de = match item {
                Ok(de) => de,
                Err(e) => {
                    out.push(Err(convert(&ctx(), e)));
                    // A broken directory block: the iterator may not advance past it.
                    break;
                }
            };
            let name = de.file_name();
            let name = name.as_ref();
            if name == b"." || name == b".." {
                continue;
            }
            let child = crate::fs::join(path, name);
            out.push(
                de.metadata()
                    .map(|md| entry(child.clone(), &md))
                    .map_err(|e| convert(&format!("inode of {}", lossy(&child)), e)),
            );
        }
        Ok(out)
    }
}
