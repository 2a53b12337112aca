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
//! of [`super::mft_list`]), and the runs concatenated into one list the reader reads through
//! (`DataRuns`, uncompressed or LZNT1). [`extend`] does this for `$MFT`'s `$DATA` too, given
//! how to read a record (there: through the extents before it).
//!
//! Bounded against a hostile list: at most [`MAX_ENTRIES`] list entries looked at,
//! [`MAX_EXTENTS`] extents and `max_runs` runs. Each extent must be in the base record or in a
//! record in use whose base reference is the base record (number and sequence) and whose
//! sequence is the one its entry gives; its lowest VCN must be the one its entry gives and
//! follow the extent before it exactly (no gap, no overlap, none out of order or twice), its
//! runs must end at its highest VCN (an empty extent ends before its lowest), and the extents
//! together must map exactly the allocated size the first one gives; a compressed stream must
//! be in units of 16 clusters. Anything else is an error on the file (the scan is incomplete), never
//! a panic and never part of the stream read as if it were all of it.

use super::record::{
    extension_of, extent_runs, find_attribute, fixup, nonresident, u16_at, u64_at,
};
use ntfs::structured_values::NtfsAttributeList;
use ntfs::{NtfsAttributeType, NtfsError, NtfsFile};
use std::io::{self, Read, Seek, SeekFrom};

/// Most attribute list entries looked at (NTFS caps a list at 256 KiB, each entry at least 32
/// bytes).
const MAX_ENTRIES: usize = 1 << 14;
/// Most extents of one stream.
pub(super) const MAX_EXTENTS: usize = 8192;
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

/// One extent an attribute list names.
pub(super) struct Entry {
    /// Its lowest VCN.
    pub(super) vcn: u64,
    /// The record holding it, and the sequence number the list gives that record.
    pub(super) rec: u64,
    pub(super) seq: u16,
    /// Its attribute's instance in that record.
    pub(super) instance: u16,
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
    let cluster = u64::from(file.ntfs().cluster_size()).max(1);
    let want: Vec<u16> = name.encode_utf16().collect();
    let mut runs = Vec::new();
    let mut load = |rec: u64, _: &[Run]| {
        if rec == base {
            return record_bytes(file, c).map_err(|why| format!("record {rec}: {why}"));
        }
        let ext = file
            .ntfs()
            .file(c, rec)
            .map_err(|err| format!("record {rec}, which cannot be read: {err}"))?;
        record_bytes(&ext, c).map_err(|why| format!("record {rec}: {why}"))
    };
    let base = (base, file.sequence_number());
    let head = match extend(entries, base, ty, &want, max_runs, &mut runs, &mut load) {
        Ok(Extended::Resident) => return Ok(None),
        Ok(Extended::Runs(Some(head))) => head,
        Ok(Extended::Runs(None)) => return Ok(Some(Err("it has no extent at VCN 0".into()))),
        Err(why) => return Ok(Some(Err(why))),
    };
    if let Err(why) = compression_unit(head.flags, head.unit) {
        return Ok(Some(Err(why)));
    }
    let end = runs.last().map_or(0, |r| r.0.saturating_add(r.1));
    let mut placed = Vec::with_capacity(runs.len());
    for (vcn, n, lcn) in runs {
        let pos = match lcn.map(|l| l.checked_mul(cluster)) {
            Some(None) => {
                return Ok(Some(Err(format!(
                    "a run at VCN {vcn} lies past any volume"
                ))));
            }
            Some(Some(p)) => Some(p),
            None => None,
        };
        placed.push((vcn, n, pos));
    }
    if let Err(why) = covers(end, cluster, head.allocated, head.len) {
        return Ok(Some(Err(why)));
    }
    Ok(Some(Ok(Spread {
        len: head.len,
        flags: head.flags,
        runs: placed,
    })))
}

/// A run: first VCN, clusters, first LCN (`None` when sparse).
pub(super) type Run = (u64, u64, Option<u64>);

/// How [`extend`] reads a record: the fixed-up record of the number given, read through the
/// runs given (those assembled so far), or why not (naming the record).
pub(super) type Load<'a> = dyn FnMut(u64, &[Run]) -> Result<Vec<u8>, String> + 'a;

/// What the header of a stream's first extent (at VCN 0) gives.
pub(super) struct Head {
    /// Attribute flags (compressed, encrypted, sparse).
    pub(super) flags: u16,
    /// Allocated and data size.
    pub(super) allocated: u64,
    pub(super) len: u64,
    /// Compression unit exponent (header offset 0x22).
    pub(super) unit: u8,
}

/// What [`extend`] found.
pub(super) enum Extended {
    /// The runs were added; the first extent's header if it was among the extents.
    Runs(Option<Head>),
    /// The one extent is a resident attribute: nothing to assemble.
    Resident,
}

/// Add to `runs` (the runs before, from VCN 0 without a gap, or none) the runs of the extents
/// `entries` of the `ty` attribute named `name` of the base record `base` (number, sequence
/// number), in order, each from its record as `load` gives it (fixed up; given the record's
/// number and the runs so far, through which `$MFT`'s own extents are found). The one
/// assembler of `$MFT`'s `$DATA` ([`super::mft_list`]) and of a stream's ([`spread`]).
///
/// Each extent must start where the runs so far end, be in the base record or in an
/// extension record of it ([`extension_of`]) with the sequence number its entry gives, be
/// non-resident, start at the VCN its entry gives and end at its own highest VCN. `Err` names
/// the first that is not; the runs of the extents before it are kept.
pub(super) fn extend(
    entries: &[Entry],
    base: (u64, u16),
    ty: u32,
    name: &[u16],
    max_runs: usize,
    runs: &mut Vec<Run>,
    load: &mut Load<'_>,
) -> Result<Extended, String> {
    let mut head = None;
    // The record the last extent was in (extents in one record follow each other).
    let mut held: Option<(u64, Vec<u8>)> = None;
    for (i, e) in entries.iter().enumerate() {
        let (rec, vcn) = (e.rec, e.vcn);
        if i >= MAX_EXTENTS {
            return Err(format!(
                "its attribute list names more than {MAX_EXTENTS} extents (the one at VCN \
                 {vcn} and after not read)"
            ));
        }
        let end = runs.last().map_or(0, |r| r.0.saturating_add(r.1));
        if vcn != end {
            return Err(format!(
                "the extent in record {rec} starts at VCN {vcn}, the one before ends at {end} \
                 (overlapping, missing or repeated VCNs)"
            ));
        }
        let bytes = match held.take() {
            Some((r, bytes)) if r == rec => bytes,
            _ => {
                let bytes = load(rec, runs)
                    .map_err(|why| format!("the extent at VCN {vcn} is in {why}"))?;
                if rec != base.0 {
                    extension_of(&bytes, base.0, base.1, e.seq).map_err(|why| {
                        format!("the extent at VCN {vcn} names record {rec}, which {why}")
                    })?;
                }
                bytes
            }
        };
        let bytes = &held.insert((rec, bytes)).1;
        let off = find_attribute(bytes, ty, name, e.instance)
            .map_err(|why| format!("record {rec}: {why}"))?
            .ok_or_else(|| {
                format!(
                    "record {rec} has no attribute {ty:#x} {:?} of instance {}",
                    String::from_utf16_lossy(name),
                    e.instance
                )
            })?;
        if bytes.get(off + 8) == Some(&0) {
            if entries.len() == 1 && runs.is_empty() {
                return Ok(Extended::Resident);
            }
            return Err(format!(
                "record {rec}: an extent of a value spread over extents is resident"
            ));
        }
        let (low, high, pairs) =
            nonresident(bytes, off).map_err(|why| format!("record {rec}: {why}"))?;
        if low != vcn {
            return Err(format!(
                "record {rec}'s extent starts at VCN {low}, its list entry says {vcn}"
            ));
        }
        // The first extent's header gives the sizes (an empty extent at VCN 0 followed by
        // another there is still the first).
        if low == 0 && head.is_none() {
            head = Some(Head {
                flags: u16_at(bytes, off + 0x0C).unwrap_or(0),
                allocated: u64_at(bytes, off + 0x28).unwrap_or(0),
                len: u64_at(bytes, off + 0x30).unwrap_or(0),
                unit: bytes.get(off + 0x22).copied().unwrap_or(0),
            });
        }
        let room = max_runs.saturating_sub(runs.len());
        let decoded = extent_runs(pairs, low, high, room)
            .map_err(|why| format!("record {rec}: its extent: {why}"))?;
        runs.extend(decoded);
    }
    Ok(Extended::Runs(head))
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
    use super::super::record::tests::{data, list_attr, put, record, volume, with};
    use super::*;
    use crate::source::{Cursor, MemSource, SharedSource};
    use ntfs::Ntfs;
    use std::sync::Arc;

    /// The volume `vol` opened by the crate alone (records 0 to 15, the ones these tests read,
    /// are in `$MFT`'s first extent), and the source to read it through.
    fn open(vol: Vec<u8>) -> (Ntfs, SharedSource) {
        let src: SharedSource = Arc::new(MemSource::new(vol, "mem"));
        let ntfs = Ntfs::new(&mut Cursor::new(src.clone())).unwrap();
        (ntfs, src)
    }

    /// Record 0's `$DATA` assembled by [`spread`] on the volume `vol` (records 0 to 15 at
    /// cluster 4, 16 to 31 at cluster 100, the second extent in record 15: see
    /// `record::tests::volume`).
    fn spread0(vol: Vec<u8>) -> Result<Spread, String> {
        let (ntfs, src) = open(vol);
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
        let (ntfs, src) = open(vol);
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
