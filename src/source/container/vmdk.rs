//! VMDK: a sparse extent (the `KDMV` header, the grain directory read whole and capped, grain
//! table entries read as grains are located), plain (monolithicSparse) or with compressed grains
//! (streamOptimized: deflate grains behind grain markers, the grain directory possibly located by
//! the footer at the end of the file); and a text descriptor (monolithicFlat, twoGbMaxExtent*)
//! whose FLAT, VMFS, ZERO and SPARSE extents are files next to it. An extent path must stay in
//! the descriptor's directory. Refuses a parent (a delta disk) and a sparse file whose embedded
//! descriptor lists more than one extent (open its descriptor instead).

use super::{BlockMap, ContainerError, Loc, Mapped, le16, le32, le64, read_bounded, read_table};
use crate::source::{FileSource, SharedSource, Source, SourceError, check_bounds};
use std::path::Path;
use std::sync::Arc;

/// `KDMV`.
pub(super) const SPARSE_MAGIC: &[u8] = b"KDMV";
/// First line of a descriptor file.
pub(super) const DESCRIPTOR_MAGIC: &[u8] = b"# Disk DescriptorFile";

/// Grain directories larger than this are refused.
const MAX_GD: u64 = 32 << 20;
/// Descriptors larger than this are refused.
const MAX_DESCRIPTOR: u64 = 1 << 20;
/// Extents in one descriptor.
const MAX_EXTENTS: usize = 4096;
/// `gdOffset` meaning "see the footer at the end of the file".
const GD_AT_END: u64 = u64::MAX;

struct Sparse {
    grain_bits: u32,
    gtes_per_gt: u64,
    gd: Vec<u32>,
    compressed: bool,
}

fn unsupported(path: String, message: String) -> ContainerError {
    ContainerError::Unsupported {
        kind: "vmdk",
        path,
        message,
    }
}

fn corrupt(file: &dyn Source, offset: u64, message: String) -> ContainerError {
    ContainerError::Corrupt {
        kind: "vmdk",
        path: file.describe(),
        offset,
        message,
    }
}

/// Open a VMDK: a sparse extent, or a descriptor (which needs `path` to find its extents).
pub(super) fn open(
    file: SharedSource,
    path: Option<&Path>,
) -> Result<SharedSource, ContainerError> {
    let mut head = [0u8; 4];
    file.read_at(0, &mut head)?;
    if head == SPARSE_MAGIC {
        open_sparse(file, true)
    } else {
        open_descriptor(file, path)
    }
}

/// Open a sparse extent; `alone` when it is the whole disk (its embedded descriptor must list
/// only itself).
fn open_sparse(file: SharedSource, alone: bool) -> Result<SharedSource, ContainerError> {
    let f = &*file;
    let mut h = read_table(f, "vmdk", "header", 0, 512, 512)?;
    if &h[..4] != SPARSE_MAGIC {
        return Err(corrupt(f, 0, "not a sparse extent (no KDMV magic)".into()));
    }
    let version = le32(&h, 4);
    if !(1..=3).contains(&version) {
        return Err(unsupported(
            f.describe(),
            format!("sparse extent version {version}"),
        ));
    }
    if le64(&h, 56) == GD_AT_END {
        // streamOptimized: the footer (a copy of the header with the real gdOffset) is the
        // second-last sector, after a footer marker and before the end-of-stream marker.
        let at = f
            .len()
            .checked_sub(1024)
            .ok_or_else(|| corrupt(f, 56, "grain directory at the end, but no footer".into()))?;
        h = read_table(f, "vmdk", "footer", at, 512, 512)?;
        if &h[..4] != SPARSE_MAGIC || le64(&h, 56) == GD_AT_END {
            return Err(corrupt(
                f,
                at,
                "grain directory at the end, but no valid footer".into(),
            ));
        }
    }
    let flags = le32(&h, 8);
    let capacity = le64(&h, 12);
    let grain = le64(&h, 20);
    let desc_off = le64(&h, 28);
    let desc_len = le64(&h, 36);
    let gtes = u64::from(le32(&h, 44));
    let gd_off = le64(&h, 56);
    let compressed = flags & (1 << 16) != 0;
    if compressed && le16(&h, 77) != 1 {
        return Err(unsupported(
            f.describe(),
            format!("compression algorithm {}", le16(&h, 77)),
        ));
    }
    if !(1..=4096).contains(&grain) || !grain.is_power_of_two() {
        return Err(corrupt(f, 20, format!("grain size of {grain} sectors")));
    }
    if !(1..=(1 << 20)).contains(&gtes) {
        return Err(corrupt(f, 44, format!("{gtes} entries per grain table")));
    }
    let size = capacity
        .checked_mul(512)
        .ok_or_else(|| corrupt(f, 12, format!("capacity of {capacity} sectors")))?;
    if alone && desc_off != 0 && desc_len != 0 {
        let d = read_table(
            f,
            "vmdk",
            "embedded descriptor",
            desc_off.saturating_mul(512),
            desc_len.saturating_mul(512),
            MAX_DESCRIPTOR,
        )?;
        let d = parse_descriptor(&String::from_utf8_lossy(&d), &f.describe())?;
        if d.len() > 1 {
            return Err(unsupported(
                f.describe(),
                format!(
                    "its descriptor lists {} extents: scan the descriptor file",
                    d.len()
                ),
            ));
        }
    }
    let span = gtes.saturating_mul(grain);
    let n_gd = capacity.div_ceil(span);
    let gd_at = gd_off
        .checked_mul(512)
        .ok_or_else(|| corrupt(f, 56, "grain directory offset overflows".into()))?;
    let raw = read_table(
        f,
        "vmdk",
        "grain directory",
        gd_at,
        n_gd.saturating_mul(4),
        MAX_GD,
    )?;
    let gd = raw.chunks_exact(4).map(|c| le32(c, 0)).collect();
    let s = Sparse {
        grain_bits: (grain * 512).trailing_zeros(),
        gtes_per_gt: gtes,
        gd,
        compressed,
    };
    Ok(Arc::new(Mapped::new(file, s, size)))
}

impl BlockMap for Sparse {
    fn kind(&self) -> &'static str {
        "vmdk"
    }

    fn block_size(&self) -> u64 {
        1 << self.grain_bits
    }

    fn locate(&self, file: &dyn Source, block: u64) -> Result<Loc, String> {
        let gdi = block / self.gtes_per_gt;
        let gt = usize::try_from(gdi)
            .ok()
            .and_then(|i| self.gd.get(i))
            .copied()
            .ok_or_else(|| format!("grain {block} is outside the grain directory"))?;
        if gt == 0 {
            return Ok(Loc::Zero);
        }
        let at = u64::from(gt) * 512 + (block % self.gtes_per_gt) * 4;
        if at.saturating_add(4) > file.len() {
            return Err(format!(
                "grain directory entry {gdi} points to grain table sector {gt}, past the end of the file"
            ));
        }
        let mut e = [0u8; 4];
        file.read_at(at, &mut e).map_err(|e| e.to_string())?;
        let sector = u32::from_le_bytes(e);
        if sector <= 1 {
            // 0: never written; 1: written as zeros.
            return Ok(Loc::Zero);
        }
        let host = u64::from(sector) * 512;
        if self.compressed {
            return Ok(Loc::Compressed {
                at: host,
                len: self.block_size() * 2 + 512,
            });
        }
        if host.saturating_add(self.block_size()) > file.len() {
            return Err(format!(
                "grain table entry at file offset {at} points to sector {sector}, past the end of the file ({} bytes)",
                file.len()
            ));
        }
        Ok(Loc::Raw(host))
    }

    fn inflate(&self, data: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
        // Grain marker: u64 lba, u32 size, then `size` bytes of zlib stream.
        let size = usize::try_from(le32(data, 8)).unwrap_or(usize::MAX);
        let body = 12usize
            .checked_add(size)
            .and_then(|e| data.get(12..e))
            .ok_or_else(|| format!("grain marker says {size} bytes, more than the file holds"))?;
        read_bounded(flate2::read::ZlibDecoder::new(body), out_len)
    }
}

/// One extent line of a descriptor.
#[derive(Debug, PartialEq, Eq)]
struct Extent {
    sectors: u64,
    kind: String,
    file: Option<String>,
    offset: u64,
}

/// The extent lines of a descriptor; a parent is refused.
fn parse_descriptor(text: &str, path: &str) -> Result<Vec<Extent>, ContainerError> {
    let mut out = vec![];
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("parentFileNameHint") {
            return Err(unsupported(
                path.to_string(),
                format!(
                    "is a delta disk with parent {}: scan a flattened copy",
                    v.trim_start_matches([' ', '=']).trim()
                ),
            ));
        }
        let Some(rest) = ["RW ", "RDONLY ", "NOACCESS "]
            .iter()
            .find_map(|p| line.strip_prefix(p))
        else {
            continue;
        };
        let (head, file, tail) = match (rest.find('"'), rest.rfind('"')) {
            (Some(a), Some(b)) if b > a => {
                (&rest[..a], Some(rest[a + 1..b].to_string()), &rest[b + 1..])
            }
            _ => (rest, None, ""),
        };
        let mut w = head.split_whitespace();
        let bad = || ContainerError::Corrupt {
            kind: "vmdk",
            path: path.to_string(),
            offset: 0,
            message: format!("bad extent line {line:?}"),
        };
        let sectors: u64 = w.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let kind = w.next().ok_or_else(bad)?.to_string();
        let offset = match tail.split_whitespace().next() {
            Some(o) => o.parse().map_err(|_| bad())?,
            None => 0,
        };
        out.push(Extent {
            sectors,
            kind,
            file,
            offset,
        });
        if out.len() > MAX_EXTENTS {
            return Err(unsupported(path.to_string(), "too many extents".into()));
        }
    }
    Ok(out)
}

/// Open a descriptor file and the extents it lists.
fn open_descriptor(
    file: SharedSource,
    path: Option<&Path>,
) -> Result<SharedSource, ContainerError> {
    let name = file.describe();
    let Some(path) = path else {
        return Err(unsupported(
            name,
            "a descriptor read without its directory".into(),
        ));
    };
    let text = read_table(&*file, "vmdk", "descriptor", 0, file.len(), MAX_DESCRIPTOR)?;
    let extents = parse_descriptor(&String::from_utf8_lossy(&text), &name)?;
    if extents.is_empty() {
        return Err(corrupt(&*file, 0, "descriptor lists no extents".into()));
    }
    let open_err = |p: &Path, source| ContainerError::Open {
        path: p.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let dir = dir.canonicalize().map_err(|e| open_err(dir, e))?;
    let mut parts = vec![];
    let mut start = 0u64;
    for e in extents {
        let len = e
            .sectors
            .checked_mul(512)
            .ok_or_else(|| corrupt(&*file, 0, format!("extent of {} sectors", e.sectors)))?;
        let part = match e.kind.as_str() {
            "ZERO" => None,
            "FLAT" | "VMFS" | "SPARSE" => {
                let rel = e.file.as_deref().unwrap_or("");
                let p = dir.join(rel);
                let real = p.canonicalize().map_err(|err| open_err(&p, err))?;
                if Path::new(rel).is_absolute() || !real.starts_with(&dir) {
                    return Err(unsupported(
                        name,
                        format!("extent {rel:?} is outside the descriptor's directory"),
                    ));
                }
                let f: SharedSource =
                    Arc::new(FileSource::open(&real).map_err(|err| open_err(&real, err))?);
                if e.kind == "SPARSE" {
                    Some((open_sparse(f, false)?, 0))
                } else {
                    let off = e.offset.saturating_mul(512);
                    Some((f, off))
                }
            }
            k => return Err(unsupported(name, format!("extent type {k}"))),
        };
        parts.push(Part { start, len, part });
        start = start
            .checked_add(len)
            .ok_or_else(|| corrupt(&*file, 0, "extents overflow".into()))?;
    }
    Ok(Arc::new(Concat {
        parts,
        size: start,
        name: format!("{name} (vmdk)"),
    }))
}

struct Part {
    start: u64,
    len: u64,
    part: Option<(SharedSource, u64)>,
}

/// Extents one after the other.
struct Concat {
    parts: Vec<Part>,
    size: u64,
    name: String,
}

impl Source for Concat {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_bounds(&|| self.name.clone(), offset, buf.len(), self.size)?;
        let mut done = 0usize;
        let first = self.parts.partition_point(|p| p.start + p.len <= offset);
        for p in &self.parts[first..] {
            if done == buf.len() {
                break;
            }
            let at = offset + done as u64;
            let within = at - p.start;
            let n = usize::try_from(p.len - within)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match &p.part {
                None => dst.fill(0),
                Some((src, base)) => {
                    let a = base
                        .checked_add(within)
                        .ok_or_else(|| SourceError::Corrupt {
                            what: self.name.clone(),
                            offset: at,
                            message: "extent offset overflows".into(),
                        })?;
                    src.read_at(a, dst)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_extents_and_parents() {
        let d = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"a b-flat.vmdk\" 0\nRDONLY 8 ZERO\n";
        let e = parse_descriptor(d, "x").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].file.as_deref(), Some("a b-flat.vmdk"));
        assert_eq!((e[1].sectors, e[1].kind.as_str()), (8, "ZERO"));
        let err = parse_descriptor("parentFileNameHint=\"base.vmdk\"\n", "x").unwrap_err();
        assert!(err.to_string().contains("base.vmdk"), "{err}");
    }
}
