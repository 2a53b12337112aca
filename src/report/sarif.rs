//! SARIF 2.1.0 output (`--format sarif`) for code-scanning dashboards (GitHub code scanning, Azure
//! DevOps, `sarif-tools`).
//!
//! One `run` for the whole report:
//!
//! - `tool.driver.rules` is the detector's whole rule catalog (plus any rule id a finding carries
//!   that the catalog does not list, such as `archive-bomb`), each with its default `level`
//!   (critical/high → `error`, medium → `warning`, low/info → `note`), its remediation as `help`,
//!   and `properties.security-severity` (critical 9.5, high 8.0, medium 5.5, low 3.0, info 0.0), the
//!   score GitHub code scanning turns into its own severity.
//! - one `result` per finding: `ruleId`/`ruleIndex`, `level` from the finding's own severity, the
//!   title and the **redacted** evidence as the message (the secret in clear only appears, as
//!   `properties.secret`, when the scan ran with `--show-secrets`), and
//!   `partialFingerprints["amiscanFingerprint/v1"]` = the finding's `sha256:` fingerprint.
//! - the location URI is `<target>/<volume>/<path>`, percent-encoded, with no `uriBaseId`: for
//!   example `ami-0123456789abcdef0/xvda:p1/etc/shadow` or `images/disk.img/p2/root/.ssh/id_rsa`
//!   (a target given as an absolute path stays absolute: `/srv/disk.img/p2/...`). A `:` inside the
//!   target is encoded as `%3A` so it never reads as a URI scheme. A raw finding (no path) points at
//!   `<target>/<volume>` with `region.byteOffset`; otherwise `region.startLine` when the line is
//!   known, else `region.byteOffset` when the offset is.
//! - `invocations[0].executionSuccessful` is true only when every target was scanned completely;
//!   every target error, volume error and warning is a `toolExecutionNotification`, and each
//!   incomplete target adds an error notification with descriptor id `scan-incomplete`.
//! - `run.properties.targets` lists each target with `complete`, `mode` and `suppressed` (findings
//!   left out by a baseline).

use crate::model::{
    Finding, Report, RuleInfo, RuleKind, ScanError, Severity, TargetReport, exact_path,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;

/// The SARIF version written.
pub const SARIF_VERSION: &str = "2.1.0";
/// The JSON schema URI written in `$schema`.
pub const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// Key of the fingerprint in each result's `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "amiscanFingerprint/v1";

/// SARIF `level` for a severity.
pub fn level(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning `security-severity` score for a severity (a string, as GitHub expects).
pub fn security_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// Write the report as a SARIF 2.1.0 log (pretty JSON).
pub fn write_sarif(
    report: &Report,
    rules: &[RuleInfo],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let text =
        serde_json::to_string_pretty(&to_sarif(report, rules)).map_err(std::io::Error::other)?;
    out.write_all(crate::model::escape::json_safe(&text).as_bytes())?;
    out.write_all(b"\n")
}

/// The report as a SARIF 2.1.0 log.
pub fn to_sarif(report: &Report, catalog: &[RuleInfo]) -> Value {
    let mut rules: Vec<Value> = catalog.iter().map(rule_descriptor).collect();
    let mut index: HashMap<String, usize> = catalog
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    let mut results = vec![];
    for t in &report.targets {
        for f in &t.findings {
            let i = match index.get(&f.rule) {
                Some(&i) => i,
                None => {
                    rules.push(adhoc_descriptor(f));
                    let i = rules.len().saturating_sub(1);
                    index.insert(f.rule.clone(), i);
                    i
                }
            };
            results.push(result(t, f, i));
        }
    }
    let mut notifications = vec![];
    for t in &report.targets {
        target_notifications(t, &mut notifications);
    }
    let targets: Vec<Value> = report
        .targets
        .iter()
        .map(|t| {
            json!({
                "target": t.target,
                "complete": t.complete,
                "mode": t.mode,
                "suppressed": t.suppressed,
            })
        })
        .collect();
    let mut driver = Map::new();
    driver.insert("name".into(), json!("amiscan"));
    driver.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    driver.insert("semanticVersion".into(), json!(env!("CARGO_PKG_VERSION")));
    if let Some(uri) = information_uri() {
        driver.insert("informationUri".into(), json!(uri));
    }
    driver.insert("rules".into(), Value::Array(rules));
    json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": driver},
            "invocations": [{
                "executionSuccessful": report.complete(),
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {"targets": targets},
        }],
    })
}

/// The project's home page, from `repository` (or `homepage`) in Cargo.toml.
fn information_uri() -> Option<&'static str> {
    [env!("CARGO_PKG_REPOSITORY"), env!("CARGO_PKG_HOMEPAGE")]
        .into_iter()
        .find(|u| u.starts_with("https://"))
}

/// `pem-private-key` → `PemPrivateKey` (SARIF's `name` is an identifier-like friendly name).
fn pascal_case(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn descriptor(
    id: &str,
    title: &str,
    sev: Severity,
    kind: &str,
    remediation: &str,
    full: String,
) -> Value {
    json!({
        "id": id,
        "name": pascal_case(id),
        "shortDescription": {"text": title},
        "fullDescription": {"text": full},
        "help": {
            "text": remediation,
            "markdown": format!("**{title}** (default severity: {sev})\n\n**Remediation:** {remediation}"),
        },
        "defaultConfiguration": {"level": level(sev)},
        "properties": {
            "security-severity": security_severity(sev),
            "tags": ["security", kind],
            "severity": sev,
        },
    })
}

fn rule_descriptor(r: &RuleInfo) -> Value {
    let kind = match r.kind {
        RuleKind::Signature => "signature",
        RuleKind::Check => "check",
    };
    let full = format!(
        "{}. Default severity: {}. Found by a {} ({}). Remediation: {}",
        r.title.trim_end_matches('.'),
        r.severity,
        kind,
        if r.kind == RuleKind::Signature {
            "a pattern over file contents"
        } else {
            "code that judges a file"
        },
        r.remediation
    );
    descriptor(&r.id, &r.title, r.severity, kind, &r.remediation, full)
}

/// A descriptor for a rule id that is not in the catalog (made by the scanner, not a detector).
fn adhoc_descriptor(f: &Finding) -> Value {
    let full = format!(
        "{}. Remediation: {}",
        f.title.trim_end_matches('.'),
        f.remediation
    );
    descriptor(
        &f.rule,
        &f.title,
        f.severity,
        "scanner",
        &f.remediation,
        full,
    )
}

/// Percent-encode for a URI path: keep unreserved, sub-delims, `@` and `/` (and `:` unless
/// `colon` is false).
fn encode(s: &[u8], colon: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        let keep =
            b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@/".contains(&b) || (colon && b == b':');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<target>/<volume>[/<path>]`, percent-encoded (see the module documentation). `path` is
/// the exact bytes of the path (a file name need not be UTF-8: [`Finding::exact_path`]).
pub fn location_uri(target: &str, volume: &str, path: Option<&[u8]>) -> String {
    let target = target.strip_prefix("./").unwrap_or(target);
    let mut uri = encode(target.trim_end_matches('/').as_bytes(), false);
    if !volume.is_empty() {
        uri.push('/');
        uri.push_str(&encode(volume.as_bytes(), true));
    }
    if let Some(p) = path {
        let start = p.iter().position(|&b| b != b'/').unwrap_or(p.len());
        uri.push('/');
        uri.push_str(&encode(&p[start..], true));
    }
    uri
}

fn physical_location(uri: String, line: Option<u64>, offset: Option<u64>) -> Value {
    let mut loc = Map::new();
    loc.insert("artifactLocation".into(), json!({ "uri": uri }));
    if let Some(l) = line.filter(|&l| l >= 1) {
        loc.insert("region".into(), json!({ "startLine": l }));
    } else if let Some(o) = offset {
        loc.insert("region".into(), json!({ "byteOffset": o }));
    }
    json!({ "physicalLocation": loc })
}

fn result(t: &TargetReport, f: &Finding, rule_index: usize) -> Value {
    let uri = location_uri(&t.target, &f.volume, f.exact_path().as_deref());
    let mut props = Map::new();
    props.insert("severity".into(), json!(f.severity));
    props.insert("target".into(), json!(t.target));
    props.insert("volume".into(), json!(f.volume));
    if let Some(p) = &f.path {
        props.insert("path".into(), json!(p));
    }
    if let Some(b) = &f.path_bytes {
        props.insert("path_bytes".into(), json!(b));
    }
    if let Some(o) = f.offset {
        props.insert("offset".into(), json!(o));
    }
    props.insert("fingerprint".into(), json!(f.fingerprint));
    if let Some(s) = &f.secret {
        // Only present when the user asked for secrets in clear (`--show-secrets`).
        props.insert("secret".into(), json!(s));
    }
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(f.rule));
    r.insert("ruleIndex".into(), json!(rule_index));
    r.insert("level".into(), json!(level(f.severity)));
    r.insert(
        "message".into(),
        json!({ "text": format!("{}: {}", f.title, f.evidence) }),
    );
    r.insert(
        "locations".into(),
        json!([physical_location(uri, f.line, f.offset)]),
    );
    r.insert(
        "partialFingerprints".into(),
        json!({ FINGERPRINT_KEY: f.fingerprint }),
    );
    r.insert("properties".into(), Value::Object(props));
    Value::Object(r)
}

fn notification(level: &str, text: String, location: Option<Value>) -> Value {
    let mut n = Map::new();
    n.insert("level".into(), json!(level));
    n.insert("message".into(), json!({ "text": text }));
    if let Some(l) = location {
        n.insert("locations".into(), json!([l]));
    }
    Value::Object(n)
}

fn target_notifications(t: &TargetReport, out: &mut Vec<Value>) {
    let mut push = |level: &str, volume: &str, e: &ScanError| {
        let place = match (volume, &e.path) {
            ("", None) => t.target.clone(),
            ("", Some(p)) => format!("{}:{p}", t.target),
            (v, None) => format!("{} {v}", t.target),
            (v, Some(p)) => format!("{} {v}:{p}", t.target),
        };
        let loc = (!volume.is_empty() || e.path.is_some()).then(|| {
            physical_location(
                location_uri(
                    &t.target,
                    volume,
                    e.path
                        .as_deref()
                        .map(|p| exact_path(p, e.path_bytes.as_deref()))
                        .as_deref(),
                ),
                None,
                None,
            )
        });
        out.push(notification(level, format!("{place}: {}", e.message), loc));
    };
    for e in &t.errors {
        push("error", "", e);
    }
    for v in &t.volumes {
        for e in &v.errors {
            push("error", &v.id, e);
        }
    }
    for w in &t.warnings {
        push("warning", "", w);
    }
    for v in &t.volumes {
        for w in &v.warnings {
            push("warning", &v.id, w);
        }
    }
    if !t.complete {
        let mut n = notification(
            "error",
            format!(
                "{}: scan incomplete: some data could not be read or parsed, so findings may be missing",
                t.target
            ),
            None,
        );
        if let Value::Object(m) = &mut n {
            m.insert("descriptor".into(), json!({ "id": "scan-incomplete" }));
        }
        out.push(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ScanMode, VolumeReport, VolumeStatus};

    fn finding(rule: &str, sev: Severity, path: Option<&str>, line: Option<u64>) -> Finding {
        Finding {
            path_bytes: None,
            rule: rule.into(),
            severity: sev,
            title: "A title".into(),
            volume: "xvda:p1".into(),
            path: path.map(Into::into),
            line,
            offset: Some(7),
            evidence: "AKIA…[20 chars]".into(),
            fingerprint: "sha256:abcd".into(),
            remediation: "Remove it.".into(),
            secret: None,
            provenance: None,
        }
    }

    fn catalog() -> Vec<RuleInfo> {
        vec![RuleInfo {
            id: "aws-access-key-id".into(),
            title: "AWS access key id".into(),
            severity: Severity::High,
            kind: RuleKind::Signature,
            remediation: "Rotate the key.".into(),
            family: "aws".into(),
            files: "any file".into(),
        }]
    }

    fn report() -> Report {
        Report {
            version: 1,
            tool: "amiscan test".into(),
            targets: vec![TargetReport {
                target: "ami-0123456789abcdef0".into(),
                mode: ScanMode::Full,
                complete: false,
                container: None,
                volumes: vec![VolumeReport {
                    id: "xvda:p1".into(),
                    offset: 0,
                    size: 1,
                    partition_name: None,
                    partition_type: None,
                    filesystem: Some("ext4".into()),
                    status: VolumeStatus::Scanned,
                    files_scanned: 1,
                    files_shared: 0,
                    bytes_scanned: 1,
                    unallocated_bytes_scanned: None,
                    quick_roots: Vec::new(),
                    warnings: Vec::new(),
                    note: None,
                    errors: vec![ScanError {
                        path_bytes: None,
                        path: Some("/var/bad".into()),
                        message: "read failed".into(),
                    }],
                }],
                findings: vec![
                    finding(
                        "aws-access-key-id",
                        Severity::High,
                        Some("/etc/x y"),
                        Some(3),
                    ),
                    finding("archive-bomb", Severity::Low, None, None),
                ],
                ..TargetReport::default()
            }],
        }
    }

    #[test]
    fn levels_and_scores_follow_severity() {
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::High), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Low), "note");
        assert_eq!(level(Severity::Info), "note");
        assert_eq!(security_severity(Severity::Critical), "9.5");
        assert_eq!(security_severity(Severity::Info), "0.0");
    }

    #[test]
    fn uris_name_target_volume_and_path() {
        assert_eq!(
            location_uri("ami-1", "xvda:p1", Some(b"/etc/shadow")),
            "ami-1/xvda:p1/etc/shadow"
        );
        assert_eq!(
            location_uri("./a b.img", "p1", Some(b"/x.zip!in/k#1")),
            "a%20b.img/p1/x.zip!in/k%231"
        );
        assert_eq!(location_uri("c:d.img", "vg/lv", None), "c%3Ad.img/vg/lv");
        assert_eq!(
            location_uri("/srv/d.img", "p2", Some("/é".as_bytes())),
            "/srv/d.img/p2/%C3%A9"
        );
        assert_eq!(pascal_case("pem-private-key"), "PemPrivateKey");
    }

    #[test]
    fn results_reference_rules_and_carry_fingerprints() {
        let v = to_sarif(&report(), &catalog());
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(
            rules.len(),
            2,
            "the catalog rule plus the ad-hoc archive-bomb"
        );
        assert_eq!(rules[1]["id"], "archive-bomb");
        let r0 = &run["results"][0];
        assert_eq!(r0["ruleIndex"], 0);
        assert_eq!(r0["level"], "error");
        assert_eq!(r0["partialFingerprints"][FINGERPRINT_KEY], "sha256:abcd");
        let loc = &r0["locations"][0]["physicalLocation"];
        assert_eq!(
            loc["artifactLocation"]["uri"],
            "ami-0123456789abcdef0/xvda:p1/etc/x%20y"
        );
        assert_eq!(loc["region"]["startLine"], 3);
        let r1 = &run["results"][1];
        assert_eq!(r1["ruleIndex"], 1);
        assert_eq!(
            r1["locations"][0]["physicalLocation"]["region"]["byteOffset"],
            7
        );
        assert!(r1["properties"].get("secret").is_none());
        let inv = &run["invocations"][0];
        assert_eq!(inv["executionSuccessful"], false);
        let notes = inv["toolExecutionNotifications"].as_array().unwrap();
        assert_eq!(notes.len(), 2);
        assert!(
            notes[0]["message"]["text"]
                .as_str()
                .unwrap()
                .contains("read failed")
        );
        assert_eq!(notes[1]["descriptor"]["id"], "scan-incomplete");
    }
}
