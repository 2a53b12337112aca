//! Logical → physical mapping: the chunks of the `sys_chunk_array` and of the chunk tree.
//! A logical address is read from the copies of its chunk on the devices at hand, each a
//! (devid, physical offset): one for `single`, two for `DUP`, one per device for
//! `RAID1`/`RAID1C3`/`RAID1C4`. Striped profiles (`RAID0`, `RAID10`, `RAID5`, `RAID6`) and
//! chunks whose every copy is on a missing device are refused with a named error on what they
//! hold, never guessed.

use super::{Key, corrupt, incompatible, le16, le64};
use crate::fs::FsError;

/// Most chunks accepted (a 64 TiB volume in 1 GiB chunks is 65,536).
const MAX_CHUNKS: usize = 1 << 20;

const RAID0: u64 = 1 << 3;
const RAID1: u64 = 1 << 4;
const DUP: u64 = 1 << 5;
const RAID10: u64 = 1 << 6;
const RAID5: u64 = 1 << 7;
const RAID6: u64 = 1 << 8;
const RAID1C3: u64 = 1 << 9;
const RAID1C4: u64 = 1 << 10;

/// One chunk: `length` bytes from logical `logical`, and where its copies start.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub logical: u64,
    pub length: u64,
    /// (devid, physical start) of the copies on the devices at hand (empty: none, see
    /// `problem`).
    pub copies: Vec<(u64, u64)>,
    /// Why the chunk cannot be read from this device, when it cannot.
    pub problem: Option<String>,
}

/// The chunks of a volume, sorted by logical address, not overlapping.
#[derive(Clone, Debug, Default)]
pub struct ChunkMap {
    chunks: Vec<Chunk>,
}

/// The profile's name, for messages.
fn profile(ty: u64) -> &'static str {
    match ty & (RAID0 | RAID1 | DUP | RAID10 | RAID5 | RAID6 | RAID1C3 | RAID1C4) {
        0 => "single",
        RAID0 => "RAID0",
        RAID1 => "RAID1",
        DUP => "DUP",
        RAID10 => "RAID10",
        RAID5 => "RAID5",
        RAID6 => "RAID6",
        RAID1C3 => "RAID1C3",
        RAID1C4 => "RAID1C4",
        _ => "mixed",
    }
}

/// Parse one chunk item (key offset = logical start), given which devices are at hand.
pub fn parse_chunk(key: &Key, b: &[u8], present: &dyn Fn(u64) -> bool) -> Result<Chunk, FsError> {
    let ctx = || format!("btrfs chunk at logical {}", key.offset);
    let length = le64(b, 0).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    let ty = le64(b, 24).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    let num = le16(b, 44).ok_or_else(|| corrupt(ctx(), "truncated"))?;
    if length == 0 || key.offset.checked_add(length).is_none() || num == 0 {
        return Err(corrupt(ctx(), format!("length {length}, {num} stripes")));
    }
    let mut here = Vec::new();
    let mut away = Vec::new();
    for i in 0..usize::from(num) {
        let at = 48usize.saturating_add(i.saturating_mul(32));
        let (Some(dev), Some(off)) = (le64(b, at), le64(b, at.saturating_add(8))) else {
            return Err(corrupt(ctx(), "truncated stripe list"));
        };
        if present(dev) {
            here.push((dev, off));
        } else if !away.contains(&dev) {
            away.push(dev);
        }
    }
    let name = profile(ty);
    let problem = if ty & (RAID0 | RAID10 | RAID5 | RAID6) != 0 && num > 1 {
        Some(format!(
            "{name} chunk (striped over {num} stripes): striped profiles are not read"
        ))
    } else if here.is_empty() {
        let ids: Vec<String> = away.iter().map(u64::to_string).collect();
        Some(format!(
            "{name} chunk is only on device(s) with devid {}, which the target does not hold",
            ids.join(", ")
        ))
    } else {
        None
    };
    if problem.is_some() {
        here.clear();
    }
    Ok(Chunk {
        logical: key.offset,
        length,
        copies: here,
        problem,
    })
}

impl ChunkMap {
    /// Add a chunk; an exact duplicate (a system chunk also in the chunk tree) is ignored, an
    /// overlapping one is corrupt.
    pub fn insert(&mut self, c: Chunk) -> Result<(), FsError> {
        let pos = self.chunks.partition_point(|x| x.logical < c.logical);
        if let Some(x) = self.chunks.get(pos)
            && x.logical == c.logical
            && x.length == c.length
        {
            return Ok(());
        }
        let end = c.logical.saturating_add(c.length);
        let overlaps_prev = pos
            .checked_sub(1)
            .and_then(|p| self.chunks.get(p))
            .is_some_and(|p| p.logical.saturating_add(p.length) > c.logical);
        let overlaps_next = self.chunks.get(pos).is_some_and(|n| n.logical < end);
        if overlaps_prev || overlaps_next {
            return Err(corrupt(
                format!("btrfs chunk at logical {}", c.logical),
                "overlaps another chunk",
            ));
        }
        if self.chunks.len() >= MAX_CHUNKS {
            return Err(corrupt(
                "btrfs chunk tree",
                "more chunks than amiscan reads",
            ));
        }
        self.chunks.insert(pos, c);
        Ok(())
    }

    /// The physical copies of `len` bytes at `logical` (all inside one chunk), and how many
    /// bytes from `logical` that chunk still covers.
    pub fn map(&self, logical: u64, len: u64) -> Result<(Vec<(u64, u64)>, u64), FsError> {
        let ctx = || format!("btrfs logical address {logical}");
        let pos = self.chunks.partition_point(|x| x.logical <= logical);
        let c = pos
            .checked_sub(1)
            .and_then(|p| self.chunks.get(p))
            .filter(|c| logical - c.logical < c.length)
            .ok_or_else(|| corrupt(ctx(), "is in no chunk"))?;
        if let Some(p) = &c.problem {
            return Err(incompatible(ctx(), p.clone()));
        }
        let within = logical - c.logical;
        let left = c.length - within;
        let _ = len;
        Ok((
            c.copies
                .iter()
                .map(|&(dev, s)| (dev, s.saturating_add(within)))
                .collect(),
            left,
        ))
    }

    /// How many chunks cannot be read from the devices at hand, and why (the first reason).
    pub fn unreadable(&self) -> (usize, Option<&str>) {
        let mut n = 0;
        let mut first = None;
        for c in &self.chunks {
            if let Some(p) = &c.problem {
                n += 1;
                first.get_or_insert(p.as_str());
            }
        }
        (n, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(len: u64, ty: u64, stripes: &[(u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0..8].copy_from_slice(&len.to_le_bytes());
        b[24..32].copy_from_slice(&ty.to_le_bytes());
        b[44..46].copy_from_slice(&(stripes.len() as u16).to_le_bytes());
        for (dev, off) in stripes {
            let mut s = vec![0u8; 32];
            s[0..8].copy_from_slice(&dev.to_le_bytes());
            s[8..16].copy_from_slice(&off.to_le_bytes());
            b.extend(s);
        }
        b
    }

    fn key(off: u64) -> Key {
        Key {
            objectid: 256,
            ty: super::super::CHUNK_ITEM_KEY,
            offset: off,
        }
    }

    #[test]
    fn dup_gives_two_copies_and_striped_profiles_are_named() {
        let mut m = ChunkMap::default();
        m.insert(
            parse_chunk(
                &key(1 << 20),
                &item(1 << 20, 4 | DUP, &[(1, 100), (1, 5000)]),
                &|d| d == 1,
            )
            .unwrap(),
        )
        .unwrap();
        m.insert(
            parse_chunk(
                &key(4 << 20),
                &item(1 << 20, 1 | RAID0, &[(1, 0), (2, 0)]),
                &|d| d == 1,
            )
            .unwrap(),
        )
        .unwrap();
        let (copies, left) = m.map((1 << 20) + 10, 1).unwrap();
        assert_eq!(copies, vec![(1, 110), (1, 5010)]);
        assert_eq!(left, (1 << 20) - 10);
        let e = m.map(4 << 20, 1).unwrap_err();
        assert!(e.to_string().contains("RAID0"), "{e}");
        assert!(
            m.map(3 << 20, 1)
                .unwrap_err()
                .to_string()
                .contains("no chunk")
        );
    }

    #[test]
    fn overlapping_chunks_are_corrupt() {
        let mut m = ChunkMap::default();
        let one = |d: u64| d == 1;
        m.insert(parse_chunk(&key(0), &item(100, 1, &[(1, 0)]), &one).unwrap())
            .unwrap();
        assert!(
            m.insert(parse_chunk(&key(50), &item(100, 1, &[(1, 0)]), &one).unwrap())
                .is_err()
        );
        let other = parse_chunk(&key(500), &item(100, 1, &[(2, 0)]), &one).unwrap();
        assert!(other.problem.unwrap().contains("devid 2,"));
        // RAID1 across two devices: both copies when both are at hand, in stripe order.
        let both = parse_chunk(
            &key(1000),
            &item(100, 1 | RAID1, &[(2, 70), (1, 30)]),
            &|d| d <= 2,
        )
        .unwrap();
        assert_eq!(both.copies, vec![(2, 70), (1, 30)]);
        assert!(both.problem.is_none());
    }
}
