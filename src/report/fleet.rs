//! The output of `amiscan sweep` and `amiscan audit`: a line per image as it is done and a
//! summary (text, or JSON Lines with a `type` of `image` / `summary`), and the per-region audit
//! (text, or pretty JSON). Writers only: which exit code an outcome maps to is the command's.
//! Every string AWS returned (ids, states, messages quoting image names) is shown through
//! [`crate::model::escape`] in text and with invisible characters escaped in JSON.

use crate::model::escape::{json_safe, visible_str};
use crate::model::fleet::{ImageOutcome, ImageStatus, RegionAudit, SweepSummary};
use crate::model::{Finding, Report, ScanError, Severity, TargetReport};
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
        ImageStatus::NotScanned => "NOT SCANNED".into(),
    };
    writeln!(
        out,
        "{}{:<14} {:<22} {}{}{}{}",
        o.account
            .as_deref()
            .map(|a| format!("{:<13}", visible_str(a)))
            .unwrap_or_default(),
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
    if let Some(sh) = &summary.shard {
        writeln!(out, "shard {}", visible_str(sh))?;
    }
    if summary.report_only && summary.not_reached > 0 {
        writeln!(
            out,
            "{} image(s) have no complete result in the state: not scanned yet, or failed",
            summary.not_reached
        )?;
    }
    for e in &summary.region_errors {
        writeln!(out, "region not swept: {}", visible_str(e))?;
    }
    for e in &summary.state_errors {
        writeln!(out, "state object not readable: {}", visible_str(e))?;
    }
    Ok(())
}

/// Counts of one account and region.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupCounts {
    /// Images.
    pub images: usize,
    /// Clean.
    pub clean: usize,
    /// With findings at or above `--fail-on`.
    pub findings: usize,
    /// Incomplete or failed.
    pub incomplete: usize,
    /// No stored result (`--report`).
    pub not_scanned: usize,
}

/// The outcomes counted by (account, region), in order.
pub fn group_by_account_region(
    outcomes: &[ImageOutcome],
) -> std::collections::BTreeMap<(String, String), GroupCounts> {
    let mut m: std::collections::BTreeMap<(String, String), GroupCounts> = Default::default();
    for o in outcomes {
        let g = m
            .entry((o.account.clone().unwrap_or_default(), o.region.clone()))
            .or_default();
        g.images += 1;
        match o.status {
            ImageStatus::Clean => g.clean += 1,
            ImageStatus::Findings => g.findings += 1,
            ImageStatus::Incomplete | ImageStatus::Failed => g.incomplete += 1,
            ImageStatus::NotScanned => g.not_scanned += 1,
        }
    }
    m
}

/// The per-account, per-region table of a sweep (text).
pub fn write_sweep_groups_text(
    outcomes: &[ImageOutcome],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let groups = group_by_account_region(outcomes);
    if groups.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n{:<14} {:<14} {:>6} {:>6} {:>8} {:>10} {:>11}",
        "account", "region", "images", "clean", "findings", "incomplete", "not-scanned"
    )?;
    for ((account, region), g) in &groups {
        writeln!(
            out,
            "{:<14} {:<14} {:>6} {:>6} {:>8} {:>10} {:>11}",
            visible_str(if account.is_empty() { "-" } else { account }),
            visible_str(region),
            g.images,
            g.clean,
            g.findings,
            g.incomplete,
            g.not_scanned
        )?;
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
        match &r.account {
            Some(a) => writeln!(out, "== {} {}", visible_str(a), visible_str(&r.region))?,
            None => writeln!(out, "== {}", visible_str(&r.region))?,
        }
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

/// A sweep report as a [`Report`] (for SARIF): one target per image, named
/// `<account>/<region>/<ami-id>` (`<region>/<ami-id>` without an account), with the image's
/// stored findings; an image without a stored result is an incomplete target that says so.
pub fn sweep_report(items: &[(&ImageOutcome, Option<&[Finding]>)]) -> Report {
    let targets = items
        .iter()
        .map(|(o, findings)| {
            let target = match &o.account {
                Some(a) => format!("{a}/{}/{}", o.region, o.image_id),
                None => format!("{}/{}", o.region, o.image_id),
            };
            let complete = findings.is_some();
            let errors = if complete {
                Vec::new()
            } else {
                vec![ScanError {
                    path: None,
                    path_bytes: None,
                    message: o
                        .error
                        .clone()
                        .unwrap_or_else(|| "no complete result in the state".into()),
                }]
            };
            let findings = findings.map(<[Finding]>::to_vec).unwrap_or_default();
            TargetReport {
                target,
                complete,
                errors,
                vendor: findings.iter().filter(|f| f.is_vendor()).count() as u64,
                findings,
                ..TargetReport::default()
            }
        })
        .collect();
    Report {
        version: 1,
        tool: format!("amiscan {}", env!("CARGO_PKG_VERSION")),
        targets,
    }
}
