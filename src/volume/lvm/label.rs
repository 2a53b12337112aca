//! The LVM2 physical volume label (`LABELONE` in one of the first four sectors), its PV header,
//! and the metadata area holding the volume group's text metadata.

use crate::source::Source;

/// Metadata text larger than this is refused (real metadata is a few KiB; the default area is
/// 1 MiB).
const MAX_METADATA: u64 = 16 * 1024 * 1024;
/// Most data or metadata area descriptors read from a PV header.
const MAX_AREAS: usize = 16;
const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
const MDA_HEADER_SIZE: u64 = 512;

/// A physical volume label.
#[derive(Clone, Debug, PartialEq)]
pub struct PvLabel {
    /// PV UUID, 32 characters without dashes.
    pub uuid: String,
    /// Device size recorded by LVM, bytes.
    pub device_size: u64,
    /// Metadata areas: (offset, size) in bytes from the start of the PV.
    pub metadata_areas: Vec<(u64, u64)>,
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Find and parse the label in the first four 512-byte sectors. `Ok(None)` when there is none.
pub fn read_label(src: &dyn Source) -> Result<Option<PvLabel>, String> {
    let mut head = vec![0u8; 2048];
    if src.len() < 2048 {
        return Ok(None);
    }
    src.read_at(0, &mut head).map_err(|e| e.to_string())?;
    for sector in 0..4usize {
        let base = sector * 512;
        let Some(s) = head.get(base..base + 512) else {
            continue;
        };
        if &s[..8] != b"LABELONE" || &s[24..32] != b"LVM2 001" {
            continue;
        }
        let off = u32_at(s, 20).ok_or("label header")? as usize;
        let pvh = s.get(off..).filter(|p| p.len() >= 40).ok_or_else(|| {
            format!("LVM label in sector {sector}: PV header offset {off} is outside the sector")
        })?;
        let uuid = String::from_utf8_lossy(&pvh[..32]).into_owned();
        let device_size = u64_at(pvh, 32).ok_or("PV header")?;
        // Data areas, then metadata areas, each list ended by a zero pair.
        let mut pos = 40usize;
        let mut lists: [Vec<(u64, u64)>; 2] = [vec![], vec![]];
        for list in &mut lists {
            loop {
                let (Some(o), Some(z)) = (u64_at(pvh, pos), u64_at(pvh, pos + 8)) else {
                    return Err(format!(
                        "LVM PV header in sector {sector}: area list runs past the sector"
                    ));
                };
                pos += 16;
                if o == 0 && z == 0 {
                    break;
                }
                if list.len() >= MAX_AREAS {
                    return Err(format!(
                        "LVM PV header in sector {sector}: more than {MAX_AREAS} areas"
                    ));
                }
                list.push((o, z));
            }
        }
        let [_, metadata_areas] = lists;
        return Ok(Some(PvLabel {
            uuid,
            device_size,
            metadata_areas,
        }));
    }
    Ok(None)
}

/// Read the current metadata text from the first readable metadata area.
pub fn read_metadata(src: &dyn Source, label: &PvLabel) -> Result<Vec<u8>, String> {
    let mut last = String::from("the PV has no metadata area");
    for &(start, size) in &label.metadata_areas {
        match read_area(src, start, size) {
            Ok(t) => return Ok(t),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn read_area(src: &dyn Source, start: u64, size: u64) -> Result<Vec<u8>, String> {
    let mut hdr = vec![0u8; MDA_HEADER_SIZE as usize];
    src.read_at(start, &mut hdr)
        .map_err(|e| format!("LVM metadata area at byte {start}: {e}"))?;
    if hdr.get(4..20) != Some(&MDA_MAGIC[..]) {
        return Err(format!("LVM metadata area at byte {start}: bad magic"));
    }
    // raw_locn[0]: offset (from the area start), size, checksum, flags.
    let (Some(off), Some(len)) = (u64_at(&hdr, 40), u64_at(&hdr, 48)) else {
        return Err("LVM metadata area header".into());
    };
    if len == 0 || len > MAX_METADATA || off >= size || len > size {
        return Err(format!(
            "LVM metadata area at byte {start}: metadata of {len} bytes at {off} does not fit an area of {size} bytes"
        ));
    }
    let mut text = vec![0u8; len as usize];
    // The area is a ring buffer after its header: text may wrap to just after the header.
    let first = len.min(size - off);
    let (a, b) = text.split_at_mut(first as usize);
    src.read_at(start + off, a)
        .map_err(|e| format!("LVM metadata text at byte {}: {e}", start + off))?;
    if !b.is_empty() {
        src.read_at(start + MDA_HEADER_SIZE, b)
            .map_err(|e| format!("LVM metadata text (wrapped): {e}"))?;
    }
    Ok(text)
}

/// A 1 MiB PV with a label in sector 1 and one metadata area at 4096 holding `text` (at most
/// 512 KiB): for tests and fuzzing.
pub fn pv_image(text: &[u8]) -> Vec<u8> {
    let text = &text[..text.len().min(512 * 1024)];
    let mut img = vec![0u8; 1 << 20];
    let l = 512;
    img[l..l + 8].copy_from_slice(b"LABELONE");
    img[l + 8..l + 16].copy_from_slice(&1u64.to_le_bytes());
    img[l + 20..l + 24].copy_from_slice(&32u32.to_le_bytes());
    img[l + 24..l + 32].copy_from_slice(b"LVM2 001");
    let p = l + 32;
    img[p..p + 32].copy_from_slice(b"0000AAAABBBBCCCCDDDDEEEEFFFF0001");
    img[p + 32..p + 40].copy_from_slice(&(1u64 << 20).to_le_bytes());
    // data area (1 MiB, rest), terminator, metadata area (4096, 1 MiB - 4096), terminator
    let areas: [u64; 8] = [1 << 20, 0, 0, 0, 4096, (1 << 20) - 4096, 0, 0];
    for (i, a) in areas.iter().enumerate() {
        img[p + 40 + i * 8..p + 48 + i * 8].copy_from_slice(&a.to_le_bytes());
    }
    let m = 4096;
    img[m + 4..m + 20].copy_from_slice(MDA_MAGIC);
    img[m + 40..m + 48].copy_from_slice(&512u64.to_le_bytes());
    img[m + 48..m + 56].copy_from_slice(&(text.len() as u64).to_le_bytes());
    img[m + 512..m + 512 + text.len()].copy_from_slice(text);
    img
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::volume::tests::Mem;

    pub(crate) use super::pv_image;

    #[test]
    fn reads_the_label_and_the_metadata_text() {
        let img = pv_image(b"vg { seqno = 1 }");
        let src = Mem(img);
        let label = read_label(&src).unwrap().unwrap();
        assert_eq!(label.uuid, "0000AAAABBBBCCCCDDDDEEEEFFFF0001");
        assert_eq!(label.metadata_areas, vec![(4096, (1 << 20) - 4096)]);
        assert_eq!(read_metadata(&src, &label).unwrap(), b"vg { seqno = 1 }");
    }

    #[test]
    fn a_flipped_magic_is_reported() {
        let mut img = pv_image(b"vg { }");
        img[4096 + 5] ^= 0xff;
        let src = Mem(img);
        let label = read_label(&src).unwrap().unwrap();
        assert_eq!(
            read_metadata(&src, &label).unwrap_err(),
            "LVM metadata area at byte 4096: bad magic"
        );
    }

    #[test]
    fn an_oversized_metadata_length_is_refused() {
        let mut img = pv_image(b"vg { }");
        img[4096 + 48..4096 + 56].copy_from_slice(&u64::MAX.to_le_bytes());
        let src = Mem(img);
        let label = read_label(&src).unwrap().unwrap();
        assert!(
            read_metadata(&src, &label)
                .unwrap_err()
                .contains("does not fit")
        );
    }

    #[test]
    fn a_pv_header_offset_outside_the_sector_is_an_error() {
        let mut img = pv_image(b"vg { }");
        img[512 + 20..512 + 24].copy_from_slice(&4000u32.to_le_bytes());
        assert!(
            read_label(&Mem(img))
                .unwrap_err()
                .contains("outside the sector")
        );
    }

    #[test]
    fn no_label_is_none() {
        assert_eq!(read_label(&Mem(vec![0u8; 4096])).unwrap(), None);
    }
}
