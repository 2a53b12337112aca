//! AWS Security Finding Format (`--format asff`): a JSON array of findings ready for Security Hub's
//! `BatchImportFindings` (which takes at most 100 findings per call: split larger arrays).
//!
//! Field mapping, per finding:
//!
//! | ASFF | value |
//! |---|---|
//! | `SchemaVersion` | `2018-10-08` |
//! | `Id` | `amiscan/<target>/<rule>/<fingerprint hex>/<location>` where `<location>` is 16 hex digits of the SHA-256 of volume and path (or offset): stable across scans, and unique in one batch even when one secret sits in two files (a target longer than 256 characters is replaced by its SHA-256) |
//! | `ProductArn` | `arn:<partition>:securityhub:<region>:<account>:product/<account>/default` |
//! | `GeneratorId` | the rule id |
//! | `AwsAccountId` | the account (`--asff-account`) |
//! | `Types` | one per rule family ([`finding_type`]) |
//! | `CreatedAt`, `UpdatedAt` | the time of the report (RFC 3339) |
//! | `Severity` | `Label` CRITICAL/HIGH/MEDIUM/LOW/INFORMATIONAL, `Original` the amiscan severity |
//! | `Title` | the rule title (≤ 256 characters) |
//! | `Description` | where, the **redacted** evidence and the fingerprint (≤ 1024 characters) |
//! | `Resources` | `AwsEc2Image` with the AMI ARN `arn:<partition>:ec2:<region>::image/ami-…`; `Other` with `arn:<partition>:ec2:<region>::snapshot/snap-…` for a snapshot; `Other` with the path for a local image |
//! | `Remediation.Recommendation.Text` | the rule's remediation (≤ 512 characters) |
//! | `ProductFields` | `amiscan/Target`, `amiscan/Volume`, `amiscan/Path`, `amiscan/Line`, `amiscan/Offset`, `amiscan/Fingerprint`, `amiscan/Evidence` (redacted), `amiscan/Severity`, `ProviderName`, `ProviderVersion` |
//! | `RecordState`, `Workflow.Status` | `ACTIVE`, `NEW` |
//!
//! Secrets never go into ASFF, even with `--show-secrets`: the evidence is always the redacted one.

use crate::model::{Finding, Report, Severity, TargetReport};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::io::Write;

/// ASFF schema version.
pub const ASFF_SCHEMA_VERSION: &str = "2018-10-08";
/// Longest `Title` Security Hub accepts.
pub const MAX_TITLE: usize = 256;
/// Longest `Description` Security Hub accepts.
pub const MAX_DESCRIPTION: usize = 1024;
/// Longest `Remediation.Recommendation.Text` Security Hub accepts.
pub const MAX_RECOMMENDATION: usize = 512;
/// Longest `Id` (and `Resources[].Id`) Security Hub accepts.
pub const MAX_ID: usize = 512;
/// Longest `ProductFields` value Security Hub accepts.
pub const MAX_PRODUCT_FIELD: usize = 2048;

/// Why the ASFF account or region is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AsffError {
    /// An AWS account id is twelve digits.
    #[error("ASFF account id `{0}` is not 12 digits")]
    BadAccount(String),
    /// A region looks like `us-east-1`.
    #[error("ASFF region `{0}` is not an AWS region name")]
    BadRegion(String),
}

/// Where the findings are imported: the Security Hub account and region, and the report time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsffOptions {
    account: String,
    region: String,
    now: String,
}

impl AsffOptions {
    /// Check the account id (12 digits) and region (`[a-z0-9-]+`); `now` is RFC 3339.
    pub fn new(account: &str, region: &str, now: String) -> Result<AsffOptions, AsffError> {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AsffError::BadAccount(account.to_string()));
        }
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(AsffError::BadRegion(region.to_string()));
        }
        Ok(AsffOptions {
            account: account.to_string(),
            region: region.to_string(),
            now,
        })
    }

    /// The AWS partition of the region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`.
    pub fn product_arn(&self) -> String {
        format!(
            "arn:{}:securityhub:{}:{}:product/{}/default",
            self.partition(),
            self.region,
            self.account,
            self.account
        )
    }
}

/// ASFF `Severity.Label`.
pub fn severity_label(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
        Severity::Info => "INFORMATIONAL",
    }
}

/// The ASFF finding type (`namespace/category[/classifier]`) of a rule, by family:
/// passwords and password hashes → `Sensitive Data Identifications/Passwords`; sshd and sudo
/// configuration → CIS host hardening; build leftovers → AWS security best practices; tampering →
/// `TTPs/Persistence`; miner traces → `Effects/Resource Consumption`; every other key, token or
/// credential → `Sensitive Data Identifications/Security`.
pub fn finding_type(rule: &str) -> &'static str {
    const PASSWORDS: &[&str] = &[
        "cloud-init-password",
        "mysql-client-password",
        "netrc-password",
        "passwd-password-hash",
        "pgpass-password",
        "pypirc-password",
        "windows-unattend-password",
        "wordpress-db-password",
    ];
    const LEFTOVERS: &[&str] = &[
        "archive-bomb",
        "cloud-init-leftover",
        "dhcp-lease-present",
        "editor-history",
        "machine-id-present",
        "random-seed-present",
        "shell-history",
        "ssh-known-hosts",
    ];
    const TAMPERING: &[&str] = &[
        "dpkg-modified-file",
        "rpm-modified-file",
        "ld-so-preload",
        "setid-unowned",
    ];
    if rule.starts_with("shadow-") || PASSWORDS.contains(&rule) {
        "Sensitive Data Identifications/Passwords"
    } else if rule.starts_with("sshd-") || rule == "sudo-nopasswd" {
        "Software and Configuration Checks/Industry and Regulatory Standards/CIS Host Hardening Benchmarks"
    } else if LEFTOVERS.contains(&rule) {
        "Software and Configuration Checks/AWS Security Best Practices"
    } else if rule.starts_with("autostart-") || TAMPERING.contains(&rule) {
        "TTPs/Persistence"
    } else if rule == "miner-trace" {
        "Effects/Resource Consumption"
    } else {
        "Sensitive Data Identifications/Security"
    }
}

/// At most `max` characters: longer text is cut and ends with `…`.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The stable, batch-unique finding `Id` (see the module documentation).
pub fn finding_id(target: &str, f: &Finding) -> String {
    let place = match (&f.path, f.offset) {
        (Some(p), _) => p.clone(),
        (None, Some(o)) => format!("@{o}"),
        (None, None) => String::new(),
    };
    let loc = sha256_hex(&[&f.volume, &place]);
    let fp = f
        .fingerprint
        .strip_prefix("sha256:")
        .unwrap_or(&f.fingerprint);
    let target_part = if target.chars().count() > 256 {
        sha256_hex(&[target])
    } else {
        target.to_string()
    };
    clip(
        &format!(
            "amiscan/{target_part}/{}/{fp}/{}",
            f.rule,
            loc.get(..16).unwrap_or(&loc)
        ),
        MAX_ID,
    )
}

fn resource(t: &TargetReport, opts: &AsffOptions) -> Value {
    let target = t.target.as_str();
    let is_id = |prefix: &str| {
        target
            .strip_prefix(prefix)
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let (kind, id) = if is_id("ami-") {
        (
            "AwsEc2Image",
            format!(
                "arn:{}:ec2:{}::image/{target}",
                opts.partition(),
                opts.region
            ),
        )
    } else if is_id("snap-") {
        (
            "Other",
            format!(
                "arn:{}:ec2:{}::snapshot/{target}",
                opts.partition(),
                opts.region
            ),
        )
    } else {
        ("Other", clip(target, MAX_ID))
    };
    json!({
        "Type": kind,
        "Id": id,
        "Partition": opts.partition(),
        "Region": opts.region,
    })
}

fn description(t: &TargetReport, f: &Finding) -> String {
    let mut place = format!("{} volume {}", t.target, f.volume);
    match (&f.path, f.line, f.offset) {
        (Some(p), Some(l), _) => place.push_str(&format!(" file {p} line {l}")),
        (Some(p), None, _) => place.push_str(&format!(" file {p}")),
        (None, _, Some(o)) => place.push_str(&format!(" at byte offset {o}")),
        (None, _, None) => {}
    }
    clip(
        &format!(
            "{} in {place}. Evidence (redacted): {}. Fingerprint: {}.",
            f.title.trim_end_matches('.'),
            f.evidence,
            f.fingerprint
        ),
        MAX_DESCRIPTION,
    )
}

fn finding(t: &TargetReport, f: &Finding, opts: &AsffOptions) -> Value {
    let mut fields = Map::new();
    let mut field = |k: &str, v: &str| {
        fields.insert(k.into(), json!(clip(v, MAX_PRODUCT_FIELD)));
    };
    field("ProviderName", "amiscan");
    field("ProviderVersion", env!("CARGO_PKG_VERSION"));
    field("amiscan/Target", &t.target);
    field("amiscan/Volume", &f.volume);
    if let Some(p) = &f.path {
        field("amiscan/Path", p);
    }
    if let Some(l) = f.line {
        field("amiscan/Line", &l.to_string());
    }
    if let Some(o) = f.offset {
        field("amiscan/Offset", &o.to_string());
    }
    field("amiscan/Fingerprint", &f.fingerprint);
    field("amiscan/Evidence", &f.evidence);
    field("amiscan/Severity", f.severity.as_str());
    json!({
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": finding_id(&t.target, f),
        "ProductArn": opts.product_arn(),
        "GeneratorId": clip(&f.rule, MAX_ID),
        "AwsAccountId": opts.account,
        "Types": [finding_type(&f.rule)],
        "CreatedAt": opts.now,
        "UpdatedAt": opts.now,
        "Severity": {"Label": severity_label(f.severity), "Original": f.severity.as_str()},
        "Title": clip(&f.title, MAX_TITLE),
        "Description": description(t, f),
        "Resources": [resource(t, opts)],
        "Remediation": {"Recommendation": {"Text": clip(&f.remediation, MAX_RECOMMENDATION)}},
        "ProductFields": fields,
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    })
}

/// Every finding of the report as an ASFF finding.
pub fn to_asff(report: &Report, opts: &AsffOptions) -> Vec<Value> {
    report
        .targets
        .iter()
        .flat_map(|t| t.findings.iter().map(move |f| finding(t, f, opts)))
        .collect()
}

/// Write the findings as a pretty JSON array.
pub fn write_asff(report: &Report, opts: &AsffOptions, out: &mut dyn Write) -> std::io::Result<()> {
    let text =
        serde_json::to_string_pretty(&to_asff(report, opts)).map_err(std::io::Error::other)?;
    out.write_all(crate::model::escape::json_safe(&text).as_bytes())?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rule: &str, path: &str) -> Finding {
        Finding {
            path_bytes: None,
            rule: rule.into(),
            severity: Severity::Critical,
            title: "T".repeat(300),
            volume: "xvda:p1".into(),
            path: Some(path.into()),
            line: Some(2),
            offset: Some(9),
            evidence: "E".repeat(2000),
            fingerprint: "sha256:00ff".into(),
            remediation: "R".repeat(600),
            secret: Some("hunter2".into()),
            provenance: None,
        }
    }

    fn opts() -> AsffOptions {
        AsffOptions::new("123456789012", "eu-west-1", "2024-01-01T00:00:00Z".into()).unwrap()
    }

    #[test]
    fn validates_account_and_region() {
        assert!(AsffOptions::new("1234", "eu-west-1", String::new()).is_err());
        assert!(AsffOptions::new("12345678901a", "eu-west-1", String::new()).is_err());
        assert!(AsffOptions::new("123456789012", "EU WEST", String::new()).is_err());
        let cn = AsffOptions::new("123456789012", "cn-north-1", String::new()).unwrap();
        assert_eq!(
            cn.product_arn(),
            "arn:aws-cn:securityhub:cn-north-1:123456789012:product/123456789012/default"
        );
    }

    #[test]
    fn maps_fields_within_limits_and_without_secrets() {
        let t = TargetReport {
            target: "ami-0123456789abcdef0".into(),
            findings: vec![
                f("shadow-password-hash", "/etc/shadow"),
                f("jwt", "/etc/shadow"),
            ],
            ..TargetReport::default()
        };
        let r = Report {
            version: 1,
            tool: "amiscan".into(),
            targets: vec![t],
        };
        let out = to_asff(&r, &opts());
        assert_eq!(out.len(), 2);
        let a = &out[0];
        assert_eq!(a["Title"].as_str().unwrap().chars().count(), MAX_TITLE);
        assert_eq!(
            a["Description"].as_str().unwrap().chars().count(),
            MAX_DESCRIPTION
        );
        assert_eq!(
            a["Remediation"]["Recommendation"]["Text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_RECOMMENDATION
        );
        assert_eq!(a["Types"][0], "Sensitive Data Identifications/Passwords");
        assert_eq!(
            out[1]["Types"][0],
            "Sensitive Data Identifications/Security"
        );
        assert_eq!(a["Severity"]["Label"], "CRITICAL");
        assert_eq!(a["Resources"][0]["Type"], "AwsEc2Image");
        assert_eq!(
            a["Resources"][0]["Id"],
            "arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0"
        );
        assert_ne!(a["Id"], out[1]["Id"]);
        assert!(
            a["Id"]
                .as_str()
                .unwrap()
                .starts_with("amiscan/ami-0123456789abcdef0/shadow-password-hash/00ff/")
        );
        assert!(!serde_json::to_string(&out).unwrap().contains("hunter2"));
    }

    #[test]
    fn ids_are_stable_and_separate_locations() {
        let a = finding_id("img", &f("jwt", "/a"));
        assert_eq!(a, finding_id("img", &f("jwt", "/a")));
        assert_ne!(a, finding_id("img", &f("jwt", "/b")));
        assert!(finding_id(&"x".repeat(600), &f("jwt", "/a")).len() < 200);
        assert_eq!(finding_type("sshd-permit-root-login").split('/').count(), 3);
        assert_eq!(clip("héllo", 3), "hé…");
    }
}
