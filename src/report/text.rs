//! Human-readable report: findings grouped by severity, one line each, then coverage and a
//! summary. Colour only when asked (the binary asks when stdout is a terminal).

use crate::model::{Report, ScanMode, Severity, VolumeStatus};
use owo_colors::{OwoColorize, Style};
use std::io::Write;

fn style(sev: Severity) -> Style {
    match sev {
        Severity::Critical => Style::new().bright_red().bold(),
        Severity::High => Style::new().red(),
        Severity::Medium => Style::new().yellow(),
        Severity::Low => Style::new().cyan(),
        Severity::Info => Style::new().dimmed(),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Write the text report.
pub fn write_text(report: &Report, out: &mut dyn Write, color: bool) -> std::io::Result<()> {
    let paint = |s: &str, st: Style| -> String {
        if color {
            s.style(st).to_string()
        } else {
            s.to_string()
        }
    };
    for t in &report.targets {
        writeln!(
            out,
            "{}",
            paint(&format!("== {}", t.target), Style::new().bold())
        )?;
        for sev in Severity::ALL_DESC {
            let group: Vec<_> = t.findings.iter().filter(|f| f.severity == sev).collect();
            if group.is_empty() {
                continue;
            }
            writeln!(
                out,
                "{} ({})",
                paint(&sev.as_str().to_uppercase(), style(sev)),
                group.len()
            )?;
            for f in group {
                let mut loc = format!("{}:{}", f.volume, f.path.as_deref().unwrap_or("(raw)"));
                if let Some(l) = f.line {
                    loc.push_str(&format!(":{l}"));
                } else if let Some(o) = f.offset {
                    loc.push_str(&format!("@{o}"));
                }
                writeln!(out, "  {:<28} {}  {}", f.rule, loc, f.evidence)?;
                if let Some(s) = &f.secret {
                    writeln!(out, "      secret: {s}")?;
                }
            }
        }
        writeln!(out, "volumes:")?;
        for v in &t.volumes {
            let fs = v.filesystem.as_deref().unwrap_or("-");
            let status = match v.status {
                VolumeStatus::Scanned => format!(
                    "scanned {} files, {}",
                    v.files_scanned,
                    human_bytes(v.bytes_scanned)
                ),
                VolumeStatus::NoFilesystem => match &v.note {
                    Some(note) => format!("no filesystem: {note}"),
                    None => "no filesystem (no files)".to_string(),
                },
                VolumeStatus::Container => {
                    "LVM physical volume (its logical volumes follow)".to_string()
                }
                VolumeStatus::ScannedRaw => paint(
                    &format!(
                        "SCANNED RAW {} (no file paths)",
                        human_bytes(v.bytes_scanned)
                    ),
                    Style::new().yellow().bold(),
                ),
                VolumeStatus::NotScanned => paint("NOT SCANNED", Style::new().red().bold()),
            };
            let name = v
                .partition_name
                .as_deref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:<5} {:>10} {:<6}{}  {}",
                v.id,
                human_bytes(v.size),
                fs,
                name,
                status
            )?;
            for e in &v.errors {
                match &e.path {
                    Some(p) => writeln!(out, "        error: {p}: {}", e.message)?,
                    None => writeln!(out, "        error: {}", e.message)?,
                }
            }
        }
        for sn in &t.snapshots {
            writeln!(
                out,
                "  snapshot {}{} {}: {} blocks listed, {} fetched ({}), {} requests, {} retries, \
                 {} throttled, {} failed, {:.1} s",
                sn.snapshot_id,
                sn.device_name
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
                human_bytes(sn.volume_size),
                sn.blocks_listed,
                sn.blocks_fetched,
                human_bytes(sn.bytes_fetched),
                sn.requests,
                sn.retries,
                sn.throttles,
                sn.failed_blocks,
                sn.elapsed_secs
            )?;
        }
        for e in &t.errors {
            writeln!(out, "  error: {}", e.message)?;
        }
        for w in &t.warnings {
            writeln!(out, "  warning: {}", w.message)?;
        }
        let mut counts = vec![];
        for sev in Severity::ALL_DESC {
            let n = t.findings.iter().filter(|f| f.severity == sev).count();
            if n > 0 {
                counts.push(format!("{n} {sev}"));
            }
        }
        let summary = if counts.is_empty() {
            "no findings".to_string()
        } else {
            format!("{} findings ({})", t.findings.len(), counts.join(", "))
        };
        let completeness = if t.complete {
            paint("scan complete", Style::new().green())
        } else {
            paint(
                "scan INCOMPLETE: some data could not be read (see errors above)",
                Style::new().red().bold(),
            )
        };
        let quick = if t.mode == ScanMode::Quick {
            "; quick scan: only well-known paths were read"
        } else {
            ""
        };
        let suppressed = if t.suppressed > 0 {
            format!("; {} suppressed by the baseline", t.suppressed)
        } else {
            String::new()
        };
        writeln!(out, "summary: {summary}{suppressed}; {completeness}{quick}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, TargetReport};

    #[test]
    fn text_groups_by_severity_and_summarises() {
        let f = |rule: &str, sev| Finding {
            rule: rule.into(),
            severity: sev,
            title: "t".into(),
            volume: "p1".into(),
            path: Some("/etc/x".into()),
            line: Some(3),
            offset: Some(10),
            evidence: "AKIA…[20 chars]".into(),
            fingerprint: "sha256:00".into(),
            remediation: "r".into(),
            secret: None,
        };
        let mut t = TargetReport {
            target: "img".into(),
            mode: crate::model::ScanMode::Full,
            complete: true,
            errors: vec![],
            warnings: vec![],
            snapshots: vec![],
            volumes: vec![],
            findings: vec![f("a", Severity::High), f("b", Severity::Critical)],
            suppressed: 0,
        };
        t.finalize();
        let r = Report {
            version: 1,
            tool: "amiscan".into(),
            targets: vec![t],
        };
        let mut out = vec![];
        write_text(&r, &mut out, false).unwrap();
        let s = String::from_utf8(out).unwrap();
        let crit = s.find("CRITICAL (1)").unwrap();
        let high = s.find("HIGH (1)").unwrap();
        assert!(crit < high);
        assert!(s.contains("p1:/etc/x:3"));
        assert!(s.contains("summary: 2 findings (1 critical, 1 high); scan complete"));
    }
}
