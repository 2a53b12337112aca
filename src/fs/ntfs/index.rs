//! A directory whose `$I30` `$INDEX_ALLOCATION` is spread over an `$ATTRIBUTE_LIST`: a big
//! directory grown a block at a time between other files' data (ntfs-3g, Windows) has a run
//! list that outgrows its record, and its tail moves into `$INDEX_ALLOCATION` extents in
//! extension records. The `ntfs` crate reads such an allocation up to its first extent only
//! ("VCN … exceeds the boundaries"), so the directory is listed here instead.
//!
//! No tree walk: every real entry of the index is in exactly one node, so the entries of
//! `$INDEX_ROOT` and of every in-use `INDX` block of the allocation (the index's `$BITMAP`
//! `$I30` says which) are all of them. The allocation's run list is assembled from its extents
//! by [`super::extents`]; each block is read through it, its `INDX` signature checked, its
//! update sequence applied and its VCN checked against its place.
//!
//! Bounded against a hostile index: at most [`MAX_BLOCKS`] blocks, every entry at least 16
//! bytes long and within its node, every node ending with its last entry, every key within
//! its entry. Anything else is an error on the directory (the scan is incomplete).

use super::MAX_RUNS;
use super::extents::{Spread, spread};
use super::record::{fixup, u16_at, u32_at, u64_at};
use super::table::Named;
use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::{NtfsAttributeType, NtfsError, NtfsFile, NtfsReadSeek};
use std::io::{self, Read, Seek, SeekFrom};

/// Most index blocks of one directory (4 GiB of 4 KiB blocks).
const MAX_BLOCKS: u64 = 1 << 20;
/// The update sequence stride.
const SECTOR: usize = 512;

/// An error on the directory: its message.
fn bad(msg: String) -> NtfsError {
    NtfsError::Io(io::Error::other(msg))
}

/// The `$I30` allocation of `dir`, assembled from the extents its attribute list names, when
/// it has one (`Ok(None)`: the crate reads the directory itself).
pub(super) fn spread_allocation<T: Read + Seek>(
    dir: &NtfsFile<'_>,
    c: &mut T,
) -> Result<Option<Spread>, NtfsError> {
    match spread(dir, c, NtfsAttributeType::IndexAllocation, "$I30", MAX_RUNS)? {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(why)) => Err(bad(format!("its $I30 index allocation: {why}"))),
    }
}

/// Every entry of `dir`'s `$I30` index whose allocation is `alloc`, as `(file record, key)`,
/// DOS names left out, handed to `push` in node order.
pub(super) fn entries<T: Read + Seek>(
    dir: &NtfsFile<'_>,
    c: &mut T,
    alloc: &Spread,
    push: &mut dyn FnMut(u64, Named) -> Result<(), NtfsError>,
) -> Result<(), NtfsError> {
    let root = value(dir, c, NtfsAttributeType::IndexRoot, 1 << 16)?
        .ok_or_else(|| bad("it has no $I30 index root".into()))?;
    let block = usize::try_from(u32_at(&root, 0x08).unwrap_or(0)).unwrap_or(0);
    if !(SECTOR..=1 << 16).contains(&block) || !block.is_power_of_two() {
        return Err(bad(format!(
            "its index root gives index blocks of {block} bytes"
        )));
    }
    node(&root, 0x10, "its index root", push)?;

    if alloc.flags & 0x4001 != 0 {
        return Err(bad(
            "its $I30 index allocation is compressed or encrypted".into()
        ));
    }
    let blocks = alloc.len / block as u64;
    if blocks > MAX_BLOCKS {
        return Err(bad(format!(
            "its index allocation has {blocks} blocks, more than {MAX_BLOCKS}"
        )));
    }
    let bitmap = bitmap(dir, c, blocks.div_ceil(8))?;
    let cluster = u64::from(dir.ntfs().cluster_size()).max(1);
    // VCNs count clusters, or 512-byte units when a block is smaller than a cluster.
    let unit = if block as u64 >= cluster {
        cluster
    } else {
        SECTOR as u64
    };
    let mut buf = vec![0u8; block];
    for i in 0..blocks {
        let used = bitmap
            .get(usize::try_from(i / 8).unwrap_or(usize::MAX))
            .is_some_and(|b| b >> (i % 8) & 1 != 0);
        if !used {
            continue;
        }
        let at = i * block as u64;
        read_at(c, &alloc.runs, cluster, at, &mut buf)?;
        let vcn = at / unit;
        let what = format!("its index block at VCN {vcn}");
        fixup(&mut buf, b"INDX").map_err(|why| bad(format!("{what}: {why}")))?;
        if u64_at(&buf, 0x10) != Some(vcn) {
            return Err(bad(format!(
                "{what} says it is at VCN {}",
                u64_at(&buf, 0x10).unwrap_or(0)
            )));
        }
        node(&buf, 0x18, &what, push)?;
    }
    Ok(())
}

/// The entries of the node whose index header is at `head` of `b`.
fn node(
    b: &[u8],
    head: usize,
    what: &str,
    push: &mut dyn FnMut(u64, Named) -> Result<(), NtfsError>,
) -> Result<(), NtfsError> {
    let cut = || bad(format!("{what}: its index header is cut"));
    let first = usize::try_from(u32_at(b, head).ok_or_else(cut)?).unwrap_or(usize::MAX);
    let size = usize::try_from(u32_at(b, head + 4).ok_or_else(cut)?).unwrap_or(usize::MAX);
    let mut pos = head.saturating_add(first);
    let end = head.saturating_add(size);
    if end > b.len() || pos > end {
        return Err(bad(format!(
            "{what}: its entries ({first}..{size} of its header) lie outside it"
        )));
    }
    loop {
        let entry = b
            .get(pos..end)
            .filter(|e| e.len() >= 16)
            .ok_or_else(|| bad(format!("{what}: its entries end without a last entry")))?;
        let len = usize::from(u16_at(entry, 8).unwrap_or(0));
        let key_len = usize::from(u16_at(entry, 10).unwrap_or(0));
        let flags = u32_at(entry, 12).unwrap_or(0);
        if len < 16 || len > entry.len() {
            return Err(bad(format!(
                "{what}: the entry at {pos} has length {len} ({} bytes left)",
                entry.len()
            )));
        }
        if flags & 2 != 0 {
            return Ok(());
        }
        if key_len > 0 {
            let key = entry
                .get(16..16usize.saturating_add(key_len))
                .filter(|_| 16 + key_len <= len)
                .ok_or_else(|| bad(format!("{what}: the key at {pos} overruns its entry")))?;
            let child = u64_at(entry, 0).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
            if let Some(named) = name_of(key, child) {
                push(child, named)?;
            } else if key.get(0x41) != Some(&2) {
                return Err(bad(format!(
                    "{what}: the file name key at {pos} is malformed"
                )));
            }
        }
        pos += len;
    }
}

/// The entry for record `child` of the `$FILE_NAME` key `k`; `None` for a DOS name or a key
/// too short for its name.
fn name_of(k: &[u8], child: u64) -> Option<Named> {
    let n = usize::from(*k.get(0x40)?);
    if *k.get(0x41)? == 2 {
        return None;
    }
    let units: Vec<u16> = k
        .get(0x42..0x42 + 2 * n)?
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    let attrs = u32_at(k, 0x38)?;
    Some(Named {
        name: String::from_utf16_lossy(&units),
        rec: child,
        dir: attrs & 0x1000_0000 != 0,
        reparse: attrs & 0x400 != 0,
        read_only: attrs & 1 != 0,
        mtime: super::unix_time(u64_at(k, 0x10)?),
    })
}

/// Read `buf.len()` bytes at `at` of the stream whose runs are `runs`.
fn read_at<T: Read + Seek>(
    c: &mut T,
    runs: &[(u64, u64, Option<u64>)],
    cluster: u64,
    mut at: u64,
    buf: &mut [u8],
) -> Result<(), NtfsError> {
    let mut done = 0usize;
    while done < buf.len() {
        let vcn = at / cluster;
        let i = runs.partition_point(|r| r.0.saturating_add(r.1) <= vcn);
        let Some(&(first, n, pos)) = runs.get(i).filter(|r| r.0 <= vcn) else {
            return Err(bad(format!("its index allocation does not map byte {at}")));
        };
        // `first` is at most `at / cluster`, so its byte position does not overflow; a run's
        // length in bytes may (a hostile one of 2^52 clusters), and then reaches past any
        // read.
        let into = at - first * cluster;
        let left = n.saturating_mul(cluster).saturating_sub(into);
        let take = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.len() - done);
        // A step that reads nothing would never end (an empty read costs no read budget).
        if take == 0 {
            return Err(bad(format!(
                "its index allocation's run at VCN {first} maps nothing at byte {at}"
            )));
        }
        let out = &mut buf[done..done + take];
        match pos {
            Some(p) => {
                c.seek(SeekFrom::Start(p.saturating_add(into)))?;
                c.read_exact(out)?;
            }
            None => out.fill(0),
        }
        done += take;
        at = at.saturating_add(take as u64);
    }
    Ok(())
}

/// The value of `dir`'s `ty` attribute `$I30`, at most `max` bytes, read by the crate.
fn value<T: Read + Seek>(
    dir: &NtfsFile<'_>,
    c: &mut T,
    ty: NtfsAttributeType,
    max: u64,
) -> Result<Option<Vec<u8>>, NtfsError> {
    let mut it = dir.attributes();
    while let Some(item) = it.next(c) {
        let item = item?;
        let attr = item.to_attribute()?;
        if attr.ty()? != ty || attr.name()?.to_string_lossy() != "$I30" {
            continue;
        }
        let mut v = attr.value(c)?;
        if let NtfsAttributeValue::AttributeListNonResident(_) = v {
            return Err(bad(format!(
                "its $I30 {ty:?} is spread over its attribute list"
            )));
        }
        let len = v.len().min(max);
        let mut out = vec![0u8; usize::try_from(len).unwrap_or(0)];
        let mut done = 0;
        while done < out.len() {
            let n = v.read(c, &mut out[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        out.truncate(done);
        return Ok(Some(out));
    }
    Ok(None)
}

/// The first `need` bytes of the index's `$BITMAP` `$I30`.
fn bitmap<T: Read + Seek>(dir: &NtfsFile<'_>, c: &mut T, need: u64) -> Result<Vec<u8>, NtfsError> {
    let cluster = u64::from(dir.ntfs().cluster_size()).max(1);
    let b = match spread(dir, c, NtfsAttributeType::Bitmap, "$I30", MAX_RUNS)? {
        Some(Ok(s)) => {
            let mut b = vec![0u8; usize::try_from(need.min(s.len)).unwrap_or(0)];
            read_at(c, &s.runs, cluster, 0, &mut b)?;
            b
        }
        Some(Err(why)) => return Err(bad(format!("its $I30 bitmap: {why}"))),
        None => value(dir, c, NtfsAttributeType::Bitmap, need)?
            .ok_or_else(|| bad("it has an index allocation and no $I30 bitmap".into()))?,
    };
    if (b.len() as u64) < need {
        return Err(bad(format!(
            "its $I30 bitmap has {} bytes, its allocation needs {need}",
            b.len()
        )));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index entry for record `rec` named `name` (namespace `ns`, `$FILE_NAME` flags
    /// `attrs`), or the last entry when `name` is `None`.
    fn entry(rec: u64, name: Option<&str>, ns: u8, attrs: u32) -> Vec<u8> {
        let mut key = Vec::new();
        if let Some(n) = name {
            key = vec![0u8; 0x42];
            key[0x10..0x18].copy_from_slice(&116_444_736_000_000_000u64.to_le_bytes());
            key[0x38..0x3C].copy_from_slice(&attrs.to_le_bytes());
            let units: Vec<u16> = n.encode_utf16().collect();
            key[0x40] = u8::try_from(units.len()).unwrap();
            key[0x41] = ns;
            for u in units {
                key.extend_from_slice(&u.to_le_bytes());
            }
        }
        let len = (16 + key.len()).next_multiple_of(8);
        let mut e = vec![0u8; len];
        e[0..8].copy_from_slice(&(rec | (1 << 48)).to_le_bytes());
        e[8..10].copy_from_slice(&u16::try_from(len).unwrap().to_le_bytes());
        e[10..12].copy_from_slice(&u16::try_from(key.len()).unwrap().to_le_bytes());
        let flags: u32 = if name.is_none() { 2 } else { 0 };
        e[12..16].copy_from_slice(&flags.to_le_bytes());
        e[16..16 + key.len()].copy_from_slice(&key);
        e
    }

    /// A node: an index header at 0 (entries from 16) followed by `entries`.
    fn node_of(entries: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = entries.concat();
        let mut b = vec![0u8; 16];
        b[0..4].copy_from_slice(&16u32.to_le_bytes());
        b[4..8].copy_from_slice(&u32::try_from(16 + body.len()).unwrap().to_le_bytes());
        b.extend_from_slice(&body);
        b
    }

    fn list(b: &[u8]) -> Result<Vec<(u64, String, bool)>, String> {
        let mut out = Vec::new();
        node(b, 0, "index block 0", &mut |rec, n| {
            out.push((rec, n.name, n.dir));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn a_node_gives_its_entries_and_skips_dos_names() {
        let b = node_of(&[
            entry(64, Some("System32"), 3, 0x1000_0000),
            entry(65, Some("SYSTEM~1"), 2, 0x1000_0000),
            entry(70, Some("notes.txt"), 1, 0x20),
            entry(0, None, 0, 0),
        ]);
        assert_eq!(
            list(&b).unwrap(),
            [
                (64, "System32".into(), true),
                (70, "notes.txt".into(), false)
            ]
        );
    }

    #[test]
    fn hostile_nodes_are_errors() {
        // No last entry.
        let b = node_of(&[entry(64, Some("a"), 1, 0)]);
        assert!(list(&b).unwrap_err().contains("without a last entry"));
        // An entry of length 0 (it would loop).
        let mut b = node_of(&[entry(64, Some("a"), 1, 0), entry(0, None, 0, 0)]);
        b[16 + 8..16 + 10].copy_from_slice(&0u16.to_le_bytes());
        assert!(list(&b).unwrap_err().contains("length 0"));
        // A key longer than its entry.
        let mut b = node_of(&[entry(64, Some("a"), 1, 0), entry(0, None, 0, 0)]);
        b[16 + 10..16 + 12].copy_from_slice(&0x200u16.to_le_bytes());
        assert!(list(&b).unwrap_err().contains("overruns"));
        // Entries said to lie past the node.
        let mut b = node_of(&[entry(0, None, 0, 0)]);
        b[4..8].copy_from_slice(&0x10000u32.to_le_bytes());
        assert!(list(&b).unwrap_err().contains("outside"));
        // A header cut short.
        assert!(list(&[0u8; 6]).unwrap_err().contains("cut"));
    }

    #[test]
    fn a_run_too_long_to_count_in_bytes_is_read_through() {
        // One run of 2^52 clusters of 4 KiB (2^64 bytes: 0 when multiplied unchecked, and the
        // read never advanced).
        let vol: Vec<u8> = (0..=255u8).cycle().take(3 * 4096).collect();
        let mut c = std::io::Cursor::new(vol.clone());
        let runs = [(0, 1u64 << 52, Some(4096))];
        let mut buf = vec![0u8; 4096];
        read_at(&mut c, &runs, 4096, 0, &mut buf).unwrap();
        assert_eq!(buf, vol[4096..8192]);
        // Far into the run: past the volume, an error rather than a hang.
        assert!(read_at(&mut c, &runs, 4096, 1 << 50, &mut buf).is_err());
        // A byte no run maps.
        let e = read_at(&mut c, &[(0, 1, Some(0))], 4096, 4096, &mut buf).unwrap_err();
        assert!(e.to_string().contains("does not map byte 4096"), "{e}");
    }

    #[test]
    fn update_sequences_are_applied_and_torn_blocks_refused() {
        let mut b = vec![0u8; 1024];
        b[..4].copy_from_slice(b"INDX");
        b[4..6].copy_from_slice(&0x28u16.to_le_bytes());
        b[6..8].copy_from_slice(&3u16.to_le_bytes());
        b[0x28..0x2A].copy_from_slice(&[7, 0]);
        b[0x2A..0x2C].copy_from_slice(&[0xAA, 0xBB]);
        b[0x2C..0x2E].copy_from_slice(&[0xCC, 0xDD]);
        for end in [510, 1022] {
            b[end..end + 2].copy_from_slice(&[7, 0]);
        }
        let mut good = b.clone();
        fixup(&mut good, b"INDX").unwrap();
        assert_eq!(good[510..512], [0xAA, 0xBB]);
        assert_eq!(good[1022..1024], [0xCC, 0xDD]);
        let mut torn = b.clone();
        torn[1022] = 8;
        assert!(fixup(&mut torn, b"INDX").unwrap_err().contains("torn"));
        let mut unsigned = b.clone();
        unsigned[0] = b'X';
        assert!(
            fixup(&mut unsigned, b"INDX")
                .unwrap_err()
                .contains("signature")
        );
        let mut short = b;
        short[6..8].copy_from_slice(&9u16.to_le_bytes());
        assert!(
            fixup(&mut short, b"INDX")
                .unwrap_err()
                .contains("does not fit")
        );
        // A block shorter than a sector: its update sequence cannot be in it.
        let mut tiny = good[..0x2C].to_vec();
        tiny[4..6].copy_from_slice(&0x2Bu16.to_le_bytes());
        tiny[6..8].copy_from_slice(&1u16.to_le_bytes());
        assert!(
            fixup(&mut tiny, b"INDX")
                .unwrap_err()
                .contains("does not fit")
        );
    }
}
