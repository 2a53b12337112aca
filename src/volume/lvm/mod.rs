//! LVM2: find physical volumes among a target's volumes, read their volume group metadata, and
//! turn each linear logical volume into a [`Volume`] (a concatenation of extents, possibly on
//! several physical volumes). Other segment types are listed as unsupported.

mod config;
mod label;

#[doc(hidden)]
pub use label::pv_image as pv_image_for_fuzzing;

use super::{Role, Volume, VolumeError};
use crate::source::{SharedSource, Source, SourceError, check_bounds};
use config::{Section, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Sector unit of LVM metadata sizes.
const SECTOR: u64 = 512;
/// Most segments accepted in one logical volume.
const MAX_SEGMENTS: usize = 4096;

/// One stretch of a logical volume: `len` bytes at `lv_offset`, stored at `pv_offset` on `pv`.
#[derive(Clone)]
struct Segment {
    lv_offset: u64,
    len: u64,
    pv: SharedSource,
    pv_offset: u64,
}

/// A logical volume's bytes, gathered from its segments.
struct Concat {
    segments: Vec<Segment>,
    len: u64,
    name: String,
}

impl Source for Concat {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_bounds(&|| self.name.clone(), offset, buf.len(), self.len)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let seg = self
                .segments
                .iter()
                .find(|s| pos >= s.lv_offset && pos < s.lv_offset.saturating_add(s.len))
                .ok_or_else(|| SourceError::OutOfBounds {
                    what: format!("{} (no segment maps byte {pos})", self.name),
                    offset: pos,
                    len: 1,
                    size: self.len,
                })?;
            let within = pos - seg.lv_offset;
            let n = usize::try_from(seg.len - within)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            seg.pv.read_at(
                seg.pv_offset.saturating_add(within),
                &mut buf[done..done + n],
            )?;
            done += n;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn remote(&self) -> bool {
        self.segments.iter().any(|s| s.pv.remote())
    }

    fn will_read_most(&self) {
        for s in &self.segments {
            s.pv.will_read_most();
        }
    }

    fn will_read(&self, plan: &[std::ops::Range<u64>]) {
        // One plan per physical volume, in logical order.
        let mut per_pv: Vec<(&SharedSource, Vec<std::ops::Range<u64>>)> = Vec::new();
        for s in &self.segments {
            if !per_pv.iter().any(|(pv, _)| Arc::ptr_eq(pv, &s.pv)) {
                per_pv.push((&s.pv, Vec::new()));
            }
        }
        for r in plan {
            for (s, at, len) in self.pieces(r.start, r.end.saturating_sub(r.start)) {
                if let Some((_, out)) = per_pv.iter_mut().find(|(pv, _)| Arc::ptr_eq(pv, &s.pv)) {
                    out.push(at..at.saturating_add(len));
                }
            }
        }
        for (pv, ranges) in per_pv {
            pv.will_read(&ranges);
        }
    }

    fn scan_ended(&self) {
        let mut seen: Vec<&SharedSource> = Vec::new();
        for s in &self.segments {
            if !seen.iter().any(|pv| Arc::ptr_eq(pv, &s.pv)) {
                seen.push(&s.pv);
                s.pv.scan_ended();
            }
        }
    }

    fn ready(&self, offset: u64, len: u64) -> bool {
        self.pieces(offset, len)
            .all(|(s, at, len)| s.pv.ready(at, len))
    }

    fn prefetch(&self, offset: u64, len: u64) {
        for (s, at, len) in self.pieces(offset, len) {
            s.pv.prefetch(at, len);
        }
    }
}

impl Concat {
    /// The parts of `[offset, offset+len)` each segment holds: the segment, the offset on its
    /// physical volume and the length.
    fn pieces(&self, offset: u64, len: u64) -> impl Iterator<Item = (&Segment, u64, u64)> {
        let end = offset.saturating_add(len);
        self.segments.iter().filter_map(move |s| {
            let (a, b) = (s.lv_offset, s.lv_offset.saturating_add(s.len));
            (offset < b && end > a).then(|| {
                let from = offset.max(a);
                (s, s.pv_offset.saturating_add(from - a), end.min(b) - from)
            })
        })
    }
}

/// A physical volume found on one of the target's volumes.
struct Pv {
    uuid: String,
    source: SharedSource,
    vg: Option<(String, Section)>,
}

/// The result of looking for LVM on a target's volumes.
#[derive(Default)]
pub struct Assembly {
    /// Indexes (into the input) of volumes that are LVM physical volumes.
    pub physical: Vec<usize>,
    /// One volume per logical volume.
    pub logical: Vec<Volume>,
    /// Problems: unreadable labels or metadata, missing PVs.
    pub errors: Vec<VolumeError>,
}

fn strip(uuid: &str) -> String {
    uuid.chars().filter(|c| *c != '-').collect()
}

/// Find PVs among `volumes` and assemble their logical volumes.
pub fn assemble(volumes: &[Volume]) -> Assembly {
    let mut out = Assembly::default();
    let mut pvs = vec![];
    for (i, v) in volumes.iter().enumerate() {
        let label = match label::read_label(v.source.as_ref()) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(problem) => {
                out.errors.push(VolumeError::LvmLabel {
                    volume: v.id.clone(),
                    problem,
                });
                continue;
            }
        };
        out.physical.push(i);
        let vg = match label::read_metadata(v.source.as_ref(), &label) {
            Ok(text) => match config::parse(&text) {
                Ok(top) => top.sections.into_iter().next(),
                Err(problem) => {
                    out.errors.push(VolumeError::LvmMetadata {
                        volume: v.id.clone(),
                        problem,
                    });
                    None
                }
            },
            Err(problem) => {
                out.errors.push(VolumeError::LvmLabel {
                    volume: v.id.clone(),
                    problem,
                });
                None
            }
        };
        pvs.push(Pv {
            uuid: strip(&label.uuid),
            source: v.source.clone(),
            vg,
        });
    }
    // One copy of each VG's metadata is enough (every PV carries one); keep the highest seqno.
    let mut vgs: BTreeMap<String, Section> = BTreeMap::new();
    for pv in &pvs {
        if let Some((name, sec)) = &pv.vg {
            let newer = vgs
                .get(name)
                .is_none_or(|old| sec.int("seqno") > old.int("seqno"));
            if newer {
                vgs.insert(name.clone(), sec.clone());
            }
        }
    }
    for (vg_name, vg) in &vgs {
        build_vg(vg_name, vg, &pvs, &mut out);
    }
    out
}

fn build_vg(vg_name: &str, vg: &Section, pvs: &[Pv], out: &mut Assembly) {
    let Some(extent) = vg
        .int("extent_size")
        .and_then(|e| u64::try_from(e).ok())
        .and_then(|e| e.checked_mul(SECTOR))
        .filter(|&e| e > 0)
    else {
        out.errors.push(VolumeError::LvmExtentSize {
            vg: vg_name.to_string(),
        });
        return;
    };
    // pvN name -> (source, pe_start bytes)
    let mut by_name: BTreeMap<&str, Option<(SharedSource, u64)>> = BTreeMap::new();
    if let Some(pvsec) = vg.sections.get("physical_volumes") {
        for (name, p) in &pvsec.sections {
            let uuid = p.str("id").map(strip).unwrap_or_default();
            let pe_start = p
                .int("pe_start")
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0);
            let found = pvs
                .iter()
                .find(|pv| pv.uuid == uuid)
                .map(|pv| (pv.source.clone(), pe_start.saturating_mul(SECTOR)));
            by_name.insert(name.as_str(), found);
        }
    }
    let Some(lvs) = vg.sections.get("logical_volumes") else {
        return;
    };
    for (lv_name, lv) in &lvs.sections {
        let id = format!("{vg_name}/{lv_name}");
        let mut errors = vec![];
        let mut segments = vec![];
        let mut size = 0u64;
        for (seg_name, seg) in lv.sections.iter().take(MAX_SEGMENTS) {
            match segment(seg, extent, &by_name) {
                Ok(s) => {
                    size = size.max(s.lv_offset.saturating_add(s.len));
                    segments.push(s);
                }
                Err(problem) => errors.push(VolumeError::LvmSegment {
                    lv: id.clone(),
                    segment: seg_name.clone(),
                    problem,
                }),
            }
        }
        let source: SharedSource = Arc::new(Concat {
            segments,
            len: size,
            name: format!("LVM {id}"),
        });
        out.logical.push(Volume {
            id,
            offset: 0,
            size,
            partition_name: None,
            partition_type: Some("LVM2 logical volume".into()),
            role: Role::Data,
            errors,
            source,
        });
    }
}

fn segment(
    seg: &Section,
    extent: u64,
    pvs: &BTreeMap<&str, Option<(SharedSource, u64)>>,
) -> Result<Segment, String> {
    let kind = seg.str("type").unwrap_or("?");
    let stripes = seg.int("stripe_count").unwrap_or(1);
    if kind != "striped" || stripes != 1 {
        let what = if kind == "striped" {
            "striped (more than one stripe)"
        } else {
            kind
        };
        return Err(format!(
            "segment type `{what}` is not supported; only linear volumes are read"
        ));
    }
    let num = |k: &str| {
        seg.int(k)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| format!("missing or invalid `{k}`"))
    };
    let start = num("start_extent")?;
    let count = num("extent_count")?;
    let (pv_name, pv_extent) = match seg.list("stripes") {
        Some([Value::Str(n), Value::Int(e)]) => (
            n.as_str(),
            u64::try_from(*e).map_err(|_| "negative extent")?,
        ),
        _ => return Err("`stripes` is not [\"pvN\", extent]".into()),
    };
    let (pv, pe_start) = pvs
        .get(pv_name)
        .cloned()
        .flatten()
        .ok_or_else(|| format!("physical volume {pv_name} is not among the target's disks"))?;
    let overflow = || "extent numbers overflow".to_string();
    Ok(Segment {
        lv_offset: start.checked_mul(extent).ok_or_else(overflow)?,
        len: count.checked_mul(extent).ok_or_else(overflow)?,
        pv_offset: pv_extent
            .checked_mul(extent)
            .and_then(|o| o.checked_add(pe_start))
            .ok_or_else(overflow)?,
        pv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::tests::Mem;

    const META: &str = r#"vg0 {
seqno = 2
extent_size = 8
physical_volumes { pv0 { id = "0000AA-AABBBBCCCCDDDDEEEEFFFF0001" pe_start = 2048 } }
logical_volumes {
  root {
    segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 1] }
    segment2 { start_extent = 1 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }
  }
  pool { segment1 { start_extent = 0 extent_count = 1 type = "thin-pool" } }
  lost { segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv9", 0] } }
}
}
"#;

    #[test]
    fn linear_segments_are_concatenated_and_others_reported() {
        let mut img = label::tests::pv_image(META.as_bytes());
        // Extent size 8 sectors = 4096 bytes; extents start at 2048 sectors = 1 MiB.
        img.resize((1 << 20) + 2 * 4096, 0);
        img[(1 << 20)..(1 << 20) + 4096].fill(b'A'); // extent 0
        img[(1 << 20) + 4096..].fill(b'B'); // extent 1
        let src: SharedSource = Arc::new(Mem(img));
        let vol = crate::volume::partition(&src, "p1".into(), 0, src.len(), None, None, Role::Data);
        let a = assemble(&[vol]);
        assert_eq!(a.physical, vec![0]);
        let root = a.logical.iter().find(|v| v.id == "vg0/root").unwrap();
        assert!(root.errors.is_empty(), "{:?}", root.errors);
        assert_eq!(root.size, 8192);
        let mut buf = [0u8; 2];
        root.source.read_at(4095, &mut buf).unwrap();
        assert_eq!(
            &buf, b"BA",
            "LV extent 0 is PV extent 1, LV extent 1 is PV extent 0"
        );
        let pool = a.logical.iter().find(|v| v.id == "vg0/pool").unwrap();
        assert!(
            pool.errors[0]
                .to_string()
                .contains("`thin-pool` is not supported"),
            "{:?}",
            pool.errors
        );
        let lost = a.logical.iter().find(|v| v.id == "vg0/lost").unwrap();
        assert!(
            lost.errors[0].to_string().contains("pv9 is not among"),
            "{:?}",
            lost.errors
        );
    }
}
