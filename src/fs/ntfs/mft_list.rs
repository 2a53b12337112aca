//! An `$MFT` that needs an attribute list: when `$MFT`'s `$DATA` is fragmented into more runs
//! than record 0 can hold, NTFS (Windows, ntfs-3g) moves the tail of the run list into `$DATA`
//! extents in other records (Windows reserves 12 to 15 for them; ntfs-3g takes any) and names
//! them in record 0's `$ATTRIBUTE_LIST`. The `ntfs` crate maps a record number through the
//! first `$DATA` of record 0 alone (`Ntfs::file`: "this code assumes that the MFT does not have
//! an Attribute List"), so every record past the first extent failed.
//!
//! The crate reads through the [`Source`] we hand it, so instead of forking it this file gives
//! it a view of the volume ([`MftView`]) in which:
//!
//! - record 0, where the boot sector puts it, reads patched: its first `$DATA` maps the whole
//!   MFT as one run at a virtual offset past the end of the volume (the attributes after it are
//!   cut: `Ntfs::file` reads nothing else of that copy);
//! - reads at that virtual offset go to the real clusters, through the run list assembled here
//!   from every `$DATA` extent the attribute list names;
//! - everything else reads through unchanged.
//!
//! A record the crate loads from the virtual area keeps its virtual position
//! (`NtfsFile::position`), which reads back through the same view: code that reads raw bytes
//! at it (the record sweep) gets the record's bytes. Record 0 itself, loaded through the crate,
//! comes from the virtual area too, so its attributes (`$BITMAP`, the list itself) are the real
//! ones.
//!
//! Bounded against a hostile list: at most [`MAX_LIST`] bytes of list,
//! [`extents::MAX_EXTENTS`] extents and [`MAX_RUNS`] runs. The extents are assembled by
//! [`extents::extend`], as a stream's are: every extension record must be a `FILE` record in
//! use whose base reference is record 0's (number and sequence number) and whose sequence
//! number is the one its list entry gives, found through the extents already assembled (never
//! through itself), whose `$DATA` has the instance and first VCN its list entry gives;
//! extents must follow each other exactly (an extent that names record 0 again, overlaps or
//! leaves a gap ends the assembly), and records are read up to the first sparse run. What was
//! assembled before a problem is still read; a record past it is a read error naming record 0
//! and the problem (the scan is incomplete, never silently partial), and the volume carries a
//! warning. A volume whose record 0 has no attribute list is read as before, through the
//! volume itself (one read of record 0 when it is opened), unless a run of `$MFT` ends inside
//! a record (clusters smaller than records: ntfs-3g grows the MFT of a 512-byte-cluster volume
//! by odd cluster counts): the crate reads a record contiguously from its first byte, so such
//! a record read torn, and the view (record 0's runs, no list) is used then too.

use super::MAX_RUNS;
use super::extents::{self, Entry, extend};
use super::record::{
    ATTR_DATA, ATTR_LIST, attributes, decode, extent_runs, fixup, nonresident, u16_at, u32_at,
    u64_at, unfix,
};
use crate::source::{SharedSource, Source, SourceError};
use ntfs::Ntfs;
use std::sync::Arc;

/// Most bytes of attribute list read (NTFS caps an attribute list at 256 KiB).
const MAX_LIST: u64 = 256 << 10;
/// What an error about the assembled run list is about.
const WHAT: &str = "MFT record 0 ($MFT)";

/// One run of `$MFT`'s `$DATA`: first VCN, clusters, first LCN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    vcn: u64,
    len: u64,
    lcn: u64,
}

/// The volume as the crate sees it when `$MFT` needs an attribute list (see the module doc).
pub(super) struct MftView {
    inner: SharedSource,
    /// Where record 0 is on the volume, and its patched bytes as stored (fixups applied again).
    patch_at: u64,
    patch: Vec<u8>,
    /// Where the virtual `$MFT` starts (a cluster boundary past the volume's end).
    vbase: u64,
    cluster: u64,
    record_size: u64,
    /// The runs assembled, in VCN order, from VCN 0 without a gap.
    runs: Vec<Run>,
    /// Clusters of `$MFT`'s `$DATA` (its allocated size).
    clusters: u64,
    /// Why the runs stop before `clusters`, if they do.
    broken: Option<String>,
}

/// The source to read the NTFS volume `src` through: `src` itself when record 0 has no
/// attribute list (or cannot be read: the crate reports that), else an [`MftView`], with a
/// warning when the list could not be assembled whole.
pub(super) fn view(src: SharedSource, ntfs: &Ntfs) -> (SharedSource, Option<String>) {
    match build(&src, ntfs) {
        Ok(Some(view)) => {
            let warning = view.broken.as_ref().map(|why| {
                format!(
                    "{WHAT}: its $DATA is split over an attribute list that could not be read \
                     whole ({why}): the records past VCN {} are not read",
                    view.runs.last().map_or(0, |r| r.vcn.saturating_add(r.len))
                )
            });
            (Arc::new(view), warning)
        }
        Ok(None) => (src, None),
        Err(why) => {
            let warning = format!(
                "{WHAT}: its $DATA is split over an attribute list that could not be read \
                 ({why}): only the records its first extent maps are read"
            );
            (src, Some(warning))
        }
    }
}

/// Read `buf` at byte `off` of `$MFT`'s data through `runs` (clusters of `cluster` bytes).
fn read_mapped(
    src: &dyn Source,
    runs: &[extents::Run],
    cluster: u64,
    off: u64,
    buf: &mut [u8],
) -> Result<(), u64> {
    let mut done = 0usize;
    while done < buf.len() {
        let at = off.saturating_add(u64::try_from(done).unwrap_or(u64::MAX));
        let vcn = at / cluster;
        let i = runs.partition_point(|r| r.0 <= vcn).checked_sub(1);
        // A sparse run holds no record.
        let Some(&(first, len, Some(lcn))) = i
            .and_then(|i| runs.get(i))
            .filter(|r| vcn < r.0.saturating_add(r.1))
        else {
            return Err(at);
        };
        let in_run = at - first * cluster;
        let left = len.saturating_mul(cluster).saturating_sub(in_run);
        let n = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.len() - done);
        let real = lcn.saturating_mul(cluster).saturating_add(in_run);
        // A run maps at least the cluster `at` is in, so every step reads a byte or more; one
        // that did not would loop (or, skipped, leave bytes unread).
        let Some(piece) = buf
            .get_mut(done..done.saturating_add(n))
            .filter(|p| !p.is_empty())
        else {
            return Err(at);
        };
        if src.read_at(real, piece).is_err() {
            return Err(at);
        }
        done += n;
    }
    Ok(())
}

/// The view of `src` for the volume `ntfs`, if record 0 has an attribute list. `Err`: it has
/// one, but not even its first `$DATA` could be taken.
fn build(src: &SharedSource, ntfs: &Ntfs) -> Result<Option<MftView>, String> {
    let record_size = usize::try_from(ntfs.file_record_size()).map_err(|e| e.to_string())?;
    let cluster = u64::from(ntfs.cluster_size()).max(1);
    let Some(at) = ntfs.mft_position().value().map(|p| p.get()) else {
        return Ok(None);
    };
    let mut raw = vec![0u8; record_size];
    if src.read_at(at, &mut raw).is_err() {
        return Ok(None);
    }
    if fixup(&mut raw, b"FILE").is_err() {
        return Ok(None);
    }
    let rec0 = raw;
    let Ok(attrs) = attributes(&rec0) else {
        return Ok(None);
    };
    let list = attrs.iter().find(|a| a.1 == ATTR_LIST).map(|a| a.0);
    let Some(&(data_off, _)) = attrs.iter().find(|a| a.1 == ATTR_DATA) else {
        return if list.is_some() {
            Err("record 0 has no $DATA".into())
        } else {
            Ok(None)
        };
    };
    // The `$DATA` the crate maps records through: the first in the record.
    let (low, high, pairs) = match nonresident(&rec0, data_off) {
        Ok(v) => v,
        Err(_) if list.is_none() => return Ok(None),
        Err(why) => return Err(why),
    };
    if low != 0 {
        if list.is_none() {
            return Ok(None);
        }
        return Err(format!("record 0's $DATA starts at VCN {low}"));
    }
    let allocated = u64_at(&rec0, data_off + 0x28).ok_or("cut")?;
    let clusters = allocated / cluster;
    let mut runs = Vec::new();
    if let Err(why) = extent(&mut runs, pairs, 0, high) {
        if list.is_none() {
            return Ok(None);
        }
        return Err(format!("record 0's $DATA: {why}"));
    }
    let end = |runs: &[extents::Run]| runs.last().map_or(0, |r| r.0.saturating_add(r.1));
    let mut broken = None;
    match list {
        None => {
            // No list: the crate reads a record at the position of its first byte, so the
            // view is needed only when a run ends inside a record (clusters smaller than
            // records).
            let rs = u64::try_from(record_size).unwrap_or(1).max(1);
            let straddled = runs
                .iter()
                .rev()
                .skip(1)
                .any(|r| r.0.saturating_add(r.1).saturating_mul(cluster) % rs != 0);
            if !straddled || end(&runs) != clusters {
                return Ok(None);
            }
        }
        Some(list_off) => {
            let step = list_entries(src.as_ref(), &rec0, list_off, cluster).and_then(|entries| {
                extension_extents(
                    src.as_ref(),
                    &rec0,
                    entries,
                    record_size,
                    cluster,
                    &mut runs,
                )
            });
            // Records are read up to the first sparse run (an extension's: record 0's own
            // extent has none), which holds none.
            if let Some(i) = runs.iter().position(|r| r.2.is_none()) {
                let vcn = runs.get(i).map_or(0, |r| r.0);
                broken = Some(format!("a sparse run at VCN {vcn}"));
                runs.truncate(i);
            } else if let Err(why) = step {
                broken = Some(why);
            } else if end(&runs) != clusters {
                broken = Some(format!(
                    "its extents map {} clusters of {clusters}",
                    end(&runs)
                ));
            }
        }
    }
    let runs: Vec<Run> = runs
        .into_iter()
        .filter_map(|(vcn, len, lcn)| {
            Some(Run {
                vcn,
                len,
                lcn: lcn?,
            })
        })
        .collect();
    let past = src.len().max(ntfs.size());
    let vbase = virtual_base(past, cluster, record_size, clusters)?;
    let patch = patched(rec0, data_off, clusters, vbase / cluster)?;
    Ok(Some(MftView {
        inner: src.clone(),
        patch_at: at,
        patch,
        vbase,
        cluster,
        record_size: u64::try_from(record_size).unwrap_or(1).max(1),
        runs,
        clusters,
        broken,
    }))
}

/// Where the virtual `$MFT` starts for a volume (and image) of `past` bytes: past both, on a
/// boundary of a cluster and of a record (a record never straddles it), with room for the
/// `clusters` of `$MFT` before the end of the offsets.
fn virtual_base(past: u64, cluster: u64, record_size: usize, clusters: u64) -> Result<u64, String> {
    let align = cluster.max(u64::try_from(record_size).unwrap_or(u64::MAX));
    if !align.is_multiple_of(cluster) {
        return Err(format!(
            "records of {record_size} bytes and clusters of {cluster} bytes do not align"
        ));
    }
    past.checked_div(align)
        .and_then(|c| c.checked_add(2))
        .and_then(|c| c.checked_mul(align))
        .filter(|v| {
            clusters
                .checked_mul(cluster)
                .and_then(|n| v.checked_add(n))
                .is_some()
        })
        .ok_or_else(|| "the volume is too large".to_string())
}

/// Add to `runs` (record 0's own extent) the `$DATA` extents in other records that the list
/// `entries` of record 0 (`rec0`) names, each record read through the runs before it.
fn extension_extents(
    src: &dyn Source,
    rec0: &[u8],
    mut entries: Vec<Entry>,
    record_size: usize,
    cluster: u64,
    runs: &mut Vec<extents::Run>,
) -> Result<(), String> {
    // Record 0's own extent is in `runs` already.
    entries.retain(|e| e.vcn != 0 || e.rec != 0);
    let seq0 = u16_at(rec0, 0x10).unwrap_or(0);
    let mut load = |rec: u64, runs: &[extents::Run]| {
        if rec == 0 {
            return Err("record 0 itself, past its own extent (a loop)".to_string());
        }
        let mut ext = vec![0u8; record_size];
        let off = rec
            .checked_mul(u64::try_from(record_size).unwrap_or(u64::MAX))
            .ok_or_else(|| format!("record {rec}, past any volume"))?;
        read_mapped(src, runs, cluster, off, &mut ext)
            .map_err(|_| format!("record {rec}, past the extents before it"))?;
        fixup(&mut ext, b"FILE").map_err(|e| format!("record {rec}: {e}"))?;
        Ok(ext)
    };
    extend(
        &entries,
        (0, seq0),
        ATTR_DATA,
        &[],
        MAX_RUNS,
        runs,
        &mut load,
    )?;
    Ok(())
}

/// Add the runs of one extent (VCN `low` to `high`) to `runs`.
fn extent(runs: &mut Vec<extents::Run>, pairs: &[u8], low: u64, high: u64) -> Result<(), String> {
    let room = MAX_RUNS.saturating_sub(runs.len());
    let decoded = extent_runs(pairs, low, high, room)?;
    if let Some(r) = decoded.iter().find(|r| r.2.is_none()) {
        return Err(format!("a sparse run at VCN {}", r.0));
    }
    runs.extend(decoded);
    Ok(())
}

/// The unnamed `$DATA` entries of the attribute list at `off` of record 0, in list order.
fn list_entries(
    src: &dyn Source,
    rec0: &[u8],
    off: usize,
    cluster: u64,
) -> Result<Vec<Entry>, String> {
    let value: Vec<u8> = if rec0.get(off + 8) == Some(&0) {
        let len =
            usize::try_from(u32_at(rec0, off + 0x10).ok_or("cut")?).map_err(|e| e.to_string())?;
        let at = off + usize::from(u16_at(rec0, off + 0x14).ok_or("cut")?);
        rec0.get(at..at.saturating_add(len))
            .ok_or("the resident attribute list runs past record 0")?
            .to_vec()
    } else {
        let size = u64_at(rec0, off + 0x30).ok_or("cut")?;
        if size > MAX_LIST {
            return Err(format!("an attribute list of {size} bytes"));
        }
        let (low, _, pairs) = nonresident(rec0, off)?;
        let runs = decode(pairs, low, 64)?;
        if runs.iter().any(|r| r.2.is_none()) {
            return Err("a sparse run in the attribute list".into());
        }
        let mut v = vec![0u8; usize::try_from(size).map_err(|e| e.to_string())?];
        read_mapped(src, &runs, cluster, 0, &mut v)
            .map_err(|at| format!("the attribute list cannot be read at its byte {at}"))?;
        v
    };
    let mut out = Vec::new();
    let mut at = 0usize;
    while at.saturating_add(26) <= value.len() {
        let ty = u32_at(&value, at).unwrap_or(0);
        let len = usize::from(u16_at(&value, at + 4).unwrap_or(0));
        if len < 26 {
            return Err(format!("an attribute list entry of {len} bytes"));
        }
        if ty == ATTR_DATA && value.get(at + 6) == Some(&0) {
            let reference = u64_at(&value, at + 16).unwrap_or(0);
            out.push(Entry {
                vcn: u64_at(&value, at + 8).unwrap_or(0),
                rec: reference & 0xFFFF_FFFF_FFFF,
                seq: (reference >> 48) as u16,
                instance: u16_at(&value, at + 24).unwrap_or(0),
            });
        }
        at += len;
    }
    Ok(out)
}

/// Record 0 as the crate reads it from the boot sector's place: its first attribute the
/// `$DATA` at `data_off`, mapping all `clusters` as one run from `vlcn`, then the end.
fn patched(mut rec: Vec<u8>, data_off: usize, clusters: u64, vlcn: u64) -> Result<Vec<u8>, String> {
    let first = usize::from(u16_at(&rec, 0x14).ok_or("cut")?);
    let mp = usize::from(u16_at(&rec, data_off + 0x20).ok_or("cut")?);
    let header = rec
        .get(data_off..data_off.saturating_add(mp))
        .ok_or("record 0's $DATA header is cut")?
        .to_vec();
    let bytes = |v: u64, signed: bool| {
        let b = v.to_le_bytes();
        let mut n = 8usize;
        while n > 1 && b[n - 1] == 0 && (!signed || b[n - 2] & 0x80 == 0) {
            n -= 1;
        }
        b[..n].to_vec()
    };
    let (lb, ob) = (bytes(clusters, false), bytes(vlcn, true));
    let mut pairs = vec![u8::try_from(lb.len() | ob.len() << 4).unwrap_or(0)];
    pairs.extend_from_slice(&lb);
    pairs.extend_from_slice(&ob);
    pairs.push(0);
    let mut attr = header;
    attr.extend_from_slice(&pairs);
    attr.resize(attr.len().next_multiple_of(8), 0);
    let attr_len = u32::try_from(attr.len()).map_err(|e| e.to_string())?;
    attr.get_mut(4..8)
        .ok_or("cut")?
        .copy_from_slice(&attr_len.to_le_bytes());
    attr.get_mut(0x18..0x20)
        .ok_or("cut")?
        .copy_from_slice(&clusters.saturating_sub(1).to_le_bytes());
    let end = first + attr.len();
    let used = end + 8;
    if used > rec.len() || clusters == 0 {
        return Err("record 0 has no room for its patched $DATA".into());
    }
    rec[first..end].copy_from_slice(&attr);
    rec[end..end + 8].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
    let used = u32::try_from(used).map_err(|e| e.to_string())?;
    rec[0x18..0x1C].copy_from_slice(&used.to_le_bytes());
    Ok(unfix(rec))
}

impl MftView {
    /// Map `len` bytes at virtual offset `off` to pieces of the volume: (real offset, length).
    fn pieces(&self, off: u64, len: u64) -> Result<Vec<(u64, u64)>, SourceError> {
        let mut out = Vec::new();
        let mut at = off.saturating_sub(self.vbase);
        let end = at.saturating_add(len);
        while at < end {
            let vcn = at / self.cluster;
            let i = self.runs.partition_point(|r| r.vcn <= vcn).checked_sub(1);
            let Some(r) = i
                .and_then(|i| self.runs.get(i))
                .filter(|r| vcn < r.vcn.saturating_add(r.len))
            else {
                let why = self.broken.as_deref().unwrap_or("past the end of $MFT");
                return Err(SourceError::Corrupt {
                    what: WHAT.into(),
                    offset: at,
                    message: format!(
                        "MFT record {} lies past the $DATA extents of $MFT that could be \
                         read ({why})",
                        at / self.record_size
                    ),
                });
            };
            let in_run = at - r.vcn * self.cluster;
            let n = r
                .len
                .saturating_mul(self.cluster)
                .saturating_sub(in_run)
                .min(end - at);
            // At least the cluster `at` is in: a step of nothing would loop.
            if n == 0 {
                return Err(SourceError::Corrupt {
                    what: WHAT.into(),
                    offset: at,
                    message: format!("the run at VCN {} maps nothing at byte {at}", r.vcn),
                });
            }
            out.push((r.lcn.saturating_mul(self.cluster).saturating_add(in_run), n));
            at += n;
        }
        Ok(out)
    }
}

impl Source for MftView {
    fn len(&self) -> u64 {
        self.vbase
            .saturating_add(self.clusters.saturating_mul(self.cluster))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if offset >= self.vbase {
            let mut done = 0usize;
            for (real, n) in self.pieces(offset, len)? {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                let piece = buf.get_mut(done..done.saturating_add(n)).unwrap_or(&mut []);
                self.inner.read_at(real, piece)?;
                done = done.saturating_add(n);
            }
            return Ok(());
        }
        self.inner.read_at(offset, buf)?;
        // The patched record 0 over what was read.
        let patch_end = self
            .patch_at
            .saturating_add(u64::try_from(self.patch.len()).unwrap_or(0));
        let (from, to) = (
            offset.max(self.patch_at),
            offset.saturating_add(len).min(patch_end),
        );
        if from < to {
            let b = usize::try_from(from - offset).unwrap_or(0);
            let p = usize::try_from(from - self.patch_at).unwrap_or(0);
            let n = usize::try_from(to - from).unwrap_or(0);
            if let (Some(dst), Some(src)) = (buf.get_mut(b..b + n), self.patch.get(p..p + n)) {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn prefetch(&self, offset: u64, len: u64) {
        if offset < self.vbase {
            return self.inner.prefetch(offset, len);
        }
        for (real, n) in self.pieces(offset, len).unwrap_or_default() {
            self.inner.prefetch(real, n);
        }
    }

    fn remote(&self) -> bool {
        self.inner.remote()
    }

    fn will_read_most(&self) {
        self.inner.will_read_most()
    }

    fn will_read(&self, plan: &[std::ops::Range<u64>]) {
        self.inner.will_read(plan)
    }

    fn scan_ended(&self) {
        self.inner.scan_ended()
    }

    fn ready(&self, offset: u64, len: u64) -> bool {
        if offset < self.vbase {
            return self.inner.ready(offset, len);
        }
        self.pieces(offset, len)
            .is_ok_and(|p| p.iter().all(|&(real, n)| self.inner.ready(real, n)))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::record::tests::{data, fixed, record, volume, with};
    use super::super::record::unfix;
    use super::*;
    use crate::source::MemSource;

    #[test]
    fn the_virtual_mft_starts_on_a_record_boundary() {
        // 512-byte clusters, 1 KiB records, a volume of an odd number of clusters.
        let v = virtual_base(3 * 512, 512, 1024, 100).unwrap();
        assert_eq!((v % 1024, v >= 3 * 512 + 1024), (0, true));
        let v = virtual_base(3 * 4096 + 7, 4096, 1024, 100).unwrap();
        assert_eq!((v % 4096, v > 3 * 4096 + 7), (0, true));
        assert!(virtual_base(u64::MAX - 4096, 4096, 1024, 100).is_err());
        assert!(virtual_base(1 << 40, 4096, 1024, u64::MAX / 4096).is_err());
        assert!(virtual_base(1 << 20, 4096, 6144, 1).is_err());
    }

    #[test]
    fn an_empty_extent_adds_no_runs() {
        // An empty non-resident stream: VCNs 0 to -1, no mapping pairs.
        let mut runs = Vec::new();
        extent(&mut runs, &[0], 0, u64::MAX).unwrap();
        assert!(runs.is_empty());
    }

    #[test]
    fn the_patched_record_maps_the_whole_mft_as_one_run() {
        let rec = record(&data(0, 3, 4096 * 20, &[0x11, 0x04, 0x20]));
        let p = fixed(patched(rec, 0x38, 20, 0x1_0000).unwrap());
        let attrs = attributes(&p).unwrap();
        assert_eq!(attrs, vec![(0x38, ATTR_DATA)]);
        let (low, high, pairs) = nonresident(&p, 0x38).unwrap();
        assert_eq!((low, high), (0, 19));
        assert_eq!(decode(pairs, 0, 10).unwrap(), vec![(0, 20, Some(0x1_0000))]);
    }

    fn view(runs: Vec<Run>, broken: Option<String>) -> MftView {
        MftView {
            inner: Arc::new(MemSource::new(
                (0..=255u8).cycle().take(8192).collect(),
                "mem",
            )),
            patch_at: 0,
            patch: vec![0xEE; 4],
            vbase: 16384,
            cluster: 1024,
            record_size: 1024,
            runs,
            clusters: 4,
            broken,
        }
    }

    #[test]
    fn virtual_reads_follow_the_runs_and_past_them_name_record_0() {
        let v = view(
            vec![
                Run {
                    vcn: 0,
                    len: 1,
                    lcn: 2,
                },
                Run {
                    vcn: 1,
                    len: 1,
                    lcn: 5,
                },
            ],
            Some("a loop".into()),
        );
        assert_eq!(v.len(), 16384 + 4096);
        // Across the two runs.
        let mut b = [0u8; 8];
        v.read_at(16384 + 1020, &mut b).unwrap();
        let mut want = [0u8; 8];
        v.inner.read_at(2048 + 1020, &mut want[..4]).unwrap();
        v.inner.read_at(5120, &mut want[4..]).unwrap();
        assert_eq!(b, want);
        // Record 2 is past the runs: an error naming record 0 and why.
        let e = v.read_at(16384 + 2048, &mut b).unwrap_err().to_string();
        assert!(
            e.contains("MFT record 0") && e.contains("record 2") && e.contains("a loop"),
            "{e}"
        );
        // The patch shows over the real bytes.
        let mut head = [0u8; 6];
        v.read_at(0, &mut head).unwrap();
        assert_eq!(head, [0xEE, 0xEE, 0xEE, 0xEE, 4, 5]);
    }

    /// The volume `vol` opened, the source to read it through and the view's warning.
    pub(in super::super) fn open(vol: Vec<u8>) -> (Ntfs, SharedSource, Option<String>) {
        let src: SharedSource = Arc::new(MemSource::new(vol, "mem"));
        let ntfs = Ntfs::new(&mut crate::source::Cursor::new(src.clone())).unwrap();
        let (view, warning) = super::view(src, &ntfs);
        (ntfs, view, warning)
    }

    #[test]
    fn the_crate_reads_every_record_of_a_split_mft_through_the_view() {
        let (vol, _, _) = volume();
        let (ntfs, view, warning) = open(vol.clone());
        assert_eq!(warning, None);
        for n in 0..32u64 {
            let mut c = crate::source::Cursor::new(view.clone());
            let f = ntfs.file(&mut c, n).unwrap();
            // The record's bytes, read back at its (virtual) position.
            let mut b = [0u8; 1];
            view.read_at(f.position().value().unwrap().get() + 0x100, &mut b)
                .unwrap();
            assert_eq!(u64::from(b[0]), n);
        }
        // Without the view the crate cannot reach record 16.
        let src: SharedSource = Arc::new(MemSource::new(vol, "mem"));
        let mut c = crate::source::Cursor::new(src);
        assert!(ntfs.file(&mut c, 16).is_err());
    }

    #[test]
    fn hostile_lists_and_extents_end_in_errors_naming_record_0() {
        let (vol, rec0, rec15) = volume();
        let with = |r0: &[u8], r15: &[u8]| with(&vol, r0, r15);
        // The list entry at 0x38 + 24 + 32 is the second extent's: VCN at +8, record at +16.
        let second = 0x38 + 24 + 32;
        let mut cases = Vec::new();
        let mut r = rec0.clone();
        r[second + 16] = 0; // names record 0 itself
        cases.push(("itself", with(&r, &rec15)));
        let mut r = rec0.clone();
        r[second + 8] = 15; // starts at VCN 15: overlaps record 0's extent
        let mut e = rec15.clone();
        e[0x38 + 0x10] = 15;
        cases.push(("overlapping", with(&r, &e)));
        let mut e = rec15.clone();
        e[0x20] = 7; // an extension of record 7
        cases.push(("extension of record 7", with(&rec0, &e)));
        let mut e = rec15.clone();
        e[0x38 + 0x40] = 0x01; // a sparse run
        cases.push(("sparse", with(&rec0, &e)));
        let mut e = rec15.clone();
        e[0x20..0x28].fill(0); // an ordinary base record
        cases.push(("a base record", with(&rec0, &e)));
        let mut e = rec15.clone();
        e[0x26] = 2; // an extension of record 0 under an earlier sequence number
        cases.push(("sequence 2 of record 0", with(&rec0, &e)));
        let mut e = rec15.clone();
        e[0x10] = 9; // reused since the list was written
        cases.push(("its sequence", with(&rec0, &e)));
        let mut e = rec15.clone();
        e[0x16] = 0; // not in use
        cases.push(("not in use", with(&rec0, &e)));
        let mut r = rec0.clone();
        r[second + 16] = 20; // in a record only the extent itself maps
        cases.push(("past", with(&r, &rec15)));
        for (what, vol) in cases {
            let (ntfs, view, warning) = open(vol);
            let warning = warning.unwrap_or_default();
            assert!(warning.contains("MFT record 0"), "{what}: {warning}");
            let mut c = crate::source::Cursor::new(view.clone());
            assert!(
                ntfs.file(&mut c, 3).is_ok(),
                "{what}: the first extent is read"
            );
            let e = ntfs.file(&mut c, 20).unwrap_err().to_string();
            assert!(
                e.contains("MFT record 0") && e.contains("record 20"),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn mutated_lists_and_extents_never_panic() {
        let (vol, rec0, rec15) = volume();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let (mut r0, mut r15) = (rec0.clone(), rec15.clone());
            for _ in 0..1 + next() % 4 {
                let r = if next() % 2 == 0 { &mut r0 } else { &mut r15 };
                let at = 0x38 + usize::try_from(next() % 0x90).unwrap();
                r[at] = u8::try_from(next() & 0xFF).unwrap();
            }
            let mut v = vol.clone();
            v[4096..5120].copy_from_slice(&unfix(r0));
            v[4096 + 15 * 1024..4096 + 16 * 1024].copy_from_slice(&unfix(r15));
            let src: SharedSource = Arc::new(MemSource::new(v, "mem"));
            let ntfs = Ntfs::new(&mut crate::source::Cursor::new(src.clone())).unwrap();
            let (view, _) = super::view(src, &ntfs);
            let mut b = vec![0u8; 1024];
            for n in 0..40u64 {
                let _ = view.read_at(view.len().saturating_sub(40 * 1024) + n * 1024, &mut b);
            }
        }
    }
}
