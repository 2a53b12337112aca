//! Human-readable report: findings grouped by severity, one line each, then coverage and a
//! summary. Colour only when asked (the binary asks when stdout is a terminal), and only
//! around amiscan's own words: every string an image or AWS chose (target, paths, labels,
//! evidence, secrets, error messages) goes through [`crate::model::escape`] first, so none can move the
//! cursor, erase or add a line, reorder the text or hide itself.

use crate::model::escape::visible_str;
use crate::model::{Report, ScanMode, Severity, VolumeStatus, shown_path};
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
/// Write `report` as text; findings in vendor content ([`crate::model::Finding::is_vendor`])
/// are listed only with `show_vendor`, and counted in each target's summary either way.
pub fn write_text(
    report: &Report,
    out: &mut dyn Write,
    color: bool,
    show_vendor: bool,
) -> std::io::Result<()> {
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
            paint(
                &format!("== {}", visible_str(&t.target)),
                Style::new().bold()
            )
        )?;
        for sev in Severity::ALL_DESC {
            let group: Vec<_> = t
                .findings
                .iter()
                .filter(|f| f.severity == sev && (show_vendor || !f.is_vendor()))
                .collect();
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
                let path = f.path.as_deref().map_or_else(
                    || "(raw)".to_string(),
                    |p| shown_path(p, f.path_bytes.as_deref()),
                );
                let mut loc = format!("{}:{path}", visible_str(&f.volume));
                if let Some(l) = f.line {
                    loc.push_str(&format!(":{l}"));
                } else if let Some(o) = f.offset {
                    loc.push_str(&format!("@{o}"));
                }
                writeln!(
                    out,
                    "  {:<28} {}  {}",
                    visible_str(&f.rule),
                    loc,
                    visible_str(&f.evidence)
                )?;
                if let Some(s) = &f.secret {
                    writeln!(out, "      secret: {}", visible_str(s))?;
                }
            }
        }
        writeln!(out, "volumes:")?;
        for v in &t.volumes {
            let fs = visible_str(v.filesystem.as_deref().unwrap_or("-"));
            let status = match v.status {
                VolumeStatus::Scanned if v.files_shared > 0 => format!(
                    "scanned {} files, {} ({} more files share content read once)",
                    v.files_scanned,
                    human_bytes(v.bytes_scanned),
                    v.files_shared
                ),
                VolumeStatus::Scanned => format!(
                    "scanned {} files, {}",
                    v.files_scanned,
                    human_bytes(v.bytes_scanned)
                ),
                VolumeStatus::NoFilesystem => match &v.note {
                    Some(note) => format!("no filesystem: {note}"),
                    None => "no filesystem (no files)".to_string(),
                },
                VolumeStatus::Container => match &v.note {
                    Some(note) => visible_str(note).into_owned(),
                    None => "LVM physical volume (its logical volumes follow)".to_string(),
                },
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
                .map(|n| format!(" \"{}\"", visible_str(n)))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:<5} {:>10} {:<6}{}  {}",
                visible_str(&v.id),
                human_bytes(v.size),
                fs,
                name,
                status
            )?;
            for e in &v.errors {
                let message = visible_str(&e.message);
                match &e.path {
                    Some(p) => writeln!(
                        out,
                        "        error: {}: {message}",
                        shown_path(p, e.path_bytes.as_deref())
                    )?,
                    None => writeln!(out, "        error: {message}")?,
                }
            }
            for w in &v.warnings {
                writeln!(out, "        warning: {}", visible_str(&w.message))?;
            }
        }
        for sn in &t.snapshots {
            writeln!(
                out,
                "  snapshot {}{} {}: {} blocks listed, {} fetched ({}), {} requests, {} retries, \
                 {} throttled, {} failed, {:.1} s ({:.0} requests/s)",
                visible_str(&sn.snapshot_id),
                sn.device_name
                    .as_deref()
                    .map(|d| format!(" ({})", visible_str(d)))
                    .unwrap_or_default(),
                human_bytes(sn.volume_size),
                sn.blocks_listed,
                sn.blocks_fetched,
                human_bytes(sn.bytes_fetched),
                sn.requests,
                sn.retries,
                sn.throttles,
                sn.failed_blocks,
                sn.elapsed_secs,
                sn.request_rate
            )?;
        }
        for a in &t.accounts {
            writeln!(
                out,
                "  account {} {}: {} requests, {} throttled, {:.0} requests/s achieved \
                 (limit {}/s, now {:.0}/s after {} cuts); {} listings, {} throttled",
                visible_str(&a.account),
                visible_str(&a.region),
                a.requests,
                a.throttles,
                a.achieved_rps,
                a.limit_rps,
                a.current_rps,
                a.cuts,
                a.list_requests,
                a.list_throttles
            )?;
        }
        for e in &t.errors {
            writeln!(out, "  error: {}", visible_str(&e.message))?;
        }
        for w in &t.warnings {
            writeln!(out, "  warning: {}", visible_str(&w.message))?;
        }
        let mut counts = vec![];
        let own = |f: &&crate::model::Finding| !f.is_vendor();
        for sev in Severity::ALL_DESC {
            let n = t
                .findings
                .iter()
                .filter(own)
                .filter(|f| f.severity == sev)
                .count();
            if n > 0 {
                counts.push(format!("{n} {sev}"));
            }
        }
        let total = t.findings.iter().filter(own).count();
        let mut summary = if counts.is_empty() {
            "no findings".to_string()
        } else {
            format!("{total} findings ({})", counts.join(", "))
        };
        if t.vendor > 0 {
            summary.push_str(&format!(
                "; {} in vendor content shipped unmodified ({})",
                t.vendor,
                if show_vendor {
                    "listed as info"
                } else {
                    "not listed: --show-vendor"
                }
            ));
        }
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
        // Volumes read only as raw bytes: their content signatures ran, but nothing that
        // needs a path (shadow, histories, sshd, sudo, credential files) could.
        let raw: Vec<String> = t
            .volumes
            .iter()
            .filter(|v| v.status == VolumeStatus::ScannedRaw)
            .map(|v| visible_str(&v.id).into_owned())
            .collect();
        let raw = if raw.is_empty() {
            String::new()
        } else {
            format!(
                "; scanned raw: {} (content signatures only; path-based checks could not run \
                 there)",
                raw.join(", ")
            )
        };
        writeln!(
            out,
            "summary: {summary}{suppressed}; {completeness}{quick}{raw}"
        )?;
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
            path_bytes: None,
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
            provenance: None,
        };
        let mut t = TargetReport {
            target: "img".into(),
            mode: crate::model::ScanMode::Full,
            complete: true,
            container: None,
            errors: vec![],
            warnings: vec![],
            snapshots: vec![],
            accounts: vec![],
            volumes: vec![],
            findings: vec![f("a", Severity::High), f("b", Severity::Critical)],
            suppressed: 0,
            vendor: 0,
        };
        t.finalize();
        let r = Report {
            version: 1,
            tool: "amiscan".into(),
            targets: vec![t],
        };
        let mut out = vec![];
        write_text(&r, &mut out, false, false).unwrap();
        let s = String::from_utf8(out).unwrap();
        let crit = s.find("CRITICAL (1)").unwrap();
        let high = s.find("HIGH (1)").unwrap();
        assert!(crit < high);
        assert!(s.contains("p1:/etc/x:3"));
        assert!(s.contains("summary: 2 findings (1 critical, 1 high); scan complete"));
    }

    #[test]
    fn vendor_findings_are_counted_and_listed_only_on_request() {
        let mut vendor = Finding {
            rule: "pem-private-key".into(),
            severity: Severity::Info,
            title: "t".into(),
            volume: "disk".into(),
            path: Some("/usr/share/doc/x/key.pem".into()),
            path_bytes: None,
            line: None,
            offset: Some(0),
            evidence: "-----BEGIN… (shipped unmodified by x 1.0-1)".into(),
            fingerprint: "sha256:01".into(),
            remediation: "r".into(),
            secret: None,
            provenance: Some(crate::model::Provenance {
                source: "dpkg".into(),
                package: "x".into(),
                version: Some("1.0-1".into()),
                state: crate::model::FileState::Unmodified,
                derived_from: None,
            }),
        };
        let mut own = vendor.clone();
        own.provenance = None;
        own.path = Some("/etc/y".into());
        let mut t = TargetReport {
            target: "img".into(),
            findings: vec![vendor.clone(), own],
            ..TargetReport::default()
        };
        t.finalize();
        assert_eq!(t.vendor, 1);
        let r = Report {
            version: 1,
            tool: "amiscan".into(),
            targets: vec![t],
        };
        let text = |show| {
            let mut out = vec![];
            write_text(&r, &mut out, false, show).unwrap();
            String::from_utf8(out).unwrap()
        };
        let hidden = text(false);
        assert!(!hidden.contains("/usr/share/doc/x/key.pem"), "{hidden}");
        assert!(hidden.contains("INFO (1)"), "{hidden}");
        assert!(hidden.contains(
            "summary: 1 findings (1 info); 1 in vendor content shipped unmodified (not listed: --show-vendor)"
        ), "{hidden}");
        let shown = text(true);
        assert!(shown.contains("disk:/usr/share/doc/x/key.pem"), "{shown}");
        assert!(shown.contains("INFO (2)"), "{shown}");
        // A vendor finding never fails a scan, even at --fail-on info.
        vendor.severity = Severity::Critical;
        let t = TargetReport {
            findings: vec![vendor],
            ..TargetReport::default()
        };
        assert_eq!(t.max_severity(), None);
    }
}
