//! The devices of a btrfs filesystem among a target's volumes (an AMI with two EBS volumes, a
//! disk with two partitions): each volume whose superblock says it is one device of a
//! filesystem of several is grouped with the others of the same fsid. The filesystem is read
//! once, from the volume with the lowest devid, with the others attached
//! ([`super::BtrfsFs::open_devices`]); the others are reported as members read through it.
//! Which devices are missing is the filesystem's to say when it opens (it knows its devids).

use crate::source::Source;
use std::collections::BTreeMap;

/// One filesystem of several devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The filesystem's UUID, as `blkid` shows it.
    pub fsid: String,
    /// The index of the volume read as the filesystem (the lowest devid found).
    pub primary: usize,
    /// The indexes of its other devices, by devid, with their devid.
    pub others: Vec<(usize, u64)>,
    /// The primary's devid.
    pub devid: u64,
}

/// Group `volumes` (their sources, by index) by btrfs filesystem: only filesystems whose
/// superblock says they have more than one device. A volume whose superblock cannot be read
/// is left alone (its own scan says why); of two volumes with the same fsid and devid (a copy
/// of a disk) the first is used and the second is read on its own.
pub fn group(volumes: &[&dyn Source]) -> Vec<Group> {
    let mut by_fsid: BTreeMap<[u8; 16], BTreeMap<u64, usize>> = BTreeMap::new();
    for (i, src) in volumes.iter().enumerate() {
        let mut head = [0u8; 8];
        // The magic first, so a volume that is not btrfs costs one small read.
        if src.read_at(0x10040, &mut head).is_err() || &head != b"_BHRfS_M" {
            continue;
        }
        let Ok((sb, _)) = super::superblock::read(*src) else {
            continue;
        };
        if sb.num_devices < 2 {
            continue;
        }
        by_fsid
            .entry(sb.fsid)
            .or_default()
            .entry(sb.devid)
            .or_insert(i);
    }
    by_fsid
        .into_iter()
        .filter(|(_, devs)| devs.len() > 1)
        .filter_map(|(fsid, devs)| {
            let mut it = devs.into_iter();
            let (devid, primary) = it.next()?;
            Some(Group {
                fsid: uuid(&fsid),
                primary,
                others: it.map(|(d, i)| (i, d)).collect(),
                devid,
            })
        })
        .collect()
}

/// A UUID in its usual text form.
fn uuid(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
