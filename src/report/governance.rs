//! The output of `amiscan inventory` and `amiscan allowlist`: per account and region, the
//! dependencies at risk and the drift first, then every image with its class, deprecation, scan
//! result and the workloads on it (text, or JSON `version` 1); the allowlist proposal, simulation
//! and settings diff. Writers only. Every string AWS returned is shown through
//! [`crate::model::escape`] in text and with invisible characters escaped in JSON.

use crate::model::escape::{json_safe, visible_str};
use crate::model::governance::{Blocked, ImageCriterion, RegionInventory, SettingsChange};
use serde_json::json;
use std::io::Write;

/// The inventory as pretty JSON: `{"version":1,"generated_at":...,"regions":[...]}`.
pub fn write_inventory_json(
    regions: &[RegionInventory],
    generated_at: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let v = json!({ "version": 1, "generated_at": generated_at, "regions": regions });
    let text = serde_json::to_string_pretty(&v).map_err(std::io::Error::other)?;
    writeln!(out, "{}", json_safe(&text))
}

/// The inventory as text.
pub fn write_inventory_text(
    regions: &[RegionInventory],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for r in regions {
        writeln!(
            out,
            "== account {} region {}",
            visible_str(&r.account),
            visible_str(&r.region)
        )?;
        match &r.allowed_images {
            Some(a) => writeln!(
                out,
                "Allowed AMIs: {} {}",
                visible_str(&a.state),
                visible_str(&serde_json::to_string(&a.image_criteria).unwrap_or_default())
            )?,
            None => writeln!(out, "Allowed AMIs: unknown")?,
        }
        for a in &r.at_risk {
            writeln!(
                out,
                "AT RISK {} {} -> {} [{}]",
                a.kind.as_str(),
                visible_str(&a.workload),
                visible_str(&a.image_id),
                a.reasons.join(", ")
            )?;
            for w in &a.why {
                writeln!(out, "  {}", visible_str(w))?;
            }
            writeln!(out, "  fix: {}", visible_str(&a.fix))?;
        }
        for d in &r.drift {
            writeln!(
                out,
                "DRIFT {} : {} ({} days old, {} version(s) behind {}) used by {}",
                visible_str(&d.lineage),
                visible_str(&d.image_id),
                d.age_days.map_or("?".to_string(), |a| a.to_string()),
                d.versions_behind,
                visible_str(&d.latest_image_id),
                visible_str(&d.workloads.join(", "))
            )?;
        }
        for i in &r.images {
            let mut flags = Vec::new();
            if !i.exists {
                flags.push("gone".to_string());
            }
            if i.deprecated {
                flags.push(format!(
                    "deprecated {}",
                    i.deprecation_time.as_deref().unwrap_or("")
                ));
            } else if let Some(d) = &i.deprecation_time {
                flags.push(format!("deprecates {d}"));
            }
            if i.public == Some(true) {
                flags.push("public".into());
            }
            writeln!(
                out,
                "image {} {:?} owner {} : {} scan {}{}",
                visible_str(&i.image_id),
                visible_str(i.name.as_deref().unwrap_or("")),
                visible_str(
                    i.owner_alias
                        .as_deref()
                        .or(i.owner_id.as_deref())
                        .unwrap_or("?")
                ),
                i.class.as_str(),
                visible_str(&i.scan.status),
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", flags.join(", "))
                }
            )?;
            for &n in &i.used_by {
                if let Some(w) = r.workloads.get(n) {
                    writeln!(
                        out,
                        "  {} {}{} : {}",
                        w.kind.as_str(),
                        visible_str(&w.id),
                        w.name
                            .as_deref()
                            .map(|n| format!(" ({})", visible_str(n)))
                            .unwrap_or_default(),
                        visible_str(&w.detail)
                    )?;
                }
            }
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

/// Criteria in the EC2 API's shape: `{"ImageCriteria":[...]}`.
pub fn write_criteria_json(
    criteria: &[ImageCriterion],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&json!({ "ImageCriteria": criteria }))
        .map_err(std::io::Error::other)?;
    writeln!(out, "{}", json_safe(&text))
}

/// The simulation as text: one line per launch source that would be blocked.
pub fn write_blocked_text(blocked: &[Blocked], out: &mut dyn Write) -> std::io::Result<()> {
    if blocked.is_empty() {
        writeln!(
            out,
            "no launch template, Auto Scaling group or launch configuration would be blocked"
        )?;
    }
    for b in blocked {
        writeln!(
            out,
            "BLOCKED {} {} {} {} -> {} (owner {}): {}",
            visible_str(&b.account),
            visible_str(&b.region),
            b.kind.as_str(),
            visible_str(&b.workload),
            visible_str(&b.image_id),
            visible_str(b.owner_id.as_deref().unwrap_or("?")),
            visible_str(&b.reason)
        )?;
    }
    Ok(())
}

/// A settings diff as text.
pub fn write_changes_text(
    changes: &[SettingsChange],
    dry_run: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if changes.is_empty() {
        writeln!(out, "no change: the settings are already as asked")?;
    }
    for c in changes {
        writeln!(
            out,
            "{} {} {} {}: {} -> {}",
            if dry_run { "would call" } else { "called" },
            visible_str(&c.account),
            visible_str(&c.region),
            visible_str(&c.action),
            visible_str(&c.from.to_string()),
            visible_str(&c.to.to_string())
        )?;
    }
    Ok(())
}
