//! The MFT record sweep of NTFS, after the walk (the NTFS side of [`Filesystem::unreached`]
//! and [`Filesystem::deleted`]): which records hold a file that no directory index names.
//!
//! The `$MFT`'s own `$BITMAP` (record 0, attribute `0xB0`: one bit per record, set when the
//! record is in use) is read first, a chunk at a time, and turned into the records to look at;
//! only those are read, so a clean volume costs the bitmap and the few records of `$Extend`
//! (which the walk does not list) and, on a volume with a directory below one of them, the
//! lookup of `$Deleted` in `$Extend`'s index:
//!
//! - in use, user records (16 and up) the walk did not reach: a file or directory whose index
//!   entry is gone (what `chkdsk` would reconnect to `found.000`). Its record keeps its
//!   `$FILE_NAME`, so it is listed at `<unlinked inode N>/name` (its streams at
//!   `<unlinked inode N>/name:stream`; a directory's files below it). Extension records (a
//!   base record's attributes spread through an attribute list) and the records below
//!   `$Extend` (`$ObjId`, `$Quota`, `$UsnJrnl`, `$RmMetadata`, …) are the volume's own; a
//!   record whose header is not in use, or that has no name and no `$DATA` (empty), holds no
//!   file, and the reserved records 16 to 23 are passed over when they do not parse.
//! - in use, in `$Extend\$Deleted`: a file (or directory) deleted with POSIX semantics while a
//!   handle still held it open (Windows 10 1709 and later, Server 2019), moved there under a
//!   name of 24 hex digits until the last handle closes. A snapshot of a running Windows holds
//!   such files, as an ext4 snapshot holds its orphan list: listed at
//!   `<orphan inode N>/HEX` (streams at `…/HEX:stream`; a directory's files below it). The
//!   directory is found by its name in `$Extend`'s index, the first time a record's parent
//!   could be it; no other record below `$Extend` is listed.
//! - with `--unallocated`, records not in use that still hold a `FILE` record whose unnamed
//!   `$DATA` is resident (a deleted small file: NTFS keeps a file of up to about 700 bytes in
//!   its record, inside `$MFT`'s allocated clusters, where the free-space scan does not look):
//!   listed at `<deleted inode N>/name`, and each of its resident named `$DATA` (alternate data
//!   streams, a deleted directory's too) at `<deleted inode N>/name:stream`. A deleted
//!   stream whose data was non-resident is in the free clusters, which `--unallocated` scans
//!   raw.
//!
//! Bounded: the bitmap is read for the records `$MFT`'s `$DATA` holds and no further, at most
//! [`MAX_RANGES`] runs of records are kept (past it the rest is an error), every record is read
//! under the reader's read budget and guards; a record that fails to parse is an error on that
//! record (in use) or, when free, one more error counted in a single message (never a panic).

use super::{NtfsFs, RECORD_READS, guarded};
use crate::fs::{Entry, EntryKind, FsError, Swept, orphan_path, unlinked_path};
use crate::source::{Cursor, SharedSource};
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsFileName, NtfsFileNamespace};
use ntfs::{Ntfs, NtfsAttributeType, NtfsError, NtfsFile, NtfsFileFlags, NtfsReadSeek};
use std::collections::HashMap;

/// Records below this number are the NTFS metafiles.
const FIRST_USER_RECORD: u64 = 16;
/// The first record after those reserved for the metafiles' future use (16 to 23).
const FIRST_FREE_RECORD: u64 = 24;
/// `$Extend`, the directory of the later metafiles.
const EXTEND: u64 = 11;
/// The root directory.
const ROOT: u64 = 5;
/// Bytes of the bitmap read per call.
const CHUNK: usize = 64 << 10;
/// Most source reads for the whole bitmap (a run list that loops ends here).
const BITMAP_READS: u64 = 10_000_000;
/// Most runs of records to look at that are kept (a bitmap alternating bit by bit over a huge
/// `$MFT`); past it, the sweep stops with an error naming the first record not looked at.
pub(super) const MAX_RANGES: usize = 1 << 20;
/// In-use records that fail to read reported one by one; past it, one error counts the rest
/// (a bitmap set throughout over never-used records would give one per record).
const MAX_RECORD_ERRORS: u64 = 64;
/// Most parents followed up from a record to tell whether it lies below `$Extend`.
const MAX_PARENTS: usize = 16;
/// Most alternate data streams of one free record listed (a record of 1 KiB holds a few
/// dozen at most; this only bounds a damaged one).
const MAX_STREAMS: usize = 256;

/// The path reported for free MFT record `rec` that still holds a deleted file's content.
pub fn deleted_path(rec: u64) -> Vec<u8> {
    format!("<deleted inode {rec}>").into_bytes()
}

/// Which records [`records`] gives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// In use and not reached.
    Unreached,
    /// Not in use.
    Free,
}

/// The runs of records (`start..end`) that the `$MFT` bitmap says are `want` (from record 16),
/// less those `reached`; and an error when the runs were cut at [`MAX_RANGES`].
pub(super) fn records(
    src: &SharedSource,
    ntfs: &Ntfs,
    want: Want,
    reached: &(dyn Fn(u64) -> bool + Sync),
) -> Result<(Vec<std::ops::Range<u64>>, Option<FsError>), FsError> {
    guarded(&|| "$MFT bitmap".into(), || {
        let mut c = Cursor::new(src.clone()).with_read_limit(RECORD_READS);
        let mft = ntfs.file(&mut c, 0)?;
        let size = u64::from(ntfs.file_record_size()).max(1);
        let mut count = 0u64;
        let mut bitmap = None;
        let mut it = mft.attributes();
        while let Some(item) = it.next(&mut c) {
            let item = item?;
            let attr = item.to_attribute()?;
            if !attr.name()?.is_empty() {
                continue;
            }
            match attr.ty()? {
                // Every extent of `$MFT`'s `$DATA` in another record is an item of its own,
                // whose data size is 0 (Windows and ntfs-3g set it in the first extent only):
                // the largest is the length.
                NtfsAttributeType::Data => count = count.max(attr.value_length() / size),
                NtfsAttributeType::Bitmap if bitmap.is_none() => bitmap = Some(item),
                _ => {}
            }
        }
        let Some(item) = bitmap else {
            return Err(NtfsError::Io(std::io::Error::other(
                "$MFT has no $BITMAP attribute: which records are in use is unknown",
            )));
        };
        let attr = item.to_attribute()?;
        let mut c = Cursor::new(src.clone()).with_read_limit(BITMAP_READS);
        let mut value = attr.value(&mut c)?;
        let mut out: Vec<std::ops::Range<u64>> = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let mut rec = 0u64;
        'read: while rec < count {
            let n = value.read(&mut c, &mut buf)?;
            if n == 0 {
                break;
            }
            for &byte in buf.get(..n).unwrap_or(&[]) {
                for bit in 0..8 {
                    if rec >= count {
                        break 'read;
                    }
                    let in_use = byte & (1 << bit) != 0;
                    let take = rec >= FIRST_USER_RECORD
                        && match want {
                            Want::Unreached => in_use && !reached(rec),
                            Want::Free => !in_use,
                        };
                    if take {
                        let full = out.len() >= MAX_RANGES;
                        match out.last_mut() {
                            Some(r) if r.end == rec => r.end = rec + 1,
                            _ if full => {
                                let e = FsError::Corrupt {
                                    context: "$MFT bitmap".into(),
                                    message: format!(
                                        "more than {MAX_RANGES} runs of records to sweep: records \
                                         {rec} and above were not looked at"
                                    ),
                                    at: Default::default(),
                                };
                                return Ok((out, Some(e.with_inode(rec))));
                            }
                            _ => out.push(rec..rec + 1),
                        }
                    }
                    rec += 1;
                }
            }
        }
        if rec < count && want == Want::Unreached {
            // Records the bitmap does not cover: not known to be free.
            let e = FsError::Corrupt {
                context: "$MFT bitmap".into(),
                message: format!(
                    "covers {rec} of the {count} records of $MFT: the others were not swept"
                ),
                at: Default::default(),
            };
            return Ok((out, Some(e)));
        }
        Ok((out, None))
    })
}

/// What one record is, as far as the sweep cares.
struct Record {
    flags: NtfsFileFlags,
    /// Whether this is an extension record (its base record holds the file).
    extension: bool,
    /// Its names (Win32 or POSIX namespace first) with their parent directory records.
    names: Vec<(NtfsFileName, u64)>,
    /// Its unnamed `$DATA`: length, and whether resident.
    data: Option<(u64, bool)>,
    /// Its resident named `$DATA` attributes (alternate data streams): name and length.
    streams: Vec<(String, u64)>,
}

fn read_record(fs: &NtfsFs, c: &mut Cursor, rec: u64) -> Result<Record, NtfsError> {
    let file: NtfsFile<'_> = fs.ntfs().file(c, rec)?;
    // The base file reference (header offset 0x20; the crate keeps it private): not zero in
    // an extension record. Far from the sector ends the update sequence guards. The whole
    // reference: an extension of `$MFT` (record 0) has a base record number of 0 and its
    // sequence number (ntfs-3g puts them at 16 and up).
    let mut base = [0u8; 8];
    if let Some(p) = file.position().value() {
        fs.source()
            .read_at(p.get().saturating_add(0x20), &mut base)
            .map_err(|e| NtfsError::Io(std::io::Error::other(e)))?;
    }
    let mut out = Record {
        flags: file.flags(),
        extension: u64::from_le_bytes(base) != 0,
        names: Vec::new(),
        data: None,
        streams: Vec::new(),
    };
    if out.extension {
        return Ok(out);
    }
    let mut it = file.attributes();
    while let Some(item) = it.next(c) {
        let item = item?;
        let attr = item.to_attribute()?;
        match attr.ty()? {
            NtfsAttributeType::FileName if out.names.len() < 64 => {
                let n = attr.structured_value::<_, NtfsFileName>(c)?;
                let parent = n.parent_directory_reference().file_record_number();
                out.names.push((n, parent));
            }
            NtfsAttributeType::Data => {
                let name = attr.name()?;
                if name.is_empty() {
                    if out.data.is_none() {
                        out.data = Some((attr.value_length(), attr.is_resident()));
                    }
                } else if attr.is_resident() && out.streams.len() < MAX_STREAMS {
                    out.streams
                        .push((name.to_string_lossy(), attr.value_length()));
                }
            }
            _ => {}
        }
    }
    // The name shown: not the DOS alias when there is a long one.
    out.names
        .sort_by_key(|(n, _)| n.namespace() == NtfsFileNamespace::Dos);
    Ok(out)
}

/// What [`Filesystem::unreached`] gives for NTFS: the in-use user records the walk did not
/// reach, as entries under `<unlinked inode N>/name`.
///
/// [`Filesystem::unreached`]: crate::fs::Filesystem::unreached
pub(super) fn unreached(fs: &NtfsFs, reached: &(dyn Fn(u64) -> bool + Sync)) -> Swept {
    let (runs, cut) = records(fs.source(), fs.ntfs(), Want::Unreached, reached)?;
    let mut out = Vec::new();
    let reader = fs.ntfs_reader();
    // Whether a record lies below $Extend, by record (looked up through the parents).
    let mut system: HashMap<u64, bool> = HashMap::new();
    // `$Extend\$Deleted`'s record, looked up the first time a record's parent could be it.
    let mut trash = Trash::Unknown(fs);
    let mut failed = 0u64;
    for rec in runs.into_iter().flatten() {
        let ctx = || format!("MFT record {rec}");
        let r = match guarded(&ctx, || {
            let mut c = Cursor::new(fs.source().clone()).with_read_limit(RECORD_READS);
            read_record(fs, &mut c, rec)
        }) {
            Ok(r) => r,
            // Records 16 to 23 are reserved (Windows leaves them empty, mkntfs unwritten).
            Err(_) if rec < FIRST_FREE_RECORD => continue,
            Err(e) => {
                failed += 1;
                if failed <= MAX_RECORD_ERRORS {
                    out.push(Err(e.with_inode(rec)));
                }
                continue;
            }
        };
        // A record the bitmap marks but whose header does not: not a file (records 16 to 23
        // are reserved so; an interrupted delete leaves one too).
        if !r.flags.contains(NtfsFileFlags::IN_USE) || r.extension {
            continue;
        }
        // Nothing a file or directory has: no name, no content (an empty reserved record).
        if r.names.is_empty() && r.data.is_none() && !r.flags.contains(NtfsFileFlags::IS_DIRECTORY)
        {
            continue;
        }
        let parent = r.names.first().map(|(_, p)| *p);
        let dir = match parent {
            // `$Extend`'s own ($ObjId, $Quota, $Deleted itself, …): the volume's.
            Some(EXTEND) => continue,
            Some(p) if !reached(p) && p != ROOT && Some(p) == deleted_dir(&mut trash, &mut out) => {
                orphan_path(rec)
            }
            Some(p) if below_extend(fs, p, reached, &mut system) => continue,
            _ => unlinked_path(rec),
        };
        match r.names.first() {
            Some((name, _)) => reader.entries_for(&dir, name, rec, &mut out),
            None => reader.nameless_entries(dir, rec, &mut out),
        }
    }
    if failed > MAX_RECORD_ERRORS {
        out.push(Err(FsError::Corrupt {
            context: "$MFT bitmap".into(),
            message: format!(
                "{} more records it marks in use could not be read either (a damaged bitmap or \
                 $MFT): their files were not swept",
                failed - MAX_RECORD_ERRORS
            ),
            at: Default::default(),
        }));
    }
    out.extend(cut.map(Err));
    Ok(out)
}

/// The name of the directory below `$Extend` where Windows (10 1709 and later, Server 2019)
/// moves a file deleted with POSIX semantics while a handle still holds it open, renamed to 24
/// hex digits (its file reference and a counter), until the last handle closes.
const DELETED_DIR: &str = "$Deleted";

/// `$Extend\$Deleted`'s record: not looked up yet, or its number if there is one.
enum Trash<'a> {
    Unknown(&'a NtfsFs),
    Known(Option<u64>),
}

/// The record of `$Extend\$Deleted`, looked up by name in `$Extend`'s index the first time
/// (case-insensitively, through `$UpCase`, as Windows names it). A volume without one (any
/// before Windows 10 1709, or one no open file was deleted from) gives `None`; an `$Extend`
/// whose index cannot be read gives `None` and an error in `out`: files deleted while open
/// were not looked for.
fn deleted_dir(trash: &mut Trash<'_>, out: &mut Vec<Result<Entry, FsError>>) -> Option<u64> {
    let fs = match trash {
        Trash::Known(rec) => return *rec,
        Trash::Unknown(fs) => *fs,
    };
    let ctx = || {
        "$Extend's index, looking up $Deleted (files deleted while still open were not looked \
         for)"
            .to_string()
    };
    let found = guarded(&ctx, || {
        let mut c = Cursor::new(fs.source().clone()).with_read_limit(RECORD_READS);
        let dir = fs.ntfs().file(&mut c, EXTEND)?;
        let index = dir.directory_index(&mut c)?;
        let mut finder = index.finder();
        match NtfsFileNameIndex::find(&mut finder, fs.ntfs(), &mut c, DELETED_DIR) {
            Some(Ok(e)) => Ok(Some(e.file_reference().file_record_number())),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    });
    let rec = match found {
        Ok(rec) => rec.filter(|&r| r >= FIRST_USER_RECORD),
        Err(e) => {
            out.push(Err(e.with_inode(EXTEND)));
            None
        }
    };
    *trash = Trash::Known(rec);
    rec
}

/// Whether directory record `rec` is `$Extend` or below it (its parents lead there before the
/// root or a reached directory).
fn below_extend(
    fs: &NtfsFs,
    mut rec: u64,
    reached: &(dyn Fn(u64) -> bool + Sync),
    known: &mut HashMap<u64, bool>,
) -> bool {
    let mut path = Vec::new();
    let verdict = loop {
        if rec == EXTEND {
            break true;
        }
        if rec == ROOT || rec < FIRST_USER_RECORD || reached(rec) || path.len() >= MAX_PARENTS {
            break false;
        }
        if let Some(&v) = known.get(&rec) {
            break v;
        }
        path.push(rec);
        let parent = guarded(&String::new, || {
            let mut c = Cursor::new(fs.source().clone()).with_read_limit(RECORD_READS);
            read_record(fs, &mut c, rec)
        })
        .ok()
        .and_then(|r| r.names.first().map(|(_, p)| *p));
        match parent {
            Some(p) if p != rec => rec = p,
            _ => break false,
        }
    };
    for r in path {
        known.insert(r, verdict);
    }
    verdict
}

/// What [`Filesystem::deleted`] gives for NTFS: the free records that still hold a file with
/// resident content, as entries at `<deleted inode N>/name`. Free records that were never used
/// (no `FILE` signature) are passed over; one that has it but cannot be parsed (torn, or
/// partly overwritten) is counted, and the count is one error.
///
/// [`Filesystem::deleted`]: crate::fs::Filesystem::deleted
pub(super) fn deleted(fs: &NtfsFs) -> Swept {
    let (runs, cut) = records(fs.source(), fs.ntfs(), Want::Free, &|_| false)?;
    let mut out = Vec::new();
    let mut broken: Option<(u64, u64, FsError)> = None;
    for rec in runs.into_iter().flatten() {
        let ctx = || format!("free MFT record {rec}");
        let r = guarded(&ctx, || {
            let mut c = Cursor::new(fs.source().clone()).with_read_limit(RECORD_READS);
            read_record(fs, &mut c, rec)
        });
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                // Never used, or wiped: no FILE signature. The crate's message says so.
                if !e.to_string().contains("signature") {
                    match &mut broken {
                        Some((n, _, _)) => *n += 1,
                        None => broken = Some((1, rec, e)),
                    }
                }
                continue;
            }
        };
        if r.extension {
            continue;
        }
        let mut path = deleted_path(rec);
        if let Some((name, _)) = r.names.first() {
            path = crate::fs::join(&path, name.name().to_string_lossy().as_bytes());
        }
        let entry = |path: Vec<u8>, size: u64| Entry {
            path,
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime: r.names.first().map_or(0, |(n, _)| {
                super::unix_time(n.modification_time().nt_timestamp())
            }),
            ino: rec,
            phys: 0,
        };
        // Its alternate data streams that are still in the record (a directory's too), at
        // `name:stream`, as the walk names them.
        for (stream, len) in &r.streams {
            if *len == 0 {
                continue;
            }
            let mut p = path.clone();
            p.push(b':');
            p.extend_from_slice(stream.as_bytes());
            out.push(Ok(entry(p, *len)));
        }
        if r.flags.contains(NtfsFileFlags::IS_DIRECTORY) {
            continue;
        }
        let Some((len, true)) = r.data else { continue };
        if len == 0 {
            continue;
        }
        out.push(Ok(entry(path, len)));
    }
    if let Some((n, first, e)) = broken {
        out.push(Err(FsError::Corrupt {
            context: format!("free MFT record {first}"),
            message: format!(
                "{n} free MFT record(s) with a FILE signature could not be parsed (the first: \
                 {e}): a deleted file's resident content in them was not scanned"
            ),
            at: Default::default(),
        }
        .with_inode(first)));
    }
    out.extend(cut.map(Err));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::mft_list::tests::open;
    use super::super::record::tests::volume_with;
    use super::*;

    #[test]
    fn the_records_to_sweep_are_those_of_the_first_extent_of_mft_data() {
        // Record 0: its `$DATA` (32 records, the first extent), its attribute list (the second
        // extent, in record 15, says a length of 0) and a `$BITMAP` marking all 32 in use.
        let (vol, _, _) = volume_with(&|list, mut d0| {
            d0[0x30..0x38].copy_from_slice(&(32u64 * 1024).to_le_bytes());
            let mut bitmap = vec![0u8; 0x20];
            bitmap[..4].copy_from_slice(&0xB0u32.to_le_bytes());
            bitmap[4..8].copy_from_slice(&0x20u32.to_le_bytes());
            bitmap[0x0E] = 2;
            bitmap[0x10..0x14].copy_from_slice(&4u32.to_le_bytes());
            bitmap[0x14..0x16].copy_from_slice(&0x18u16.to_le_bytes());
            bitmap[0x18..0x1C].fill(0xFF);
            [d0, list, bitmap].concat()
        });
        let (ntfs, src, warning) = open(vol);
        assert_eq!(warning, None);
        let (runs, cut) = records(&src, &ntfs, Want::Unreached, &|_| false).unwrap();
        assert!(cut.is_none());
        assert_eq!(runs, vec![16..32]);
    }
}
