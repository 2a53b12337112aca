//! The bytes of an NTFS `FILE` record as stored: little-endian fields, the update sequence
//! that protects each sector, the attributes in it, the mapping pairs of a non-resident one,
//! and what makes a record an extension of another. Shared by the readers of what the `ntfs`
//! crate does not read whole ([`super::mft_list`], [`super::extents`], [`super::index`]). Each
//! function is bounded by the bytes it is given and says what is wrong; none panics.

pub(super) use crate::bytes::{le16 as u16_at, le32 as u32_at, le64 as u64_at};

/// The stride of the update sequence (the crate's, and NTFS's).
const USA_STRIDE: usize = 512;
/// The smallest offset of an update sequence array: past an `INDX` block's header (0x28; a
/// `FILE` record's is at 0x2A or 0x30).
const MIN_USA: usize = 0x28;
/// Attribute types.
pub(super) const ATTR_LIST: u32 = 0x20;
pub(super) const ATTR_DATA: u32 = 0x80;
pub(super) const ATTR_END: u32 = 0xFFFF_FFFF;

/// Apply the update sequence of a stored multi-sector structure (a `FILE` record, an `INDX`
/// block) whose signature must be `sig`, in place. Strict, because the check is all that tells
/// a record torn by a crash (or forged) from a whole one: the structure must be whole sectors,
/// the array must hold one entry per sector plus the update sequence number and lie in the
/// first sector past the smallest header, and every sector must end with that number.
pub(super) fn fixup(b: &mut [u8], sig: &[u8; 4]) -> Result<(), String> {
    if b.get(..4) != Some(&sig[..]) {
        let name = String::from_utf8_lossy(sig);
        return Err(format!("no {name} signature"));
    }
    let usa = usize::from(u16_at(b, 4).unwrap_or(0));
    let count = usize::from(u16_at(b, 6).unwrap_or(0));
    let len = b.len();
    let fits = len >= USA_STRIDE
        && len.is_multiple_of(USA_STRIDE)
        && count == len / USA_STRIDE + 1
        && usa >= MIN_USA
        && usa.saturating_add(count.saturating_mul(2)) <= USA_STRIDE;
    if !fits {
        return Err(format!(
            "its update sequence ({count} entries at {usa}) does not fit its {len} bytes"
        ));
    }
    let bad = || format!("its update sequence ({count} entries at {usa}) is cut");
    let usn = u16_at(b, usa).ok_or_else(bad)?;
    for i in 1..count {
        let end = i * USA_STRIDE;
        let at = end - 2;
        let saved = u16_at(b, usa + 2 * i).ok_or_else(bad)?;
        if u16_at(b, at) != Some(usn) {
            return Err(format!(
                "torn (its update sequence does not match at the end of sector {})",
                i - 1
            ));
        }
        b.get_mut(at..end)
            .ok_or_else(bad)?
            .copy_from_slice(&saved.to_le_bytes());
    }
    Ok(())
}

/// The record as stored: the sector ends saved into the update sequence array (valid for a
/// record [`fixup`] accepted).
pub(super) fn unfix(mut rec: Vec<u8>) -> Vec<u8> {
    let usa = usize::from(u16_at(&rec, 4).unwrap_or(0));
    let count = usize::from(u16_at(&rec, 6).unwrap_or(0));
    let usn = u16_at(&rec, usa).unwrap_or(0).to_le_bytes();
    for i in 1..count {
        let end = i.saturating_mul(USA_STRIDE);
        let at = end.saturating_sub(2);
        let Some(sector_end) = rec.get(at..end).map(|s| [s[0], s[1]]) else {
            break;
        };
        if let Some(slot) = rec.get_mut(usa + 2 * i..usa + 2 * i + 2) {
            slot.copy_from_slice(&sector_end);
        }
        if let Some(s) = rec.get_mut(at..end) {
            s.copy_from_slice(&usn);
        }
    }
    rec
}

/// The attributes of a fixed-up record: (offset, type), up to `$END` (bounded by the record).
pub(super) fn attributes(rec: &[u8]) -> Result<Vec<(usize, u32)>, String> {
    let mut off = usize::from(u16_at(rec, 0x14).ok_or("no first attribute offset")?);
    let mut out = Vec::new();
    loop {
        let ty = u32_at(rec, off).ok_or("its attributes run past the record")?;
        if ty == ATTR_END {
            return Ok(out);
        }
        let len = usize::try_from(u32_at(rec, off + 4).ok_or("attribute header cut")?)
            .map_err(|e| e.to_string())?;
        if len < 0x18 || off.checked_add(len).is_none_or(|e| e > rec.len()) {
            return Err(format!("attribute {ty:#x} at {off} has length {len}"));
        }
        out.push((off, ty));
        off += len;
    }
}

/// The offset of the attribute of type `ty` named `name` (UTF-16 units) with instance
/// `instance` in the fixed-up record `rec`, the way an attribute list names an extent.
pub(super) fn find_attribute(
    rec: &[u8],
    ty: u32,
    name: &[u16],
    instance: u16,
) -> Result<Option<usize>, String> {
    Ok(attributes(rec)?.into_iter().find_map(|(o, t)| {
        (t == ty
            && u16_at(rec, o + 0x0E) == Some(instance)
            && attr_name(rec, o).as_deref() == Some(name))
        .then_some(o)
    }))
}

/// The name of the attribute at `off` of the fixed-up record `rec`, as UTF-16 units.
fn attr_name(rec: &[u8], off: usize) -> Option<Vec<u16>> {
    let len = usize::from(*rec.get(off.checked_add(9)?)?);
    let at = off.checked_add(usize::from(u16_at(rec, off.checked_add(10)?)?))?;
    let raw = rec.get(at..at.checked_add(len.checked_mul(2)?)?)?;
    Some(
        raw.chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect(),
    )
}

/// A non-resident attribute's header fields: (lowest VCN, highest VCN, its mapping pairs).
pub(super) fn nonresident(rec: &[u8], off: usize) -> Result<(u64, u64, &[u8]), String> {
    if rec.get(off + 8) != Some(&1) {
        return Err("$DATA is resident".into());
    }
    let len = usize::try_from(u32_at(rec, off + 4).ok_or("cut")?).map_err(|e| e.to_string())?;
    let low = u64_at(rec, off + 0x10).ok_or("cut")?;
    let high = u64_at(rec, off + 0x18).ok_or("cut")?;
    let mp = usize::from(u16_at(rec, off + 0x20).ok_or("cut")?);
    let pairs = rec
        .get(off.saturating_add(mp)..off.saturating_add(len))
        .ok_or("its mapping pairs lie outside the attribute")?;
    Ok((low, high, pairs))
}

/// Decode mapping pairs starting at VCN `vcn` into runs (`None` LCN: sparse), at most
/// `room` of them.
pub(super) fn decode(
    pairs: &[u8],
    mut vcn: u64,
    room: usize,
) -> Result<Vec<(u64, u64, Option<u64>)>, String> {
    let mut out = Vec::new();
    let mut lcn = 0i64;
    let mut at = 0usize;
    loop {
        let head = *pairs.get(at).ok_or("its mapping pairs have no end")?;
        if head == 0 {
            return Ok(out);
        }
        if out.len() >= room {
            return Err(format!("more than {room} runs"));
        }
        let (ls, os) = (usize::from(head & 15), usize::from(head >> 4));
        if ls == 0 || ls > 8 || os > 8 {
            return Err(format!("a mapping pair of header {head:#x}"));
        }
        let field = |from: usize, n: usize| pairs.get(from..from.checked_add(n)?);
        let lb = field(at + 1, ls).ok_or("a mapping pair cut")?;
        let mut len = [0u8; 8];
        len.get_mut(..ls).unwrap_or(&mut []).copy_from_slice(lb);
        let len = u64::from_le_bytes(len);
        let pos = if os == 0 {
            None
        } else {
            let ob = field(at + 1 + ls, os).ok_or("a mapping pair cut")?;
            let fill = if ob.last().is_some_and(|b| b & 0x80 != 0) {
                0xFF
            } else {
                0
            };
            let mut d = [fill; 8];
            d.get_mut(..os).unwrap_or(&mut []).copy_from_slice(ob);
            lcn = lcn
                .checked_add(i64::from_le_bytes(d))
                .filter(|l| *l >= 0)
                .ok_or("a run before cluster 0")?;
            Some(u64::try_from(lcn).map_err(|e| e.to_string())?)
        };
        if len == 0 {
            return Err("a run of no clusters".into());
        }
        out.push((vcn, len, pos));
        vcn = vcn.checked_add(len).ok_or("VCNs overflow")?;
        at += 1 + ls + os;
    }
}

/// Whether the fixed-up record `ext` is an extension record of base record `base` (sequence
/// number `base_seq`) that a list entry naming it with sequence number `seq` may point to:
/// in use, its base reference (offset 0x20) that of `base` whole, its own sequence number
/// (0x10) the entry's. `Err` says what it is instead. A base reference of 0 marks a base
/// record, so an extension of a record whose sequence number is 0 cannot be told from one
/// and is refused (mkntfs and Windows give `$MFT`, record 0, sequence number 1).
pub(super) fn extension_of(ext: &[u8], base: u64, base_seq: u16, seq: u16) -> Result<(), String> {
    let in_use = u16_at(ext, 0x16).unwrap_or(0) & 1 != 0;
    let reference = u64_at(ext, 0x20).unwrap_or(0);
    let own = u16_at(ext, 0x10).unwrap_or(0);
    let want = base | u64::from(base_seq) << 48;
    if !in_use {
        return Err("is not in use".into());
    }
    if reference == 0 {
        return Err("is a base record, not an extension record".into());
    }
    if reference != want {
        return Err(format!(
            "is an extension of record {} sequence {}, not of record {base} sequence {base_seq}",
            reference & 0xFFFF_FFFF_FFFF,
            reference >> 48
        ));
    }
    if own != seq {
        return Err(format!(
            "has sequence number {own}, the attribute list names sequence {seq}"
        ));
    }
    Ok(())
}

/// The runs of one extent of a non-resident attribute, from VCN `low` to `high` (its header's
/// lowest and highest VCN) with mapping pairs `pairs`, at most `room` of them; they must end
/// at `high`. An empty extent (an empty file's) has no runs and a highest VCN of `low - 1`
/// (-1 for VCN 0).
pub(super) fn extent_runs(
    pairs: &[u8],
    low: u64,
    high: u64,
    room: usize,
) -> Result<Vec<(u64, u64, Option<u64>)>, String> {
    let decoded = decode(pairs, low, room)?;
    // `decode` keeps every run's end within u64, so an end of 0 is an empty extent at VCN 0,
    // whose highest VCN -1 wraps to it.
    let end = decoded.last().map_or(low, |r| r.0.saturating_add(r.1));
    if high.wrapping_add(1) != end {
        return Err(format!(
            "its runs end at VCN {end}, its header says {}",
            high.wrapping_add(1)
        ));
    }
    Ok(decoded)
}

/// Fixtures: records, attributes and a small volume whose `$MFT` is split by an attribute list.
#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The fixed-up copy of the stored record `rec`.
    pub(in super::super) fn fixed(mut rec: Vec<u8>) -> Vec<u8> {
        fixup(&mut rec, b"FILE").unwrap();
        rec
    }

    /// A `FILE` record of 1 KiB (two sectors, update sequence at 0x30) with `attrs` from 0x38,
    /// sequence number 1.
    pub(in super::super) fn record(attrs: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; 1024];
        r[..4].copy_from_slice(b"FILE");
        r[4..6].copy_from_slice(&0x30u16.to_le_bytes());
        r[6..8].copy_from_slice(&3u16.to_le_bytes());
        r[0x10] = 1;
        r[0x14..0x16].copy_from_slice(&0x38u16.to_le_bytes());
        r[0x16] = 1;
        r[0x1C..0x20].copy_from_slice(&1024u32.to_le_bytes());
        r[0x30..0x32].copy_from_slice(&7u16.to_le_bytes());
        r[0x38..0x38 + attrs.len()].copy_from_slice(attrs);
        let end = 0x38 + attrs.len();
        r[end..end + 4].copy_from_slice(&ATTR_END.to_le_bytes());
        r[0x18..0x1C].copy_from_slice(&u32::try_from(end + 8).unwrap().to_le_bytes());
        r
    }

    /// A non-resident unnamed `$DATA` from VCN `low` to `high` with mapping pairs `pairs`.
    pub(in super::super) fn data(low: u64, high: u64, allocated: u64, pairs: &[u8]) -> Vec<u8> {
        let mut a = vec![0u8; 0x40];
        a[..4].copy_from_slice(&ATTR_DATA.to_le_bytes());
        a[8] = 1;
        a[0x10..0x18].copy_from_slice(&low.to_le_bytes());
        a[0x18..0x20].copy_from_slice(&high.to_le_bytes());
        a[0x20..0x22].copy_from_slice(&0x40u16.to_le_bytes());
        a[0x28..0x30].copy_from_slice(&allocated.to_le_bytes());
        a.extend_from_slice(pairs);
        a.push(0);
        a.resize(a.len().next_multiple_of(8), 0);
        let len = u32::try_from(a.len()).unwrap();
        a[4..8].copy_from_slice(&len.to_le_bytes());
        a
    }

    /// A 512 KiB volume of 1 KiB clusters whose 32-record `$MFT` is in two extents: records
    /// 0–15 at cluster 4 (record 0's own `$DATA`), 16–31 at cluster 100 (the `$DATA` of
    /// extension record 15, named by record 0's resident attribute list). Record `n` holds
    /// `n` at byte 0x100. Returns the volume and record 0 and 15 as fixed-up records.
    pub(in super::super) fn volume() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        volume_with(&|list, d0| [list, d0].concat())
    }

    /// [`volume`] with record 0's attributes `attrs(list, data)` from its attribute list and
    /// its `$DATA`.
    pub(in super::super) fn volume_with(
        attrs: &dyn Fn(Vec<u8>, Vec<u8>) -> Vec<u8>,
    ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut vol = vec![0u8; 512 << 10];
        vol[3..11].copy_from_slice(b"NTFS    ");
        vol[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        vol[0x0D] = 2;
        vol[0x28..0x30].copy_from_slice(&1024u64.to_le_bytes());
        vol[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        vol[0x38..0x40].copy_from_slice(&8u64.to_le_bytes());
        vol[0x40] = 0xF6;
        vol[0x44] = 1;
        vol[510..512].copy_from_slice(&[0x55, 0xAA]);
        let list = list_attr(&[(0, 0, 1), (16, 15, 0)]);
        let mut d0 = data(0, 15, 32 * 1024, &[0x11, 0x10, 0x04]);
        d0[0x0E] = 1;
        let rec0 = record(&attrs(list, d0));
        let mut rec15 = record(&data(16, 31, 0, &[0x11, 0x10, 0x64]));
        rec15[0x20..0x28].copy_from_slice(&(1u64 << 48).to_le_bytes());
        for n in 0..32u64 {
            let mut r = match n {
                0 => rec0.clone(),
                15 => rec15.clone(),
                _ => record(&[]),
            };
            r[0x100] = u8::try_from(n).unwrap();
            let at = usize::try_from(if n < 16 {
                4096 + n * 1024
            } else {
                102_400 + (n - 16) * 1024
            })
            .unwrap();
            vol[at..at + 1024].copy_from_slice(&unfix(r));
        }
        let rec0 = fixed(vol[4096..5120].to_vec());
        let rec15 = fixed(vol[4096 + 15 * 1024..4096 + 16 * 1024].to_vec());
        (vol, rec0, rec15)
    }

    /// A resident attribute list of unnamed `$DATA` entries (lowest VCN, record of sequence
    /// number 1, instance).
    pub(in super::super) fn list_attr(entries: &[(u64, u64, u16)]) -> Vec<u8> {
        let mut list = vec![0u8; 24];
        list[..4].copy_from_slice(&ATTR_LIST.to_le_bytes());
        list[0x14..0x16].copy_from_slice(&24u16.to_le_bytes());
        for &(vcn, rec, instance) in entries {
            let mut e = vec![0u8; 32];
            e[..4].copy_from_slice(&ATTR_DATA.to_le_bytes());
            e[4..6].copy_from_slice(&32u16.to_le_bytes());
            e[7] = 26;
            e[8..16].copy_from_slice(&vcn.to_le_bytes());
            e[16..24].copy_from_slice(&(rec | 1 << 48).to_le_bytes());
            e[24..26].copy_from_slice(&instance.to_le_bytes());
            list.extend(e);
        }
        let value = u32::try_from(list.len() - 24).unwrap();
        list[0x10..0x14].copy_from_slice(&value.to_le_bytes());
        let len = u32::try_from(list.len()).unwrap();
        list[4..8].copy_from_slice(&len.to_le_bytes());
        list
    }

    /// Record `n` (below 16, in the first extent) of `vol` replaced by the fixed-up `rec`.
    pub(in super::super) fn put(vol: &mut [u8], n: usize, rec: Vec<u8>) {
        let at = 4096 + n * 1024;
        vol[at..at + 1024].copy_from_slice(&unfix(rec));
    }

    /// `vol` with records 0 and 15 replaced by the fixed-up `r0` and `r15`.
    pub(in super::super) fn with(vol: &[u8], r0: &[u8], r15: &[u8]) -> Vec<u8> {
        let mut v = vol.to_vec();
        v[4096..5120].copy_from_slice(&unfix(r0.to_vec()));
        v[4096 + 15 * 1024..4096 + 16 * 1024].copy_from_slice(&unfix(r15.to_vec()));
        v
    }

    #[test]
    fn mapping_pairs_decode_with_signed_deltas_and_sparse_runs() {
        // 16 clusters at 0x100, 8 sparse, 4 at 0x100 - 0x10.
        let pairs = [0x21, 0x10, 0x00, 0x01, 0x01, 0x08, 0x11, 0x04, 0xF0, 0x00];
        assert_eq!(
            decode(&pairs, 5, 10).unwrap(),
            vec![(5, 16, Some(0x100)), (21, 8, None), (29, 4, Some(0xF0))]
        );
    }

    #[test]
    fn hostile_mapping_pairs_are_errors() {
        // No terminator.
        assert!(decode(&[0x11, 0x01, 0x01], 0, 10).is_err());
        // A run before cluster 0.
        assert!(decode(&[0x11, 0x01, 0xFF, 0x00], 0, 10).is_err());
        // A run of no clusters; a field longer than 8 bytes.
        assert!(decode(&[0x11, 0x00, 0x01, 0x00], 0, 10).is_err());
        assert!(decode(&[0x19, 0x00], 0, 10).is_err());
        // More runs than allowed: bounded, not read on.
        let many: Vec<u8> = std::iter::repeat_n([0x11u8, 0x01, 0x01], 100)
            .flatten()
            .chain([0])
            .collect();
        // The room left is what the message gives, not the overall cap.
        assert!(
            decode(&many, 0, 99)
                .unwrap_err()
                .contains("more than 99 runs")
        );
        assert_eq!(decode(&many, 0, 100).unwrap().len(), 100);
        // VCNs that overflow.
        assert!(
            decode(
                &[0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
                1,
                10
            )
            .is_err()
        );
    }

    #[test]
    fn an_empty_extent_has_no_runs_and_a_highest_vcn_before_its_lowest() {
        // An empty non-resident stream: VCNs 0 to -1, no mapping pairs.
        assert_eq!(extent_runs(&[0], 0, u64::MAX, 10).unwrap(), vec![]);
        assert_eq!(extent_runs(&[0], 7, 6, 10).unwrap(), vec![]);
        // Runs where none are said to be, or none where some are.
        assert!(extent_runs(&[0x11, 0x01, 0x01, 0], 0, u64::MAX, 10).is_err());
        assert!(extent_runs(&[0], 0, 0, 10).is_err());
        assert!(extent_runs(&[0], 7, u64::MAX, 10).is_err());
        assert_eq!(
            extent_runs(&[0x11, 0x02, 0x01, 0], 3, 4, 10).unwrap(),
            vec![(3, 2, Some(1))]
        );
    }

    #[test]
    fn only_an_extension_of_the_base_record_is_one() {
        let mut ext = record(&[]);
        ext[0x20..0x28].copy_from_slice(&(1u64 << 48).to_le_bytes());
        assert!(extension_of(&ext, 0, 1, 1).is_ok());
        // Of another record, or of record 0 under another sequence number.
        assert!(
            extension_of(&ext, 7, 1, 1)
                .unwrap_err()
                .contains("record 0 sequence 1")
        );
        assert!(extension_of(&ext, 0, 2, 1).is_err());
        // Its own sequence number is not the one the list gives.
        assert!(
            extension_of(&ext, 0, 1, 3)
                .unwrap_err()
                .contains("sequence number 1")
        );
        // An ordinary base record (base reference 0), even when record 0's sequence number
        // is 0 and its extensions would have that reference too.
        let base = record(&[]);
        assert!(
            extension_of(&base, 0, 1, 1)
                .unwrap_err()
                .contains("base record")
        );
        assert!(
            extension_of(&base, 0, 0, 1)
                .unwrap_err()
                .contains("base record")
        );
        let mut free = ext;
        free[0x16] = 0;
        assert!(
            extension_of(&free, 0, 1, 1)
                .unwrap_err()
                .contains("not in use")
        );
    }

    #[test]
    fn a_record_survives_unfix_and_fixup_and_a_torn_one_is_refused() {
        let mut r = record(&data(0, 0, 512, &[0x11, 0x01, 0x20]));
        r[510] = 0xAB;
        r[1022] = 0xCD;
        let stored = unfix(r.clone());
        assert_eq!(&stored[510..512], &7u16.to_le_bytes());
        let back = fixed(stored.clone());
        assert_eq!((back[510], back[1022]), (0xAB, 0xCD));
        assert_eq!(back[0x38..510], r[0x38..510]);
        assert_eq!(unfix(back), stored);
        let mut torn = stored.clone();
        torn[1023] ^= 1;
        assert!(fixup(&mut torn, b"FILE").unwrap_err().contains("torn"));
        let mut index = stored.clone();
        assert!(
            fixup(&mut index, b"INDX")
                .unwrap_err()
                .contains("signature")
        );
    }

    #[test]
    fn an_update_sequence_that_protects_no_sector_is_refused() {
        let stored = unfix(record(&[]));
        // One entry (the number alone): no sector end is checked or restored.
        let mut one = stored.clone();
        one[6..8].copy_from_slice(&1u16.to_le_bytes());
        assert!(
            fixup(&mut one, b"FILE")
                .unwrap_err()
                .contains("does not fit")
        );
        // Two entries for two sectors: the second sector unchecked.
        let mut two = stored.clone();
        two[6..8].copy_from_slice(&2u16.to_le_bytes());
        assert!(
            fixup(&mut two, b"FILE")
                .unwrap_err()
                .contains("does not fit")
        );
        // An array that reaches past the first sector, or overlaps the header.
        let mut far = stored.clone();
        far[4..6].copy_from_slice(&0x1FCu16.to_le_bytes());
        assert!(
            fixup(&mut far, b"FILE")
                .unwrap_err()
                .contains("does not fit")
        );
        let mut early = stored.clone();
        early[4..6].copy_from_slice(&0x04u16.to_le_bytes());
        assert!(
            fixup(&mut early, b"FILE")
                .unwrap_err()
                .contains("does not fit")
        );
        // A record that is not whole sectors.
        let mut odd = stored[..1000].to_vec();
        assert!(
            fixup(&mut odd, b"FILE")
                .unwrap_err()
                .contains("does not fit")
        );
        assert!(fixup(&mut stored.clone(), b"FILE").is_ok());
    }
}
