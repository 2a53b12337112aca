//! A file's content from its `EXTENT_DATA` items: inline extents (stored in the item), regular
//! extents (read through the chunk map at `disk_bytenr + offset`), compressed extents (the
//! whole compressed extent read, decompressed once and kept while the reader is in it),
//! preallocated extents and holes (zeros, also where `NO_HOLES` leaves no item). Reads and
//! seeks like a file; each extent is checked against the limits btrfs itself keeps (a
//! compressed extent is at most 128 KiB either way) before anything is read or allocated.
//! With checksums ([`FileReader::new`]'s `sums`), every sector read from disk is checked first
//! ([`super::datasum`]): whole sectors are read, a failed copy is replaced by another, and a
//! sector no copy passes is a read error naming its logical address.

use super::compress::decompress;
use super::datasum::{self, Sums, WINDOW};
use super::items::{Compression, ExtentBody, FileExtent};
use super::tree::Trees;
use super::{Key, corrupt, incompatible};
use crate::fs::FsError;
use std::io::{self, Read, Seek, SeekFrom};

/// Largest compressed extent, compressed or not (`BTRFS_MAX_COMPRESSED`).
const MAX_COMPRESSED: u64 = 128 * 1024;
/// Most extents of one file (a 128 GiB file in compressed 128 KiB extents).
pub const MAX_EXTENTS: usize = 1 << 20;
/// Most bytes one `read` call copies from disk.
const READ_CHUNK: u64 = 1 << 20;

#[derive(Debug)]
enum Body {
    Zeros,
    Inline(Vec<u8>),
    Plain {
        logical: u64,
    },
    Compressed {
        disk_bytenr: u64,
        disk_num_bytes: u64,
        ram_bytes: u64,
        offset: u64,
        kind: Compression,
    },
}

#[derive(Debug)]
struct Extent {
    file_off: u64,
    len: u64,
    body: Body,
}

/// A reader over one file's content.
pub struct FileReader<'a> {
    trees: &'a Trees,
    extents: Vec<Extent>,
    size: u64,
    pos: u64,
    /// The decompressed extent last read: its `disk_bytenr` and bytes.
    cached: Option<(u64, Vec<u8>)>,
    /// The checksums of the window being read (`None`: the file's data is not verified).
    sums: Option<Sums>,
    context: String,
}

/// The extent items of a file, validated. `context` names the file in errors.
fn extents(
    trees: &Trees,
    items: Vec<(Key, Vec<u8>)>,
    context: &str,
) -> Result<Vec<Extent>, FsError> {
    let max_inline = u64::from(trees.sb.nodesize);
    let mut out = Vec::with_capacity(items.len());
    for (key, data) in items {
        let bad = |m: String| {
            corrupt(
                format!("{context}: extent at file offset {}", key.offset),
                m,
            )
        };
        let fe =
            FileExtent::parse(&data).ok_or_else(|| bad("malformed EXTENT_DATA item".into()))?;
        if fe.encoded {
            return Err(incompatible(
                context.to_string(),
                format!(
                    "extent at file offset {} is encrypted or encoded (compression {}): not read",
                    key.offset, fe.compression_code
                ),
            ));
        }
        let (len, body) = match fe.body {
            ExtentBody::Inline(raw) => {
                if fe.ram_bytes > max_inline {
                    return Err(bad(format!("inline extent of {} bytes", fe.ram_bytes)));
                }
                let n = fe.ram_bytes as usize;
                let bytes = if fe.compression == Compression::None {
                    raw
                } else {
                    decompress(fe.compression, &raw, n, trees.sb.sectorsize as usize)
                        .map_err(|m| bad(format!("inline extent: {m}")))?
                };
                let len = if fe.compression == Compression::None {
                    bytes.len() as u64
                } else {
                    fe.ram_bytes
                };
                (len, Body::Inline(bytes))
            }
            ExtentBody::Prealloc { num_bytes } => (num_bytes, Body::Zeros),
            ExtentBody::Regular {
                disk_bytenr,
                disk_num_bytes,
                offset,
                num_bytes,
            } => {
                let body = if disk_bytenr == 0 {
                    Body::Zeros
                } else if fe.compression == Compression::None {
                    if offset
                        .checked_add(num_bytes)
                        .is_none_or(|e| e > disk_num_bytes)
                    {
                        return Err(bad(format!(
                            "uses {num_bytes} bytes from {offset} of a {disk_num_bytes}-byte extent"
                        )));
                    }
                    Body::Plain {
                        logical: disk_bytenr
                            .checked_add(offset)
                            .ok_or_else(|| bad("address overflows".into()))?,
                    }
                } else {
                    if disk_num_bytes > MAX_COMPRESSED
                        || fe.ram_bytes > MAX_COMPRESSED
                        || offset
                            .checked_add(num_bytes)
                            .is_none_or(|e| e > fe.ram_bytes)
                    {
                        return Err(bad(format!(
                            "compressed extent of {disk_num_bytes} bytes for {} (uses {num_bytes} from {offset}): beyond btrfs's limits",
                            fe.ram_bytes
                        )));
                    }
                    Body::Compressed {
                        disk_bytenr,
                        disk_num_bytes,
                        ram_bytes: fe.ram_bytes,
                        offset,
                        kind: fe.compression,
                    }
                };
                (num_bytes, body)
            }
        };
        out.push(Extent {
            file_off: key.offset,
            len,
            body,
        });
    }
    Ok(out)
}

impl<'a> FileReader<'a> {
    /// A reader over a file of `size` bytes with the `EXTENT_DATA` items `items`; with
    /// `sums`, the trees (root block, level) whose `EXTENT_CSUM` items every sector read is
    /// checked against (when the volume's checksum is one amiscan computes).
    pub fn new(
        trees: &'a Trees,
        items: Vec<(Key, Vec<u8>)>,
        size: u64,
        sums: Option<Vec<(u64, u8)>>,
        context: String,
    ) -> Result<Self, FsError> {
        let extents = extents(trees, items, &context)?;
        Ok(FileReader {
            trees,
            extents,
            size,
            pos: 0,
            cached: None,
            sums: sums.filter(|_| trees.sb.csum.verified()).map(Sums::new),
            context,
        })
    }

    /// The byte ranges that hold data (not holes, not preallocated extents), within the size.
    pub fn data_ranges(&self) -> Vec<std::ops::Range<u64>> {
        self.extents
            .iter()
            .filter(|e| !matches!(e.body, Body::Zeros))
            .map(|e| e.file_off.min(self.size)..e.file_off.saturating_add(e.len).min(self.size))
            .filter(|r| !r.is_empty())
            .collect()
    }

    fn err(&self, e: FsError) -> io::Error {
        io::Error::other(format!("{}: {e}", self.context))
    }

    fn read_at_pos(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.size - self.pos).min(READ_CHUNK);
        let idx = self.extents.partition_point(|e| e.file_off <= self.pos);
        let cur = idx.checked_sub(1).and_then(|i| self.extents.get(i));
        let Some(e) = cur.filter(|e| self.pos - e.file_off < e.len) else {
            // A hole: zeros up to the next extent or the end.
            let next = self.extents.get(idx).map_or(self.size, |e| e.file_off);
            let n = want.min(next.saturating_sub(self.pos)).max(1).min(want) as usize;
            buf[..n].fill(0);
            return Ok(n);
        };
        let within = self.pos - e.file_off;
        let n = want.min(e.len - within) as usize;
        match &e.body {
            Body::Zeros => buf[..n].fill(0),
            Body::Inline(data) => {
                let from = usize::try_from(within).unwrap_or(usize::MAX);
                let have = data.get(from..).unwrap_or(&[]);
                let k = have.len().min(n);
                buf[..k].copy_from_slice(&have[..k]);
                buf[k..n].fill(0);
            }
            Body::Plain { logical } => {
                let at = logical.saturating_add(within);
                let extent_end = logical.saturating_add(e.len);
                let (_, left) = self
                    .trees
                    .chunks
                    .map(at, n as u64)
                    .map_err(|e| self.err(e))?;
                let n = n.min(usize::try_from(left).unwrap_or(usize::MAX)).max(1);
                let n = n.min(buf.len());
                let trees = self.trees;
                let r = match &mut self.sums {
                    None => trees.read_logical(at, &mut buf[..n]),
                    Some(sums) => read_checked(trees, sums, at, extent_end, &mut buf[..n]),
                };
                r.map_err(|e| self.err(e))?;
                return Ok(n);
            }
            Body::Compressed {
                disk_bytenr,
                disk_num_bytes,
                ram_bytes,
                offset,
                kind,
            } => {
                let (disk_bytenr, offset) = (*disk_bytenr, *offset);
                if self
                    .cached
                    .as_ref()
                    .is_none_or(|(at, _)| *at != disk_bytenr)
                {
                    let mut raw = vec![0u8; *disk_num_bytes as usize];
                    let trees = self.trees;
                    let end = disk_bytenr.saturating_add(*disk_num_bytes);
                    let r = match &mut self.sums {
                        None => trees.read_logical(disk_bytenr, &mut raw),
                        Some(sums) => read_checked(trees, sums, disk_bytenr, end, &mut raw),
                    };
                    r.map_err(|e| self.err(e))?;
                    let out = decompress(
                        *kind,
                        &raw,
                        *ram_bytes as usize,
                        self.trees.sb.sectorsize as usize,
                    )
                    .map_err(|m| {
                        self.err(corrupt(
                            format!("compressed extent at logical {disk_bytenr}"),
                            m,
                        ))
                    })?;
                    self.cached = Some((disk_bytenr, out));
                }
                let data = self
                    .cached
                    .as_ref()
                    .map(|(_, d)| d.as_slice())
                    .unwrap_or(&[]);
                let from = usize::try_from(offset.saturating_add(within)).unwrap_or(usize::MAX);
                let have = data.get(from..).unwrap_or(&[]);
                let k = have.len().min(n);
                buf[..k].copy_from_slice(&have[..k]);
                buf[k..n].fill(0);
            }
        }
        Ok(n)
    }
}

/// Read `buf.len()` bytes at logical `at` (inside one chunk, in an extent that ends at
/// `extent_end`) with every sector checked: whole sectors are read, the window of checksums
/// moved when the read leaves it.
fn read_checked(
    trees: &Trees,
    sums: &mut Sums,
    at: u64,
    extent_end: u64,
    buf: &mut [u8],
) -> Result<(), FsError> {
    let ss = u64::from(trees.sb.sectorsize);
    let ctx = || format!("btrfs logical address {at}");
    let a = at - at % ss;
    let e = at
        .checked_add(buf.len() as u64)
        .and_then(|e| e.checked_next_multiple_of(ss))
        .ok_or_else(|| corrupt(ctx(), "address overflows"))?;
    if !sums.covers(a, e) {
        let upto = extent_end
            .checked_next_multiple_of(ss)
            .unwrap_or(e)
            .min(a.saturating_add(WINDOW))
            .max(e);
        for err in sums.load(trees, a, upto) {
            trees.warn(format!(
                "btrfs checksum tree: {err}; data whose checksums it held is read unverified"
            ));
        }
    }
    if a == at && e == at.saturating_add(buf.len() as u64) {
        return datasum::read_verified(trees, at, buf, sums);
    }
    let len = usize::try_from(e - a).map_err(|_| corrupt(ctx(), "read too large"))?;
    let mut whole = vec![0u8; len];
    datasum::read_verified(trees, a, &mut whole, sums)?;
    let from = usize::try_from(at - a).unwrap_or(0);
    let part = whole
        .get(from..from.saturating_add(buf.len()))
        .ok_or_else(|| corrupt(ctx(), "read outside its sectors"))?;
    buf.copy_from_slice(part);
    Ok(())
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at_pos(buf)?;
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

impl Seek for FileReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::other("seek before the start of the file"))?;
        Ok(self.pos)
    }
}
