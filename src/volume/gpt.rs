//! GUID partition tables, read through the `gpt` crate.
//!
//! The backup header is optional: an AMI's volume is often larger than the image it was built
//! from, so the backup header is not at the end of the disk. A corrupt primary header falls back
//! to the backup one, and the fallback is noted.

use super::{Discovery, Role, VolumeError, partition};
use crate::source::{Cursor, SharedSource};
use gpt::disk::LogicalBlockSize;
use gpt::partition_types;

/// Entries beyond this are refused: the spec's minimum array is 128, real disks never exceed a few
/// hundred, and the count drives how much is read.
const MAX_ENTRIES: u32 = 4096;

fn header_sane(head: &[u8], off: usize) -> Result<bool, VolumeError> {
    let Some(h) = off.checked_add(92).and_then(|end| head.get(off..end)) else {
        return Ok(false);
    };
    if &h[..8] != b"EFI PART" {
        return Ok(false);
    }
    let num = u32::from_le_bytes([h[80], h[81], h[82], h[83]]);
    let size = u32::from_le_bytes([h[84], h[85], h[86], h[87]]);
    if size != 128 {
        return Err(VolumeError::GptHeader {
            offset: off as u64,
            problem: format!("partition entry size {size} is not supported (expected 128)"),
        });
    }
    if num > MAX_ENTRIES {
        return Err(VolumeError::GptHeader {
            offset: off as u64,
            problem: format!("{num} partition entries (more than {MAX_ENTRIES}): corrupt"),
        });
    }
    Ok(true)
}

/// Recognise a GPT in `head` (the first bytes of `src`) and list its partitions. `None` when the
/// source has no GPT at all (no signature at LBA 1 and no protective MBR).
pub(super) fn discover(src: &SharedSource, head: &[u8]) -> Option<Discovery> {
    let protective = super::mbr::is_protective(head);
    let mut errors = vec![];
    let mut warnings = vec![];
    let mut sizes = vec![];
    for (lb, off) in [
        (LogicalBlockSize::Lb512, 512usize),
        (LogicalBlockSize::Lb4096, 4096),
    ] {
        match header_sane(head, off) {
            Ok(true) => sizes.push(lb),
            Ok(false) => {}
            Err(e) => {
                errors.push(e);
                return Some(Discovery {
                    scheme: "gpt",
                    sector_size: off as u64,
                    volumes: vec![],
                    errors,
                    warnings,
                });
            }
        }
    }
    if sizes.is_empty() {
        if !protective {
            return None;
        }
        // Protective MBR but no primary header: try the backup at the end of the disk.
        warnings.push(VolumeError::GptPrimaryMissing);
        sizes = vec![LogicalBlockSize::Lb512, LogicalBlockSize::Lb4096];
    }

    let mut last_err = None;
    for lb in sizes {
        let cursor = Cursor::new(src.clone()).with_read_limit(64 * 1024);
        let disk = super::mbr::guarded("GPT", || {
            gpt::GptConfig::new()
                .writable(false)
                .logical_block_size(lb)
                .only_valid_headers(false)
                .open_from_device(cursor)
        });
        let disk = match disk {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                last_err = Some(e.to_string());
                continue;
            }
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        let sector: u64 = lb.into();
        if disk.primary_header().is_err() && warnings.is_empty() {
            warnings.push(VolumeError::GptPrimaryCorrupt);
        }
        let mut volumes = vec![];
        for (num, p) in disk.partitions() {
            if !p.is_used() {
                continue;
            }
            let id = format!("p{num}");
            let offset = p.first_lba.checked_mul(sector);
            let size = p
                .last_lba
                .checked_sub(p.first_lba)
                .and_then(|n| n.checked_add(1))
                .and_then(|n| n.checked_mul(sector));
            let (Some(offset), Some(size)) = (offset, size) else {
                errors.push(VolumeError::PartitionLbas {
                    id,
                    first_lba: p.first_lba,
                    last_lba: p.last_lba,
                });
                continue;
            };
            let role = if p.part_type_guid == partition_types::BIOS {
                Role::BiosBoot
            } else if p
                .part_type_guid
                .guid
                .as_hyphenated()
                .to_string()
                .eq_ignore_ascii_case(PREP_GUID)
            {
                Role::PrepBoot
            } else if verity_type(&p.part_type_guid).is_some() {
                Role::VerityHash
            } else {
                Role::Data
            };
            let name = (!p.name.is_empty()).then(|| p.name.clone());
            volumes.push(partition(
                src,
                id,
                offset,
                size,
                name,
                Some(type_name(&p.part_type_guid)),
                role,
            ));
        }
        return Some(Discovery {
            scheme: "gpt",
            sector_size: sector,
            volumes,
            errors,
            warnings,
        });
    }
    errors.push(VolumeError::GptUnreadable {
        reason: last_err.unwrap_or_else(|| "unknown error".into()),
    });
    Some(Discovery {
        scheme: "gpt",
        sector_size: 512,
        volumes: vec![],
        errors,
        warnings,
    })
}

/// Partition types of dm-verity hash partitions, lowercase, with their names: Bottlerocket's
/// (its build's `BOTTLEROCKET_HASH_TYPECODE`) and the root and /usr verity partitions of the
/// Discoverable Partitions Specification for the architectures AWS runs (x86-64, ARM64) and the
/// others sgdisk knows (x86, ARM32, IA-64). ChromeOS keeps its hash tree inside the root
/// partition (an ext2 filesystem, read as such), so it has no type of its own here.
const VERITY_TYPES: &[(&str, &str)] = &[
    (
        "598f10af-c955-4456-6a99-7720068a6cea",
        "Bottlerocket dm-verity hash",
    ),
    (
        "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
        "Linux root verity (x86-64)",
    ),
    (
        "df3300ce-d69f-4c92-978c-9bfb0f38d820",
        "Linux root verity (ARM64)",
    ),
    (
        "d13c5d3b-b5d1-422a-b29f-9454fdc89d76",
        "Linux root verity (x86)",
    ),
    (
        "7386cdf2-203c-47a9-a498-f2ecce45a2d6",
        "Linux root verity (ARM32)",
    ),
    (
        "86ed10d5-b607-45bb-8957-d350f23d0571",
        "Linux root verity (IA-64)",
    ),
    (
        "77ff5f63-e7b6-4633-acf4-1565b864c0e6",
        "Linux /usr verity (x86-64)",
    ),
    (
        "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e",
        "Linux /usr verity (ARM64)",
    ),
    (
        "8f461b0d-14ee-4e81-9aa9-049b6fb97abd",
        "Linux /usr verity (x86)",
    ),
    (
        "c215d751-7bcd-4649-be90-6627490a4c05",
        "Linux /usr verity (ARM32)",
    ),
    (
        "6a491e03-3be7-4545-8e38-83320e0ea880",
        "Linux /usr verity (IA-64)",
    ),
];

/// The GPT type of a PowerPC PReP boot partition (lower-case, hyphenated).
const PREP_GUID: &str = "9e1a2d38-c612-4316-aa26-8b49521e5a8b";

/// The name of a dm-verity hash partition type, `None` for any other type.
pub(crate) fn verity_type(t: &partition_types::Type) -> Option<&'static str> {
    let guid = t.guid.as_hyphenated().to_string().to_ascii_lowercase();
    VERITY_TYPES
        .iter()
        .find(|(g, _)| *g == guid)
        .map(|(_, name)| *name)
}

fn type_name(t: &partition_types::Type) -> String {
    let known = [
        (partition_types::BIOS, "BIOS boot"),
        (partition_types::EFI, "EFI system"),
        (partition_types::LINUX_FS, "Linux filesystem"),
        (partition_types::LINUX_LVM, "Linux LVM"),
        (partition_types::LINUX_SWAP, "Linux swap"),
        (partition_types::LINUX_RAID, "Linux RAID"),
        (partition_types::LINUX_HOME, "Linux /home"),
        (partition_types::LINUX_ROOT_X64, "Linux root (x86-64)"),
        (partition_types::LINUX_ROOT_ARM_64, "Linux root (ARM64)"),
        (partition_types::BASIC, "Microsoft basic data"),
    ];
    let guid = t.guid.as_hyphenated().to_string();
    match known.iter().find(|(k, _)| k == t) {
        Some((_, name)) => format!("{guid} ({name})"),
        None if guid.eq_ignore_ascii_case(PREP_GUID) => format!("{guid} (PowerPC PReP boot)"),
        None => match verity_type(t) {
            Some(name) => format!("{guid} ({name})"),
            None => guid,
        },
    }
}
