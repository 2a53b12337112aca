//! The output of `amiscan sweep` and `amiscan audit`: a line per image as it is done and a
//! summary (text, or JSON Lines with a `type` of `image` / `summary`), and the per-region audit
//! (text, or pretty JSON). Writers only: which exit code an outcome maps to is the command's.
//! Every string AWS returned (ids, states, messages quoting image names) is shown through
//! [`crate::model::escape`] in text and with invisible characters escaped in JSON.

use crate::model::Severity;
use crate::model::escape::{json_safe, visible_str};
use crate::model::fleet::{ImageOutcome, ImageStatus, RegionAudit, SweepSummary};
use std::io::Write;

/// One JSON object on one line, with `"type": kind` added.
fn write_jsonl_typed(v: serde_json::Value, kind: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let mut v = v;
    if let Some(m) = v.as_object_mut() {
        m.insert("type".into(), kind.into());
    }
    writeln!(out, "{}", json_safe(&v.to_string()))
}

/// A swept image as one JSON line (`"type": "image"`).
pub fn write_sweep_image_jsonl(o: &ImageOutcome, out: &mut dyn Write) -> std::io::Result<()> {
    write_jsonl_typed(serde_json::to_value(o).unwrap_or_default(), "image", out)
}

/// A swept image as one text line: region, image, `PUBLIC`, its status against `fail_on`.
pub fn write_sweep_image_text(
    o: &ImageOutcome,
    fail_on: Severity,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let status = match o.status {
        ImageStatus::Clean => "clean".to_string(),
        ImageStatus::Findings => format!(
            "FINDINGS {} at or above {fail_on} (most severe {})",
            o.at_or_above_fail_on,
            o.max_severity.map(|s| s.as_str()).unwrap_or("-")
        ),
        ImageStatus::Incomplete => "INCOMPLETE".into(),
        ImageStatus::Failed => "FAILED".into(),
    };
    writeln!(
        out,
        "{:<14} {:<22} {}{}{}{}",
        visible_str(&o.region),
        visible_str(&o.image_id),
        if o.public { "PUBLIC " } else { "" },
        status,
        if o.cached { " (cached)" } else { "" },
        o.error
            .as_deref()
            .map(|e| format!(": {}", visible_str(e)))
            .unwrap_or_default()
    )
}

/// The sweep's summary as one JSON line (`"type": "summary"`).
pub fn write_sweep_summary_jsonl(s: &SweepSummary, out: &mut dyn Write) -> std::io::Result<()> {
    let v = serde_json::to_value(s).map_err(std::io::Error::other)?;
    write_jsonl_typed(v, "summary", out)
}

/// The sweep's summary as text: the counts, the public images with findings, the regions not swept.
pub fn write_sweep_summary_text(
    summary: &SweepSummary,
    fail_on: Severity,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "\n{} image(s) in {} region(s): {} scanned, {} from the state file; {} clean, {} with findings at or above {}, {} incomplete, {} failed{}",
        summary.images,
        summary.regions.len(),
        summary.scanned,
        summary.cached,
        summary.clean,
        summary.with_findings,
        fail_on,
        summary.incomplete,
        summary.failed,
        if summary.interrupted {
            format!("; interrupted, {} not reached", summary.not_reached)
        } else {
            String::new()
        }
    )?;
    if summary.public_with_findings > 0 {
        writeln!(
            out,
            "WORST: {} PUBLIC image(s) with findings at or above {}: make them private now",
            summary.public_with_findings, fail_on
        )?;
    }
    for e in &summary.region_errors {
        writeln!(out, "region not swept: {}", visible_str(e))?;
    }
    Ok(())
}

/// The audit of every region as pretty JSON.
pub fn write_audit_json(regions: &[RegionAudit], out: &mut dyn Write) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(regions).map_err(std::io::Error::other)?;
    writeln!(out, "{}", json_safe(&text))
}

/// The audit of every region as text: block public access, Allowed AMIs, public images,
/// instances and their image class, warnings and errors.
pub fn write_audit_text(regions: &[RegionAudit], out: &mut dyn Write) -> std::io::Result<()> {
    for r in regions {
        writeln!(out, "== {}", visible_str(&r.region))?;
        writeln!(
            out,
            "image block public access: {}",
            visible_str(&r.block_public_access)
        )?;
        writeln!(
            out,
            "Allowed AMIs: {} {}",
            visible_str(&r.allowed_images.state),
            visible_str(&format!("{:?}", r.allowed_images.image_providers))
        )?;
        for p in &r.public_images {
            writeln!(
                out,
                "public image {} : {}",
                visible_str(&p.image_id),
                visible_str(&p.scan)
            )?;
        }
        for i in &r.instances {
            writeln!(
                out,
                "instance {} ({}) {} owner {} : {}",
                visible_str(&i.instance_id),
                visible_str(&i.state),
                visible_str(&i.image_id),
                visible_str(i.image_owner_id.as_deref().unwrap_or("?")),
                i.class.as_str()
            )?;
        }
        for w in &r.warnings {
            writeln!(out, "warning: {}", visible_str(w))?;
        }
        for e in &r.errors {
            writeln!(out, "error: {}", visible_str(e))?;
        }
    }
    Ok(())
}
