//! MBR partition tables (primary, extended and logical partitions) through `mbrman`.
//!
//! MBR does not record the logical sector size. Both 512 and 4096 are tried and the one whose
//! partitions land on recognisable filesystems wins (512 on a tie).

use super::{Discovery, Role, VolumeError, partition};
use crate::fs::probe::{Probe, probe};
use crate::source::{Cursor, SharedSource, Window};
/// Bound on reads while following the chain of extended boot records.
const MAX_READS: u64 = 16 * 1024;

/// True when the first sector ends with the boot signature 0x55 0xAA.
pub(super) fn has_signature(head: &[u8]) -> bool {
    head.get(510..512) == Some(&[0x55, 0xAA][..])
}

/// True for a protective MBR (one entry of type 0xEE), which announces a GPT.
pub(super) fn is_protective(head: &[u8]) -> bool {
    has_signature(head) && (0..4usize).any(|i| head.get(446 + i * 16 + 4) == Some(&0xEE))
}

/// A parsed table at one sector size.
struct Table {
    entries: Vec<(usize, mbrman::MBRPartitionEntry)>,
    error: Option<VolumeError>,
}

/// Run a third-party parser, turning a panic on malformed input into an error. The parsers are
/// pre-checked for the panics we know of; this is the backstop for the ones we do not.
pub(super) fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    crate::model::caught::catch(f)
        .map_err(|_| format!("{what}: the parser failed on malformed input"))
}

/// True when every used primary entry starts at LBA 0: an invalid table (it overlaps the MBR
/// itself) on which `mbrman` 0.6 panics while computing the alignment.
fn all_used_start_at_zero(head: &[u8]) -> bool {
    let mut used = 0;
    for i in 0..4usize {
        let o = 446 + i * 16;
        let (Some(&sys), Some(lba)) = (head.get(o + 4), head.get(o + 8..o + 12)) else {
            return false;
        };
        if sys != 0 {
            used += 1;
            if lba != [0, 0, 0, 0] {
                return false;
            }
        }
    }
    used > 0
}

fn read_table(src: &SharedSource, sector: u32) -> Result<Table, String> {
    let mut head = [0u8; 512];
    src.read_at(0, &mut head).map_err(|e| e.to_string())?;
    if all_used_start_at_zero(&head) {
        return Err("MBR: every partition entry starts at sector 0 (inside the MBR itself)".into());
    }
    let mut cursor = Cursor::new(src.clone()).with_read_limit(MAX_READS);
    let full = guarded("MBR", || mbrman::MBR::read_from(&mut cursor, sector))
        .and_then(|r| r.map_err(|e| e.to_string()));
    match full {
        Ok(mbr) => Ok(Table {
            entries: mbr.iter().map(|(i, e)| (i, e.clone())).collect(),
            error: None,
        }),
        Err(full_err) => {
            // The chain of logical partitions is broken: keep the primaries.
            let mut cursor = Cursor::new(src.clone()).with_read_limit(MAX_READS);
            let header = guarded("MBR", || mbrman::MBRHeader::read_from(&mut cursor))?
                .map_err(|e| e.to_string())?;
            Ok(Table {
                entries: header.iter().map(|(i, e)| (i, e.clone())).collect(),
                error: Some(VolumeError::MbrLogicalChain { reason: full_err }),
            })
        }
    }
}

/// How many partitions of `t` start on a recognisable filesystem at sector size `sector`.
fn score(src: &SharedSource, t: &Table, sector: u32) -> usize {
    t.entries
        .iter()
        .filter(|(_, e)| e.is_used() && !e.is_extended())
        .filter(|(_, e)| {
            let off = u64::from(e.starting_lba) * u64::from(sector);
            let len = u64::from(e.sectors) * u64::from(sector);
            if off >= src.len() {
                return false;
            }
            let w = Window::new(src.clone(), off, len.min(src.len() - off), String::new());
            matches!(probe(&w), Ok(Probe::Known(_)))
        })
        .count()
}

/// List the partitions of an MBR-partitioned source.
pub(super) fn discover(src: &SharedSource) -> Discovery {
    let t512 = read_table(src, 512);
    let t4k = read_table(src, 4096);
    let (table, sector) = match (t512, t4k) {
        (Ok(a), Ok(b)) => {
            if score(src, &b, 4096) > score(src, &a, 512) {
                (b, 4096u32)
            } else {
                (a, 512)
            }
        }
        (Ok(a), Err(_)) => (a, 512),
        (Err(_), Ok(b)) => (b, 4096),
        (Err(e), Err(_)) => {
            return Discovery {
                scheme: "mbr",
                sector_size: 512,
                volumes: vec![],
                errors: vec![VolumeError::MbrUnreadable { reason: e }],
                warnings: vec![],
            };
        }
    };
    let mut errors: Vec<VolumeError> = table.error.into_iter().collect();
    let mut volumes = vec![];
    let ss = u64::from(sector);
    for (idx, e) in &table.entries {
        if !e.is_used() || e.is_extended() {
            continue;
        }
        let id = format!("p{idx}");
        if e.sectors == 0 {
            errors.push(VolumeError::PartitionEmpty { id, sys: e.sys });
            continue;
        }
        volumes.push(partition(
            src,
            id,
            u64::from(e.starting_lba) * ss,
            u64::from(e.sectors) * ss,
            None,
            Some(format!("{:#04x} ({})", e.sys, type_name(e.sys))),
            if e.sys == 0x41 {
                Role::PrepBoot
            } else {
                Role::Data
            },
        ));
    }
    Discovery {
        scheme: "mbr",
        sector_size: ss,
        volumes,
        errors,
        warnings: vec![],
    }
}

fn type_name(sys: u8) -> &'static str {
    match sys {
        0x83 => "Linux",
        0x82 => "Linux swap",
        0x8e => "Linux LVM",
        0xfd => "Linux RAID autodetect",
        0x07 => "HPFS/NTFS/exFAT",
        0x0b | 0x0c => "W95 FAT32",
        0x06 | 0x0e => "FAT16",
        0xef => "EFI system",
        0xee => "GPT protective",
        0x41 => "PowerPC PReP boot",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::tests::Mem;
    use std::sync::Arc;

    fn entry(buf: &mut [u8], i: usize, sys: u8, start: u32, sectors: u32) {
        let o = 446 + i * 16;
        buf[o + 4] = sys;
        buf[o + 8..o + 12].copy_from_slice(&start.to_le_bytes());
        buf[o + 12..o + 16].copy_from_slice(&sectors.to_le_bytes());
    }

    #[test]
    fn primaries_become_volumes_and_garbage_is_reported() {
        let mut img = vec![0u8; 2 << 20];
        img[510] = 0x55;
        img[511] = 0xAA;
        entry(&mut img, 0, 0x83, 2048, 100);
        entry(&mut img, 1, 0x5a, 0x7fff_0000, 0x1000);
        let src: SharedSource = Arc::new(Mem(img));
        let d = discover(&src);
        assert_eq!(d.volumes.len(), 2);
        assert_eq!(d.volumes[0].id, "p1");
        assert_eq!(d.volumes[0].offset, 2048 * 512);
        assert!(d.volumes[0].errors.is_empty());
        assert!(d.volumes[1].errors[0].to_string().contains("past the end"));
    }

    /// Found by the `partitions` fuzz target: an MBR whose only used entries start at LBA 0 made
    /// `mbrman` panic (an empty range in its alignment search).
    #[test]
    fn fuzz_crash_all_partitions_at_lba_zero_is_an_error_not_a_panic() {
        let mut img = vec![0u8; 1 << 20];
        img[510] = 0x55;
        img[511] = 0xAA;
        entry(&mut img, 0, 0x83, 0, 100);
        entry(&mut img, 2, 0x07, 0, 5);
        let src: SharedSource = Arc::new(Mem(img));
        let d = discover(&src);
        assert!(d.volumes.is_empty());
        assert!(
            d.errors[0].to_string().contains("sector 0"),
            "{:?}",
            d.errors
        );
    }

    #[test]
    fn a_self_referencing_ebr_chain_ends() {
        let mut img = vec![0u8; 1 << 20];
        img[510] = 0x55;
        img[511] = 0xAA;
        entry(&mut img, 0, 0x05, 100, 1000);
        // The EBR at sector 100 points to a next EBR at relative 0 via a link entry of itself.
        let ebr = 100 * 512;
        img[ebr + 510] = 0x55;
        img[ebr + 511] = 0xAA;
        let src: SharedSource = Arc::new(Mem(img));
        let d = discover(&src);
        // No panic, no hang; whatever the crate makes of it is reported.
        assert!(d.volumes.len() <= 2);
    }
}
