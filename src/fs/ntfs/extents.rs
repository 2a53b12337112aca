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

use super::mft_list::{
    extension_of, extent_runs, find_attribute, fixup, nonresident, u16_at, u64_at,
};
use ntfs::structured_values::NtfsAttributeList;
use ntfs::{NtfsAttributeType, NtfsError, NtfsFile};
use std::io::{self, Read, Seek, SeekFrom};

/// Most attribute list entries looked at (NTFS caps a list at 256 KiB, each entry at least 32
/// bytes).
const MAX_ENTRIES: usize = 1 << 14;
/// Most extents of one stream.
const MAX_EXTENTS: usize = 8192;
/// The attribute flag of an LZNT1-compressed stream.
const COMPRESSED: u16 = 0x0001;

/// A stream assembled from its extents.
#[derive(Debug)]
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
    fixup(&mut raw, b"FILE")?;
    Ok(raw)
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
            if rec != base
                && let Err(why) = extension_of(&bytes, base, base_seq, e.seq)
            {
                return Ok(Some(Err(format!(
                    "the extent at VCN {} names record {rec}, which {why}",
                    e.vcn
                ))));
            }
            held = Some((rec, bytes));
        }
        let Some((_, bytes)) = held.as_ref() else {
            continue;
        };
        let found = match find_attribute(bytes, ty, &want, e.instance) {
            Ok(f) => f,
            Err(why) => return Ok(Some(Err(format!("record {rec}: {why}")))),
        };
        let Some(off) = found else {
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
            let unit = bytes.get(off + 0x22).copied().unwrap_or(0);
            if let Err(why) = compression_unit(flags, unit) {
                return Ok(Some(Err(format!("record {rec}: {why}"))));
            }
        }
        let room = max_runs.saturating_sub(runs.len());
        let decoded = match extent_runs(pairs, low, high, room) {
            Ok(d) => d,
            Err(why) => return Ok(Some(Err(format!("record {rec}: its extent: {why}")))),
        };
        let stop = decoded.last().map_or(low, |r| r.0.saturating_add(r.1));
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
    if let Err(why) = covers(end, cluster, allocated, len) {
        return Ok(Some(Err(why)));
    }
    Ok(Some(Ok(Spread { len, flags, runs })))
}

/// Whether extents ending at VCN `end` (clusters of `cluster` bytes) map exactly the
/// `allocated` bytes the first extent gives, and its length `len` lies within them. Exactly:
/// a product that overflowed would let a stream "cover" any allocated size with runs no
/// reader can step through.
fn covers(end: u64, cluster: u64, allocated: u64, len: u64) -> Result<(), String> {
    let covered = end.checked_mul(cluster);
    if covered != Some(allocated) || len > allocated {
        let covered = covered.map_or_else(
            || format!("{end} clusters of {cluster} bytes (past any volume)"),
            |b| format!("{b} bytes"),
        );
        return Err(format!(
            "its extents map {covered}, its allocated size is {allocated} and its length {len}"
        ));
    }
    Ok(())
}

/// Whether a stream whose first extent has attribute flags `flags` and compression unit
/// exponent `unit` (header offset 0x22) can be read: a compressed one only in units of 16
/// clusters (exponent 4, the only one Windows and ntfs-3g write and the one the LZNT1 reader
/// assumes); read in other units its compressed bytes would be taken for its content.
fn compression_unit(flags: u16, unit: u8) -> Result<(), String> {
    if flags & COMPRESSED != 0 && unit != 0 && unit != 4 {
        return Err(format!(
            "LZNT1-compressed in units of 2^{unit} clusters (only 16-cluster units are read): \
             its content was not read"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::MAX_RUNS;
    use super::super::mft_list::tests::{data, list_attr, open, put, record, volume, with};
    use super::*;
    use crate::source::Cursor;

    /// Record 0's `$DATA` assembled by [`spread`] on the volume `vol` (records 0 to 15 at
    /// cluster 4, 16 to 31 at cluster 100, the second extent in record 15: see
    /// `mft_list::tests::volume`).
    fn spread0(vol: Vec<u8>) -> Result<Spread, String> {
        let (ntfs, src, _) = open(vol);
        let mut c = Cursor::new(src);
        let file = ntfs.file(&mut c, 0).unwrap();
        spread(&file, &mut c, NtfsAttributeType::Data, "", MAX_RUNS)
            .unwrap()
            .expect("a spread stream")
    }

    /// Where record 0's `$DATA` is (after its attribute list: a header of 24 bytes and two
    /// entries of 32).
    const DATA0: usize = 0x38 + 24 + 64;

    /// The second extent's record: a `$DATA` from VCN 16 to `high` with `pairs`, an extension
    /// of record 0 (sequence 1).
    fn second(high: u64, pairs: &[u8]) -> Vec<u8> {
        let mut e = record(&data(16, high, 0, pairs));
        e[0x20..0x28].copy_from_slice(&(1u64 << 48).to_le_bytes());
        e
    }

    #[test]
    fn the_extents_of_a_split_stream_are_assembled() {
        let (vol, _, _) = volume();
        let s = spread0(vol).unwrap();
        assert_eq!(
            s.runs,
            vec![(0, 16, Some(4 * 1024)), (16, 16, Some(100 * 1024))]
        );
    }

    #[test]
    fn an_allocated_size_reached_only_by_overflow_is_refused() {
        let (vol, mut r0, _) = volume();
        // The first extent claims u64::MAX bytes; the second maps 2^54 clusters, so that the
        // extents' end in bytes (2^64 + 16 KiB) saturates to the same u64::MAX.
        r0[DATA0 + 0x28..DATA0 + 0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        let huge = second(16 + (1 << 54) - 1, &[0x17, 0, 0, 0, 0, 0, 0, 0x40, 0x64]);
        let e = spread0(with(&vol, &r0, &huge)).unwrap_err();
        assert!(e.contains("past any volume"), "{e}");
    }

    #[test]
    fn an_empty_stream_in_one_extent_is_not_corrupt() {
        // Record 3: an attribute list naming its one `$DATA`, non-resident and empty (VCNs 0
        // to -1, no mapping pairs).
        let (mut vol, _, _) = volume();
        let mut d = data(0, u64::MAX, 0, &[]);
        d[0x0E] = 1;
        put(&mut vol, 3, record(&[list_attr(&[(0, 3, 1)]), d].concat()));
        let (ntfs, src, _) = open(vol);
        let mut c = Cursor::new(src);
        let file = ntfs.file(&mut c, 3).unwrap();
        let s = spread(&file, &mut c, NtfsAttributeType::Data, "", MAX_RUNS)
            .unwrap()
            .expect("a spread stream")
            .unwrap();
        assert_eq!((s.len, s.runs), (0, vec![]));
    }

    #[test]
    fn an_extension_must_be_one_of_the_base_record() {
        let (vol, r0, r15) = volume();
        let mut base = r15.clone();
        base[0x20..0x28].fill(0);
        let e = spread0(with(&vol, &r0, &base)).unwrap_err();
        assert!(e.contains("is a base record"), "{e}");
        let mut reused = r15;
        reused[0x10] = 2;
        let e = spread0(with(&vol, &r0, &reused)).unwrap_err();
        assert!(e.contains("sequence number 2"), "{e}");
    }

    #[test]
    fn compression_units_other_than_16_clusters_are_refused() {
        let (vol, mut r0, r15) = volume();
        r0[DATA0 + 0x0C] = 1;
        r0[DATA0 + 0x22] = 3;
        let e = spread0(with(&vol, &r0, &r15)).unwrap_err();
        assert!(e.contains("units of 2^3 clusters"), "{e}");
        assert!(compression_unit(1, 4).is_ok());
        assert!(compression_unit(1, 0).is_ok());
        assert!(compression_unit(0, 3).is_ok());
        assert!(compression_unit(1, 5).is_err());
    }
}
