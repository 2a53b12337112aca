//! Turn one source into the volumes inside it: GPT and MBR partitions (with extended and logical
//! partitions), or the whole source when it holds a bare filesystem.
//!
//! Every partition becomes a [`Volume`]; none is dropped for its name or type. Problems with the
//! partition table itself are returned as [`Discovery::errors`] and make the scan incomplete.

mod error;
mod gpt;
pub mod lvm;
mod mbr;

pub use error::VolumeError;

use crate::fs::probe::{Probe, probe_bytes};
use crate::source::{SharedSource, Window};
use std::sync::Arc;

/// A volume: a window onto the source that should hold one filesystem.
pub struct Volume {
    /// Short id used in findings: `p1`, `p5`, or `disk` for a bare filesystem.
    pub id: String,
    /// Byte offset inside the source.
    pub offset: u64,
    /// Size in bytes (as the partition table says; may extend past a truncated image).
    pub size: u64,
    /// GPT partition name.
    pub partition_name: Option<String>,
    /// Partition type, human readable.
    pub partition_type: Option<String>,
    /// What the partition type says about content, when it says something decisive.
    pub role: Role,
    /// Problems found while laying out this volume (it extends past the image end, ...).
    pub errors: Vec<VolumeError>,
    /// The bytes of the volume.
    pub source: SharedSource,
}

/// What the partition type promises about a volume's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An ordinary data partition: probe it.
    Data,
    /// A BIOS boot partition: raw boot-loader code, no files.
    BiosBoot,
    /// A PowerPC PReP boot partition (MBR type 0x41, or its GPT type): boot-loader code, no
    /// files.
    PrepBoot,
    /// A dm-verity hash partition (Bottlerocket's, or a root/usr verity partition of the
    /// Discoverable Partitions Specification): the hash tree of another partition, no files.
    VerityHash,
}

/// The volumes of one source, and the problems with its partition table.
pub struct Discovery {
    /// How the source is laid out: `gpt`, `mbr`, `none` (bare filesystem).
    pub scheme: &'static str,
    /// Logical sector size used to read the table.
    pub sector_size: u64,
    /// The volumes, in table order.
    pub volumes: Vec<Volume>,
    /// Problems with the table itself. Any makes the scan incomplete.
    pub errors: Vec<VolumeError>,
    /// Problems that were worked around without losing data (a corrupt primary GPT header whose
    /// backup was used). Reported, but the scan stays complete.
    pub warnings: Vec<VolumeError>,
}

/// Bytes read at the start of a source to recognise its layout.
const HEAD_LEN: usize = 64 * 1024 + 4096;

/// Find the volumes in `src`. Never fails: what cannot be read becomes an error in the result.
pub fn discover(src: SharedSource) -> Discovery {
    let head_len = usize::try_from(src.len())
        .unwrap_or(usize::MAX)
        .min(HEAD_LEN);
    let mut head = vec![0u8; head_len];
    if let Err(e) = src.read_at(0, &mut head) {
        return Discovery {
            scheme: "unknown",
            sector_size: 512,
            volumes: vec![],
            errors: vec![VolumeError::ReadHead {
                reason: e.to_string(),
            }],
            warnings: vec![],
        };
    }

    // A filesystem at byte 0 means no partition table (a bare filesystem image, or an EBS volume
    // formatted whole). Checked first: a FAT boot sector also carries the MBR signature.
    if let Probe::Known(_) = probe_bytes(&head) {
        return Discovery {
            scheme: "none",
            sector_size: 512,
            volumes: vec![whole(&src)],
            errors: vec![],
            warnings: vec![],
        };
    }

    if let Some(found) = gpt::discover(&src, &head) {
        return found;
    }
    if mbr::has_signature(&head) {
        return mbr::discover(&src);
    }
    let mut d = Discovery {
        scheme: "none",
        sector_size: 512,
        volumes: vec![whole(&src)],
        errors: vec![],
        warnings: vec![],
    };
    if head.iter().all(|&b| b == 0) {
        d.scheme = "empty";
    }
    d
}

fn whole(src: &SharedSource) -> Volume {
    Volume {
        id: "disk".into(),
        offset: 0,
        size: src.len(),
        partition_name: None,
        partition_type: None,
        role: Role::Data,
        errors: vec![],
        source: src.clone(),
    }
}

/// Build a partition volume, noting when it does not fit in the image.
pub(crate) fn partition(
    src: &SharedSource,
    id: String,
    offset: u64,
    size: u64,
    name: Option<String>,
    ptype: Option<String>,
    role: Role,
) -> Volume {
    let mut errors = vec![];
    let image_len = src.len();
    let end = offset.checked_add(size);
    if offset >= image_len {
        errors.push(VolumeError::PartitionPastEnd {
            id: id.clone(),
            offset,
            image_len,
        });
    } else if end.is_none_or(|e| e > image_len) {
        errors.push(VolumeError::PartitionTruncated {
            id: id.clone(),
            end,
            image_len,
        });
    }
    let name_for_errors = format!("{} {id}", src.describe());
    Volume {
        source: Arc::new(Window::new(src.clone(), offset, size, name_for_errors)),
        id,
        offset,
        size,
        partition_name: name,
        partition_type: ptype,
        role,
        errors,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use crate::source::tests::Mem;

    #[test]
    fn a_bare_filesystem_is_one_volume() {
        let mut img = vec![0u8; 1 << 20];
        img[1080] = 0x53;
        img[1081] = 0xEF;
        let d = discover(Arc::new(Mem(img)));
        assert_eq!(d.scheme, "none");
        assert_eq!(d.volumes.len(), 1);
        assert_eq!(d.volumes[0].id, "disk");
    }

    #[test]
    fn an_empty_image_is_one_volume_to_probe() {
        let d = discover(Arc::new(Mem(vec![0u8; 4096])));
        assert_eq!(d.scheme, "empty");
        assert_eq!(d.volumes.len(), 1);
    }

    #[test]
    fn a_tiny_image_does_not_panic() {
        for n in [0usize, 1, 100, 511, 512, 1024] {
            let _ = discover(Arc::new(Mem(vec![0x55; n])));
        }
    }

    #[test]
    fn a_partition_past_the_end_is_an_error() {
        let src: SharedSource = Arc::new(Mem(vec![0u8; 1000]));
        let v = partition(&src, "p2".into(), 2000, 10, None, None, Role::Data);
        assert!(
            v.errors[0].to_string().contains("past the end"),
            "{:?}",
            v.errors
        );
        let v = partition(&src, "p3".into(), 500, 1000, None, None, Role::Data);
        assert!(
            v.errors[0].to_string().contains("truncated"),
            "{:?}",
            v.errors
        );
    }
}
