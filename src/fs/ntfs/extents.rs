//! A non-resident attribute spread over an `$ATTRIBUTE_LIST`: when a stream's run list no
//! longer fits in its base record (a heavily fragmented registry hive or log), NTFS (Windows,
//! ntfs-3g) splits its value into extents, each an attribute of the same type and name in some
//! record of the file, covering the VCNs from its own lowest to its highest, and names them all
//! in the base record's `$ATTRIBUTE_LIST`.
//!
//! The `ntfs` crate connects the extents by their instance number, which is unique within a
//! record and differs between records in practice, so it reads such a value up to its first
//! extent only. Here the run list is assembled from the list instead: every entry of the
//! stream's type and name, in order of lowest VCN, each extent's attribute found in its record
//! by type, name and instance, its mapping pairs decoded from its own lowest VCN (the helpers
//! of [`super::mft_list`], which does the same for `$MFT`), and the runs concatenated into one
//! list the reader reads through (`DataRuns`, uncompressed or LZNT1).
//!
//! Bounded against a hostile list: at most [`MAX_ENTRIES`] list entries looked at,
//! [`MAX_EXTENTS`] extents and `max_runs` runs. Each extent must be in the base record or in a
//! record in use whose base reference is the base record (number and sequence) and whose
//! sequence is the one its entry gives; its lowest VCN must be the one its entry gives and
//! follow the extent before it exactly (no gap, no overlap, none out of order or twice), its
//! runs must end at its highest VCN, and the extents together must cover the allocated size
//! the first one gives. Anything else is an error on the file (the scan is incomplete), never
//! a panic and never part of the stream read as if it were all of it.

use super::mft_list::{attributes, decode, fixup, nonresident, u16_at, u64_at};
use ntfs::structured_values::NtfsAttributeList;
use ntfs::{NtfsAttributeType, NtfsError, NtfsFile};
use std::io::{self, Read, Seek, SeekFrom};

/// Most attribute list entries looked at (NTFS caps a list at 256 KiB, each entry at least 32
/// bytes).
const MAX_ENTRIES: usize = 1 << 14;
/// Most extents of one stream.
const MAX_EXTENTS: usize = 8192;

/// A stream assembled from its extents.
pub(super) struct Spread {
    /// The stream's length (the first extent's data size).
    pub(super) len: u64,
    /// The first extent's attribute flags (compressed, encrypted, sparse).
    pub(super) flags: u16,
    /// Its runs: (first VCN, clusters, byte position on the volume or `None` when sparse), from
    /// VCN 0 without a gap.
    pub(super) runs: Vec<(u64, u64, Option<u64>)>,
}

/// One entry of the list for the stream: lowest VCN, record, its sequence number, instance.
struct Entry {
    vcn: u64,
    rec: u64,
    seq: u16,
    instance: u16,
}

/// The `ty` stream named `name` of `file`, assembled from the extents its attribute list
/// names. `Ok(None)`: the file has no attribute list, the list names no such stream, or the
/// stream is one resident attribute (the crate reads those). `Ok(Some(Err(why)))`: the list
/// or an extent is malformed (see the module doc). `Err`: the crate could not read the list or
/// a record.
pub(super) fn spread<T: Read + Seek>(
    file: &NtfsFile<'_>,
    c: &mut T,
    ty: NtfsAttributeType,
    name: &str,
    max_runs: usize,
) -> Result<Option<Result<Spread, String>>, NtfsError> {
    let mut list = None;
    for attr in file.attributes_raw() {
        let attr = attr?;
        if attr.ty()? == NtfsAttributeType::AttributeList {
            list = Some(attr.structured_value::<_, NtfsAttributeList>(c)?);
            break;
        }
    }
    let Some(list) = list else {
        return Ok(None);
    };
    let mut entries = Vec::new();
    let mut it = list.entries();
    let mut seen = 0usize;
    while let Some(entry) = it.next(c) {
        let entry = entry?;
        seen += 1;
        if seen > MAX_ENTRIES {
            return Ok(Some(Err(format!(
                "its attribute list has more than {MAX_ENTRIES} entries"
            ))));
        }
        if entry.ty().ok() != Some(ty) || entry.name().to_string_lossy() != name {
            continue;
        }
        if entries.len() >= MAX_EXTENTS {
            return Ok(Some(Err(format!(
                "its attribute list names more than {MAX_EXTENTS} extents of the stream"
            ))));
        }
        let reference = entry.base_file_reference();
        entries.push(Entry {
            vcn: u64::try_from(entry.lowest_vcn().value()).unwrap_or(u64::MAX),
            rec: reference.file_record_number(),
            seq: reference.sequence_number(),
            instance: entry.instance(),
        });
    }
    if entries.is_empty() {
        return Ok(None);
    }
    entries.sort_by_key(|e| e.vcn);
    assemble(file, c, ty as u32, name, &entries, max_runs)
}

/// Read the fixed-up bytes of `file`'s record as stored (the crate keeps them private).
fn record_bytes<T: Read + Seek>(file: &NtfsFile<'_>, c: &mut T) -> Result<Vec<u8>, String> {
    let at = file
        .position()
        .value()
        .ok_or("the record has no position")?
        .get();
    let size = usize::try_from(file.ntfs().file_record_size()).map_err(|e| e.to_string())?;
    let mut raw = vec![0u8; size];
    c.seek(SeekFrom::Start(at))
        .and_then(|_| c.read_exact(&mut raw))
        .map_err(|e: io::Error| format!("the record cannot be read: {e}"))?;
    fixup(raw)
}

/// The name of the attribute at `off` of the fixed-up record `rec`, as UTF-16 units.
fn attr_name(rec: &[u8], off: usize) -> Option<Vec<u16>> {
    let len = usize::from(*rec.get(off.checked_add(9)?)?);
    let at = off.checked_add(usize::from(u16_at(rec, off.checked_add(10)?)?))?;
    let raw = rec.get(at..at.checked_add(len.checked_mul(2)?)?)?;
    Some(
        raw.chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect(),
    )
}

/// The run list from the extents `entries` (in VCN order) of the `ty` stream `name` of `file`.
fn assemble<T: Read + Seek>(
    file: &NtfsFile<'_>,
    c: &mut T,
    ty: u32,
    name: &str,
    entries: &[Entry],
    max_runs: usize,
) -> Result<Option<Result<Spread, String>>, NtfsError> {
    let base = file.file_record_number();
    let base_seq = file.sequence_number();
    let cluster = u64::from(file.ntfs().cluster_size()).max(1);
    let want: Vec<u16> = name.encode_utf16().collect();
    let mut runs: Vec<(u64, u64, Option<u64>)> = Vec::new();
    let (mut len, mut flags, mut allocated) = (0u64, 0u16, 0u64);
    // The record the last extent was in (extents in one record follow each other).
    let mut held: Option<(u64, Vec<u8>)> = None;
    let mut end = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let rec = e.rec;
        if e.vcn != end {
            return Ok(Some(Err(format!(
                "the extent in record {rec} starts at VCN {}, the one before ends at {end} \
                 (overlapping, missing or repeated VCNs)",
                e.vcn
            ))));
        }
        if held.as_ref().is_none_or(|h| h.0 != rec) {
            let bytes = if rec == base {
                record_bytes(file, c)
            } else {
                let ext = match file.ntfs().file(c, rec) {
                    Ok(f) => f,
                    Err(err) => {
                        return Ok(Some(Err(format!(
                            "the extent at VCN {} is in record {rec}, which cannot be read: {err}",
                            e.vcn
                        ))));
                    }
                };
                record_bytes(&ext, c)
            };
            let bytes = match bytes {
                Ok(b) => b,
                Err(why) => return Ok(Some(Err(format!("record {rec}: {why}")))),
            };
            if rec != base {
                let in_use = u16_at(&bytes, 0x16).unwrap_or(0) & 1 != 0;
                let reference = u64_at(&bytes, 0x20).unwrap_or(0);
                let (of, of_seq) = (reference & 0xFFFF_FFFF_FFFF, (reference >> 48) as u16);
                let seq = u16_at(&bytes, 0x10).unwrap_or(0);
                if !in_use || of != base || of_seq != base_seq || seq != e.seq {
                    return Ok(Some(Err(format!(
                        "the extent at VCN {} names record {rec}, which is not an extension \
                         record of this file (in use: {in_use}, base record {of} sequence \
                         {of_seq}, its sequence {seq}, the list's {})",
                        e.vcn, e.seq
                    ))));
                }
            }
            held = Some((rec, bytes));
        }
        let Some((_, bytes)) = held.as_ref() else {
            continue;
        };
        let attrs = match attributes(bytes) {
            Ok(a) => a,
            Err(why) => return Ok(Some(Err(format!("record {rec}: {why}")))),
        };
        let found = attrs.into_iter().find(|&(o, t)| {
            t == ty
                && u16_at(bytes, o + 0x0E) == Some(e.instance)
                && attr_name(bytes, o).as_deref() == Some(&want[..])
        });
        let Some((off, _)) = found else {
            return Ok(Some(Err(format!(
                "record {rec} has no attribute {ty:#x} {name:?} of instance {}",
                e.instance
            ))));
        };
        if bytes.get(off + 8) == Some(&0) {
            if entries.len() == 1 {
                // One resident attribute: nothing to assemble.
                return Ok(None);
            }
            return Ok(Some(Err(format!(
                "record {rec}: an extent of a stream spread over {} extents is resident",
                entries.len()
            ))));
        }
        let (low, high, pairs) = match nonresident(bytes, off) {
            Ok(v) => v,
            Err(why) => return Ok(Some(Err(format!("record {rec}: {why}")))),
        };
        if low != e.vcn {
            return Ok(Some(Err(format!(
                "record {rec}'s extent starts at VCN {low}, its list entry says {}",
                e.vcn
            ))));
        }
        if i == 0 {
            flags = u16_at(bytes, off + 0x0C).unwrap_or(0);
            allocated = u64_at(bytes, off + 0x28).unwrap_or(0);
            len = u64_at(bytes, off + 0x30).unwrap_or(0);
        }
        let room = max_runs.saturating_sub(runs.len());
        let decoded = match decode(pairs, low, room) {
            Ok(d) => d,
            Err(why) => return Ok(Some(Err(format!("record {rec}: {why}")))),
        };
        let stop = decoded.last().map_or(low, |r| r.0.saturating_add(r.1));
        if high.checked_add(1) != Some(stop) {
            return Ok(Some(Err(format!(
                "record {rec}: its extent's runs end at VCN {stop}, its header says {}",
                high.saturating_add(1)
            ))));
        }
        for (vcn, n, lcn) in decoded {
            let pos = match lcn.map(|l| l.checked_mul(cluster)) {
                Some(None) => {
                    return Ok(Some(Err(format!(
                        "record {rec}: a run at VCN {vcn} lies past any volume"
                    ))));
                }
                Some(Some(p)) => Some(p),
                None => None,
            };
            runs.push((vcn, n, pos));
        }
        end = stop;
    }
    let covered = end.saturating_mul(cluster);
    if covered != allocated || len > allocated {
        return Ok(Some(Err(format!(
            "its extents map {covered} bytes, its allocated size is {allocated} and its length \
             {len}"
        ))));
    }
    Ok(Some(Ok(Spread { len, flags, runs })))
}
