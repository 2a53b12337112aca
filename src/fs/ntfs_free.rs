//! NTFS free space: the clusters `$Bitmap` (MFT record 6) marks free, and `$LogFile`'s clusters
//! (record 2) as the journal, for `--unallocated` and for the allocation plan of a full scan
//! over EBS (`fs::allocated`, its complement). The bytes past the last whole cluster (where the
//! backup boot sector lies) count as free.
//!
//! The bitmap is read a chunk at a time and turned into runs as it goes (one bit per cluster,
//! LSB first), so a large volume's bitmap is never held whole; it is read through the crate,
//! under the same guards as every other call into it (`ntfs.rs`). Free MFT records (deleted
//! files whose record is still there, inside `$MFT`'s allocated clusters) are not free
//! clusters: `ntfs/sweep.rs` reads those that still hold a small file's resident content.

use super::FsError;
use super::ext4_free::{Region, RegionKind};
use super::ntfs::{RECORD_READS, data_item, guarded};
use crate::source::{Cursor, SharedSource};
use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::{Ntfs, NtfsReadSeek};

/// Bytes of the bitmap read per call.
const CHUNK: usize = 1 << 20;
/// Most source reads for the whole bitmap (a run list that loops ends here).
const BITMAP_READS: u64 = 50_000_000;
/// Most free runs kept (a bitmap alternating bit by bit on a huge volume); past it, the rest of
/// the volume counts as one free region (scanned raw, never skipped).
const MAX_RUNS: usize = 1 << 22;

/// The free regions and the log of the NTFS volume on `src`, ascending.
pub fn free_regions(src: &SharedSource) -> Result<Vec<Region>, FsError> {
    guarded(&|| "$Bitmap".into(), || {
        let mut c = Cursor::new(src.clone()).with_read_limit(RECORD_READS);
        let ntfs = Ntfs::new(&mut c)?;
        let cluster = u64::from(ntfs.cluster_size());
        let clusters = ntfs.size() / cluster;

        // $LogFile's runs: the journal.
        let mut out: Vec<Region> = record_runs(&ntfs, &mut c, 2)?
            .into_iter()
            .map(|r| Region {
                offset: r.start,
                len: r.end - r.start,
                kind: RegionKind::Journal,
            })
            .collect();

        // $Bitmap: runs of clear bits.
        let bitmap = ntfs.file(&mut c, 6)?;
        let mut c = Cursor::new(src.clone()).with_read_limit(BITMAP_READS);
        let Some(item) = data_item(&bitmap, &mut c, "")? else {
            return Ok(out);
        };
        let attr = item.to_attribute()?;
        let mut value = attr.value(&mut c)?;
        let mut buf = vec![0u8; CHUNK];
        let mut lcn = 0u64;
        let mut free_from: Option<u64> = None;
        let push = |out: &mut Vec<Region>, from: u64, to: u64| {
            out.push(Region {
                offset: from.saturating_mul(cluster),
                len: to.saturating_sub(from).saturating_mul(cluster),
                kind: RegionKind::Unallocated,
            });
        };
        'read: while lcn < clusters {
            let n = value.read(&mut c, &mut buf)?;
            if n == 0 {
                break;
            }
            for &byte in buf.get(..n).unwrap_or(&[]) {
                for bit in 0..8 {
                    if lcn >= clusters {
                        break 'read;
                    }
                    let used = byte & (1 << bit) != 0;
                    match (used, free_from) {
                        (false, None) => free_from = Some(lcn),
                        (true, Some(f)) => {
                            push(&mut out, f, lcn);
                            free_from = None;
                            if out.len() >= MAX_RUNS {
                                // The rest of the volume is one region.
                                free_from = Some(lcn);
                                lcn = clusters;
                                break 'read;
                            }
                        }
                        _ => {}
                    }
                    lcn += 1;
                }
            }
        }
        // Clusters the bitmap does not cover are not known to be used.
        let end = if lcn < clusters {
            free_from.get_or_insert(lcn);
            clusters
        } else {
            lcn
        };
        if let Some(f) = free_from {
            push(&mut out, f, end);
        }
        let tail = clusters.saturating_mul(cluster);
        if src.len() > tail {
            out.push(Region {
                offset: tail,
                len: src.len() - tail,
                kind: RegionKind::Unallocated,
            });
        }
        out.sort_unstable_by_key(|r| r.offset);
        Ok(out)
    })
}

/// Where `$MFTMirr` (record 1: a copy of the first MFT records, which the scan never reads)
/// lies: allocated space left out of a full scan's plan over EBS, so its block is not fetched
/// for nothing (on a small volume it is alone in its 512 KiB block, at the middle of the volume).
pub fn mirror_regions(src: &SharedSource) -> Result<Vec<std::ops::Range<u64>>, FsError> {
    guarded(&|| "$MFTMirr".into(), || {
        let mut c = Cursor::new(src.clone()).with_read_limit(RECORD_READS);
        let ntfs = Ntfs::new(&mut c)?;
        record_runs(&ntfs, &mut c, 1)
    })
}

/// Where the unnamed `$DATA` of MFT record `record` lies on the volume, run by run (sparse runs
/// left out; at most [`MAX_RUNS`] and one more); none when it is resident or absent.
fn record_runs(
    ntfs: &Ntfs,
    c: &mut Cursor,
    record: u64,
) -> Result<Vec<std::ops::Range<u64>>, ntfs::NtfsError> {
    let file = ntfs.file(c, record)?;
    let mut out = Vec::new();
    if let Some(item) = data_item(&file, c, "")? {
        let attr = item.to_attribute()?;
        if let NtfsAttributeValue::NonResident(nr) = attr.value(c)? {
            for run in nr.data_runs() {
                let run = run?;
                if let Some(p) = run.data_position().value() {
                    out.push(p.get()..p.get().saturating_add(run.allocated_size()));
                }
                if out.len() > MAX_RUNS {
                    break;
                }
            }
        }
    }
    Ok(out)
}
