//! Disk-image containers: qcow2 (v2/v3), VMDK (monolithicSparse, streamOptimized, monolithicFlat),
//! VHD (fixed, dynamic) and VHDX, detected by magic when a local image is opened and presented as
//! the virtual disk through [`Source`]: unallocated blocks read as zeros, so the partition and
//! filesystem parsers above see the guest's disk unchanged.
//!
//! Each format is a small reader that maps a virtual block to a place in the file
//! ([`Loc`]); [`Mapped`] does the rest (splitting reads at block edges, reading the data,
//! inflating compressed blocks through a small cache of recent blocks, so a sequential read of a
//! compressed image costs each block once). Every on-disk field is checked: table sizes are
//! capped before anything is allocated, a table entry that points outside the file or cannot be
//! inflated is a [`SourceError::Corrupt`] naming the container, the virtual offset and the entry,
//! and what a reader does not do (a backing or parent file, encryption, a log to replay,
//! subclusters, split extents) is refused at open with [`ContainerError::Unsupported`].

mod qcow2;
mod vhd;
mod vhdx;
mod vmdk;

use super::{FileSource, SharedSource, Source, SourceError, check_bounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Why a container could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// A valid container using a feature amiscan does not read.
    #[error("{kind} image {path}: {message}")]
    Unsupported {
        /// `qcow2`, `vmdk`, `vhd`, `vhdx`.
        kind: &'static str,
        /// The image.
        path: String,
        /// What is not supported.
        message: String,
    },
    /// A header or table that cannot be right.
    #[error("{kind} image {path} is corrupt at byte {offset}: {message}")]
    Corrupt {
        /// `qcow2`, `vmdk`, `vhd`, `vhdx`.
        kind: &'static str,
        /// The image.
        path: String,
        /// Where in the image file.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading the image failed.
    #[error(transparent)]
    Read(#[from] SourceError),
    /// A file the image names (a VMDK extent) could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A local image opened as the disk it holds.
pub struct Opened {
    /// The virtual disk (the file itself when it is a raw image).
    pub source: SharedSource,
    /// The container format (`qcow2`, `vmdk`, `vhd`, `vhdx`), `None` for a raw image.
    pub container: Option<&'static str>,
}

/// The container format of a local image, by magic, or `None` for anything else (read raw).
pub fn detect(file: &dyn Source) -> Option<&'static str> {
    let mut head = [0u8; 64];
    let n = usize::try_from(file.len().min(64)).unwrap_or(0);
    let head = head.get_mut(..n)?;
    file.read_at(0, head).ok()?;
    if head.starts_with(qcow2::MAGIC) {
        Some("qcow2")
    } else if head.starts_with(vmdk::SPARSE_MAGIC) || head.starts_with(vmdk::DESCRIPTOR_MAGIC) {
        Some("vmdk")
    } else if head.starts_with(vhdx::MAGIC) {
        Some("vhdx")
    } else if head.starts_with(vhd::COOKIE) || vhd::has_footer(file) {
        Some("vhd")
    } else {
        None
    }
}

/// Open the image at `path`: a container by its magic, otherwise the raw file.
pub fn open_image(path: &Path) -> Result<Opened, ContainerError> {
    let file = FileSource::open(path).map_err(|source| ContainerError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let file: SharedSource = Arc::new(file);
    open_source(file, Some(path))
}

/// Open `file` as a container when its magic says it is one (`path` locates a VMDK descriptor's
/// extent files; without it a descriptor is refused).
pub fn open_source(file: SharedSource, path: Option<&Path>) -> Result<Opened, ContainerError> {
    let Some(kind) = detect(&*file) else {
        return Ok(Opened {
            source: file,
            container: None,
        });
    };
    let source = match kind {
        "qcow2" => qcow2::open(file)?,
        "vmdk" => vmdk::open(file, path)?,
        "vhdx" => vhdx::open(file)?,
        _ => vhd::open(file)?,
    };
    Ok(Opened {
        source,
        container: Some(kind),
    })
}

/// Where a virtual block's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    /// Unallocated or known zero.
    Zero,
    /// Stored as is from this file offset.
    Raw(u64),
    /// Stored compressed: `len` bytes at file offset `at` (clamped to the file's end).
    Compressed {
        /// File offset.
        at: u64,
        /// Bytes to read at most.
        len: u64,
    },
}

/// A container format's block map.
pub(crate) trait BlockMap: Send + Sync {
    /// `qcow2`, `vmdk`, `vhd`, `vhdx`.
    fn kind(&self) -> &'static str;
    /// Bytes per block (a power of two between 512 bytes and 256 MiB).
    fn block_size(&self) -> u64;
    /// Where block `block` is; an error names the table entry that is wrong.
    fn locate(&self, file: &dyn Source, block: u64) -> Result<Loc, String>;
    /// Inflate a compressed block into exactly `out_len` bytes.
    fn inflate(&self, _data: &[u8], _out_len: usize) -> Result<Vec<u8>, String> {
        Err("compressed block in a format without compression".into())
    }
}

/// Bytes of inflated blocks kept for re-reads (the whole process shares nothing else here: one
/// image is open at a time per target).
const CACHE_BYTES: u64 = 16 << 20;

/// The largest compressed block read (qcow2 and VMDK blocks are at most 2 MiB; compressed data
/// can be a little larger than its plain form).
const MAX_COMPRESSED: u64 = 4 << 20;

/// A virtual disk through a [`BlockMap`].
pub(crate) struct Mapped<M> {
    file: SharedSource,
    map: M,
    size: u64,
    name: String,
    cache: Mutex<Vec<(u64, Arc<Vec<u8>>)>>,
    cache_slots: usize,
}

impl<M: BlockMap> Mapped<M> {
    /// The virtual disk of `size` bytes in `file` through `map`.
    pub(crate) fn new(file: SharedSource, map: M, size: u64) -> Self {
        let slots = usize::try_from(CACHE_BYTES / map.block_size().max(1))
            .unwrap_or(1)
            .clamp(2, 512);
        let name = format!("{} ({})", file.describe(), map.kind());
        Mapped {
            file,
            map,
            size,
            name,
            cache: Mutex::new(Vec::new()),
            cache_slots: slots,
        }
    }

    fn corrupt(&self, offset: u64, message: String) -> SourceError {
        SourceError::Corrupt {
            what: self.name.clone(),
            offset,
            message,
        }
    }

    fn cached(&self, block: u64) -> Option<Arc<Vec<u8>>> {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let i = c.iter().position(|(b, _)| *b == block)?;
        let hit = c.remove(i);
        let data = hit.1.clone();
        c.push(hit);
        Some(data)
    }

    fn inflated(
        &self,
        block: u64,
        vaddr: u64,
        at: u64,
        len: u64,
    ) -> Result<Arc<Vec<u8>>, SourceError> {
        if let Some(d) = self.cached(block) {
            return Ok(d);
        }
        let bs = self.map.block_size();
        let flen = self.file.len();
        if at >= flen {
            return Err(self.corrupt(
                vaddr,
                format!("compressed block {block} at file offset {at} is past the end of the file ({flen} bytes)"),
            ));
        }
        let len = len.min(flen - at).min(MAX_COMPRESSED);
        let mut raw = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.file.read_at(at, &mut raw)?;
        let out_len = usize::try_from(bs).map_err(|_| self.corrupt(vaddr, "block size".into()))?;
        let data = self.map.inflate(&raw, out_len).map_err(|m| {
            self.corrupt(
                vaddr,
                format!("compressed block {block} at file offset {at}: {m}"),
            )
        })?;
        if data.len() != out_len {
            return Err(self.corrupt(
                vaddr,
                format!(
                    "compressed block {block} at file offset {at} inflates to {} bytes, not {out_len}",
                    data.len()
                ),
            ));
        }
        let data = Arc::new(data);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= self.cache_slots {
            c.remove(0);
        }
        c.push((block, data.clone()));
        Ok(data)
    }
}

impl<M: BlockMap> Source for Mapped<M> {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_bounds(&|| self.name.clone(), offset, buf.len(), self.size)?;
        let bs = self.map.block_size();
        let flen = self.file.len();
        let mut done = 0usize;
        while done < buf.len() {
            let vaddr = offset.saturating_add(u64::try_from(done).unwrap_or(u64::MAX));
            let block = vaddr / bs;
            let within = vaddr % bs;
            let left = buf.len() - done;
            let n = usize::try_from(bs - within).unwrap_or(usize::MAX).min(left);
            let dst = &mut buf[done..done + n];
            let loc = self
                .map
                .locate(&*self.file, block)
                .map_err(|m| self.corrupt(vaddr, m))?;
            match loc {
                Loc::Zero => dst.fill(0),
                Loc::Raw(base) => {
                    let at = base.checked_add(within);
                    match at {
                        Some(at) if at.saturating_add(n as u64) <= flen => {
                            self.file.read_at(at, dst)?;
                        }
                        _ => {
                            return Err(self.corrupt(
                                vaddr,
                                format!(
                                    "block {block} maps to file offset {base}, past the end of the file ({flen} bytes)"
                                ),
                            ));
                        }
                    }
                }
                Loc::Compressed { at, len } => {
                    let data = self.inflated(block, vaddr, at, len)?;
                    let w = usize::try_from(within).unwrap_or(usize::MAX);
                    let src = w
                        .checked_add(n)
                        .and_then(|e| data.get(w..e))
                        .ok_or_else(|| self.corrupt(vaddr, "inflated block too short".into()))?;
                    dst.copy_from_slice(src);
                }
            }
            done += n;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Big-endian u32 at `at` in `b` (0 when `b` is too short: callers read fixed-size headers).
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0)
}

/// Big-endian u64 at `at` in `b`.
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Little-endian u16 at `at` in `b`.
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .unwrap_or(0)
}

/// Little-endian u32 at `at` in `b`.
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

/// Little-endian u64 at `at` in `b`.
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// Read a table of `len` bytes at `at` in `file`, refusing more than `cap` bytes or a table
/// past the end of the file.
pub(crate) fn read_table(
    file: &dyn Source,
    kind: &'static str,
    what: &str,
    at: u64,
    len: u64,
    cap: u64,
) -> Result<Vec<u8>, ContainerError> {
    let corrupt = |message: String| ContainerError::Corrupt {
        kind,
        path: file.describe(),
        offset: at,
        message,
    };
    if len > cap {
        return Err(corrupt(format!(
            "{what} of {len} bytes is larger than the {cap}-byte limit"
        )));
    }
    if at.checked_add(len).is_none_or(|e| e > file.len()) {
        return Err(corrupt(format!(
            "{what} of {len} bytes runs past the end of the file ({} bytes)",
            file.len()
        )));
    }
    let mut t = vec![0u8; usize::try_from(len).map_err(|_| corrupt(format!("{what} too large")))?];
    file.read_at(at, &mut t)?;
    Ok(t)
}

/// Inflate at most `out_len + 1` bytes from `r` (so an output that is too long shows).
pub(crate) fn read_bounded(r: impl std::io::Read, out_len: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::with_capacity(out_len);
    r.take(u64::try_from(out_len).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Open any bytes as a container and read a few places of the virtual disk (its start, middle
/// and end); errors are expected, panics and hangs are bugs. The fuzz targets and the
/// mutation test call it.
#[doc(hidden)]
pub fn open_and_read_for_fuzzing(data: Vec<u8>) {
    let src: SharedSource = Arc::new(super::MemSource::new(data, "fuzz"));
    if let Ok(o) = open_source(src, None) {
        let mut buf = vec![0u8; 64 * 1024];
        let len = o.source.len();
        for at in [0, len / 2, len.saturating_sub(65536)] {
            let n = usize::try_from(len.saturating_sub(at).min(65536)).unwrap_or(0);
            let _ = o.source.read_at(at, &mut buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::Mem;

    struct Every(u64);
    impl BlockMap for Every {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn block_size(&self) -> u64 {
            self.0
        }
        fn locate(&self, _: &dyn Source, block: u64) -> Result<Loc, String> {
            Ok(match block {
                0 => Loc::Raw(4),
                1 => Loc::Zero,
                2 => Loc::Raw(1_000_000),
                _ => Loc::Raw(0),
            })
        }
    }

    #[test]
    fn reads_split_at_block_edges_holes_are_zero_and_bad_entries_are_typed() {
        let file: SharedSource = Arc::new(Mem((0u8..64).collect()));
        let m = Mapped::new(file, Every(8), 40);
        let mut b = [9u8; 12];
        m.read_at(2, &mut b).unwrap();
        assert_eq!(b, [6, 7, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0]);
        let err = m.read_at(16, &mut b[..4]).unwrap_err();
        assert!(
            matches!(err, SourceError::Corrupt { offset: 16, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("mem (test)"), "{err}");
        assert!(m.read_at(38, &mut b[..4]).is_err());
    }

    #[test]
    fn raw_files_are_not_containers() {
        let file: SharedSource = Arc::new(Mem(vec![0u8; 4096]));
        assert_eq!(detect(&*file), None);
        let o = open_source(file, None).unwrap();
        assert!(o.container.is_none());
    }
}
