//! Data checksums: every sector of a regular or compressed extent of a file with checksums
//! (no `NODATASUM` flag) is checked against its `EXTENT_CSUM` item (the checksum tree, key
//! `EXTENT_CSUM` -10, `EXTENT_CSUM`, logical address; one checksum per sector) before a byte of
//! it is given to the scan — on the bytes as stored, so a compressed extent is checked before it
//! is decompressed. A sector that fails is read from the chunk's other copies (`DUP`,
//! `RAID1`, `RAID1C3/4`), the first that passes is used and a warning says so; when none
//! passes the read is an error naming the logical address, never the damaged bytes.
//!
//! Bounded: a reader keeps the checksums of one window of logical addresses (the extent it
//! is in, at most [`WINDOW`] of it), found with one descent to the item that starts at or
//! before the window and one range query for items starting inside it, so reading a file costs
//! a lookup per window, not per sector or per read. A sector with no checksum item (a
//! checksum leaf that could not be read, or missing) is read unverified and counted; the
//! volume's warnings say how many.

use super::csum::sector_matches;
use super::tree::Trees;
use super::{Key, corrupt};
use crate::fs::FsError;

/// `BTRFS_EXTENT_CSUM_OBJECTID` (-10) and `BTRFS_EXTENT_CSUM_KEY`.
pub const EXTENT_CSUM_OBJECTID: u64 = u64::MAX - 9;
pub const EXTENT_CSUM_KEY: u8 = 128;
/// The checksum tree's id in the root tree.
pub const CSUM_TREE: u64 = 7;
/// Most logical bytes whose checksums one window holds beyond what a read needs.
pub const WINDOW: u64 = 4 << 20;

/// The checksums of the sectors of `start..end` (logical, sector aligned) from the trees
/// `roots` (searched in order: a log tree's own checksums before the checksum tree's).
pub struct Sums {
    roots: Vec<(u64, u8)>,
    start: u64,
    end: u64,
    /// `size` bytes per sector.
    sums: Vec<u8>,
    have: Vec<bool>,
}

impl Sums {
    /// No window yet; checksums come from the trees `roots` (root block, level).
    pub fn new(roots: Vec<(u64, u8)>) -> Sums {
        Sums {
            roots,
            start: 0,
            end: 0,
            sums: Vec::new(),
            have: Vec::new(),
        }
    }

    /// Whether the window holds `a..e`.
    pub fn covers(&self, a: u64, e: u64) -> bool {
        a >= self.start && e <= self.end
    }

    /// The checksum of the sector at logical `at`, when the trees have one.
    fn get(&self, trees: &Trees, at: u64) -> Option<&[u8]> {
        let ss = u64::from(trees.sb.sectorsize);
        let size = trees.sb.csum.size();
        if at < self.start || at >= self.end {
            return None;
        }
        let i = usize::try_from((at - self.start) / ss).ok()?;
        if !*self.have.get(i)? {
            return None;
        }
        self.sums
            .get(i.checked_mul(size)?..i.checked_add(1)?.checked_mul(size)?)
    }

    /// Load the checksums of `start..end` (sector aligned); the errors of checksum leaves that
    /// could not be read (their sectors stay without checksum).
    pub fn load(&mut self, trees: &Trees, start: u64, end: u64) -> Vec<FsError> {
        let ss = u64::from(trees.sb.sectorsize);
        let size = trees.sb.csum.size();
        let count = usize::try_from(end.saturating_sub(start) / ss).unwrap_or(0);
        self.start = start;
        self.end = start.saturating_add(count as u64 * ss);
        self.sums = vec![0; count.saturating_mul(size)];
        self.have = vec![false; count];
        let mut errors = Vec::new();
        let key = |off: u64| Key::new(EXTENT_CSUM_OBJECTID, EXTENT_CSUM_KEY, off);
        for &(root, level) in &self.roots.clone() {
            // The item that starts at or before the window, which may cover its start.
            match trees.last_at_or_before(root, level, key(start)) {
                Ok(Some((k, data)))
                    if k.objectid == EXTENT_CSUM_OBJECTID && k.ty == EXTENT_CSUM_KEY =>
                {
                    self.fill(ss, size, k.offset, &data);
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
            if self.have.iter().all(|h| *h) || count < 2 {
                continue;
            }
            // Items that start inside the window: at most one per sector.
            match trees.range(
                root,
                level,
                key(start.saturating_add(1)),
                key(self.end.saturating_sub(1)),
                count,
            ) {
                Ok(found) => {
                    for (k, data) in &found.items {
                        self.fill(ss, size, k.offset, data);
                    }
                    errors.extend(found.errors);
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Take the checksums of item (`item_start`, `data`) that fall in the window, where no
    /// earlier tree gave one.
    fn fill(&mut self, ss: u64, size: usize, item_start: u64, data: &[u8]) {
        let n = data.len() / size;
        let (first_item, first_win) = if item_start < self.start {
            let d = self.start - item_start;
            if !d.is_multiple_of(ss) {
                return;
            }
            (usize::try_from(d / ss).unwrap_or(usize::MAX), 0usize)
        } else {
            let d = item_start - self.start;
            if !d.is_multiple_of(ss) {
                return;
            }
            (0usize, usize::try_from(d / ss).unwrap_or(usize::MAX))
        };
        let mut i = first_item;
        let mut j = first_win;
        while i < n && j < self.have.len() {
            if !self.have[j]
                && let (Some(src), Some(dst)) = (
                    data.get(i * size..(i + 1) * size),
                    self.sums.get_mut(j * size..(j + 1) * size),
                )
            {
                dst.copy_from_slice(src);
                self.have[j] = true;
            }
            i += 1;
            j += 1;
        }
    }
}

/// Read `buf.len()` bytes at logical `logical` (sector aligned, inside one chunk), every sector
/// checked against `sums`: a sector that fails on the copy read is taken from the first other
/// copy that passes (with a warning); when none passes, an error naming its logical address.
pub fn read_verified(
    trees: &Trees,
    logical: u64,
    buf: &mut [u8],
    sums: &Sums,
) -> Result<(), FsError> {
    let (copies, left) = trees.chunks.map(logical, buf.len() as u64)?;
    if (buf.len() as u64) > left {
        return Err(corrupt(
            format!("btrfs logical address {logical}"),
            format!("{} bytes run past the end of their chunk", buf.len()),
        ));
    }
    let mut used = None;
    let mut last = None;
    for (i, &(dev, phys)) in copies.iter().enumerate() {
        match trees.device(dev)?.read_at(phys, buf) {
            Ok(()) => {
                used = Some(i);
                break;
            }
            Err(e) => last = Some(super::io(&format!("btrfs data (devid {dev})"), phys, e)),
        }
    }
    let Some(used) = used else {
        return Err(last.unwrap_or_else(|| {
            corrupt(
                format!("btrfs logical address {logical}"),
                "chunk has no copy",
            )
        }));
    };
    let csum = trees.sb.csum;
    let ss = trees.sb.sectorsize as usize;
    let (udev, uphys) = copies[used];
    let mut unsummed = 0u64;
    let mut repaired: Option<(u64, u64, usize)> = None;
    for (k, sector) in buf.chunks_mut(ss).enumerate() {
        let off = (k as u64).saturating_mul(ss as u64);
        let at = logical.saturating_add(off);
        let Some(want) = sums.get(trees, at) else {
            unsummed += 1;
            continue;
        };
        if sector_matches(csum, sector, want) != Some(false) {
            continue;
        }
        let mut good = None;
        for (i, &(dev, phys)) in copies.iter().enumerate() {
            if i == used {
                continue;
            }
            let mut alt = vec![0u8; sector.len()];
            let ok = trees
                .device(dev)
                .is_ok_and(|d| d.read_at(phys.saturating_add(off), &mut alt).is_ok());
            if ok && sector_matches(csum, &alt, want) == Some(true) {
                good = Some((i, alt));
                break;
            }
        }
        match good {
            Some((i, alt)) => {
                sector.copy_from_slice(&alt);
                let r = repaired.get_or_insert((at, at, i));
                r.1 = at;
            }
            None => {
                return Err(corrupt(
                    format!("btrfs data at logical {at}"),
                    if copies.len() == 1 {
                        format!(
                            "{} checksum mismatch (its only copy): not read",
                            csum.name()
                        )
                    } else {
                        format!(
                            "{} checksum mismatch, and no other of its {} copies passes: not read",
                            csum.name(),
                            copies.len()
                        )
                    },
                )
                .with_offset(uphys.saturating_add(off)));
            }
        }
    }
    if unsummed > 0 {
        trees.count_unsummed(unsummed);
    }
    if let Some((first, lastat, i)) = repaired {
        trees.warn(format!(
            "btrfs data at logical {first}..={lastat}: {} checksum mismatch on copy {} (devid {udev}, physical {uphys}); read from copy {} instead",
            csum.name(),
            used + 1,
            i + 1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_fill_only_their_aligned_sectors_and_the_first_tree_wins() {
        let mut s = Sums::new(Vec::new());
        s.start = 8192;
        s.end = 8192 + 4 * 4096;
        s.sums = vec![0; 16];
        s.have = vec![false; 4];
        // Starts one sector before the window: its second checksum is the window's first.
        s.fill(4096, 4, 4096, &[1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
        assert_eq!(s.have, vec![true, true, false, false]);
        assert_eq!(&s.sums[..8], &[2, 2, 2, 2, 3, 3, 3, 3]);
        // Misaligned items are not used; a later tree does not replace a checksum.
        s.fill(4096, 4, 8192 + 100, &[9; 16]);
        s.fill(4096, 4, 8192 + 4096, &[7; 16]);
        assert_eq!(s.have, vec![true, true, true, true]);
        assert_eq!(&s.sums[4..], &[3, 3, 3, 3, 7, 7, 7, 7, 7, 7, 7, 7]);
        // An item past the window, or one shorter than a checksum, fills nothing.
        let mut t = Sums::new(Vec::new());
        t.start = 0;
        t.end = 4096;
        t.sums = vec![0; 4];
        t.have = vec![false];
        t.fill(4096, 4, 4096, &[5; 4]);
        t.fill(4096, 4, 0, &[5; 3]);
        assert_eq!(t.have, vec![false]);
    }
}
