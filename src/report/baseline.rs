//! Baselines: known, accepted findings that a scan leaves out of its report.
//!
//! A baseline lists findings by **rule id and fingerprint** (the SHA-256 of the secret, or of what
//! a check judged), so an accepted secret stays accepted wherever it moves in the image, and a new
//! secret under an old path is still reported. The other fields of an entry (target, volume, path,
//! title) are for the humans who review the file; matching ignores them.
//!
//! `--write-baseline FILE` writes one entry per distinct (rule, fingerprint) of the current
//! findings; `--baseline FILE` removes the matching findings from every target and counts them in
//! the target's `suppressed`, so they change neither the report's findings nor `--fail-on`.
//!
//! ```json
//! {"version": 1, "created": "2024-01-01T00:00:00Z", "tool": "amiscan 0.1.0",
//!  "entries": [{"rule": "pem-private-key", "fingerprint": "sha256:…",
//!               "target": "disk.img", "volume": "p1", "path": "/etc/x.key", "title": "…"}]}
//! ```

use crate::model::{Report, TargetReport};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The baseline file format version this build reads and writes.
pub const BASELINE_VERSION: u32 = 1;

/// Why a baseline could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file could not be read or written.
    #[error("baseline {path}: {source}")]
    Io {
        /// The baseline file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a baseline (bad JSON, missing or unknown fields).
    #[error("baseline {path}: not a valid baseline file: {source}")]
    Parse {
        /// The baseline file.
        path: PathBuf,
        /// The JSON error, with its line and column.
        source: serde_json::Error,
    },
    /// The file was written by a newer amiscan.
    #[error(
        "baseline {path}: version {found} is not supported (this amiscan reads version {BASELINE_VERSION})"
    )]
    UnsupportedVersion {
        /// The baseline file.
        path: PathBuf,
        /// The version the file declares.
        found: u32,
    },
}

/// One accepted finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    /// Rule id: part of the match.
    pub rule: String,
    /// `sha256:<hex>` fingerprint: part of the match.
    pub fingerprint: String,
    /// Where it was first seen (for humans; not matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Volume id where it was first seen (for humans; not matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// Path where it was first seen (for humans; not matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Rule title (for humans; not matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A baseline file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Format version ([`BASELINE_VERSION`]).
    pub version: u32,
    /// When it was written (RFC 3339, UTC).
    pub created: String,
    /// The amiscan that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Accepted findings.
    pub entries: Vec<BaselineEntry>,
}

impl Baseline {
    /// A baseline accepting every finding of `report`: one entry per distinct (rule,
    /// fingerprint), described by its first occurrence, sorted by rule then fingerprint.
    pub fn from_report(report: &Report, created: String) -> Baseline {
        let mut seen = BTreeSet::new();
        let mut entries = vec![];
        for t in &report.targets {
            for f in &t.findings {
                if seen.insert((f.rule.clone(), f.fingerprint.clone())) {
                    entries.push(BaselineEntry {
                        rule: f.rule.clone(),
                        fingerprint: f.fingerprint.clone(),
                        target: Some(t.target.clone()),
                        volume: Some(f.volume.clone()),
                        path: f.path.clone(),
                        title: Some(f.title.clone()),
                    });
                }
            }
        }
        entries.sort_by(|a, b| {
            a.rule
                .cmp(&b.rule)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        Baseline {
            version: BASELINE_VERSION,
            created,
            tool: Some(report.tool.clone()),
            entries,
        }
    }

    /// Parse a baseline from JSON text; `path` only names the file in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Baseline, BaselineError> {
        let b: Baseline = serde_json::from_str(text).map_err(|source| BaselineError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if b.version != BASELINE_VERSION {
            return Err(BaselineError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: b.version,
            });
        }
        Ok(b)
    }

    /// Read a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Baseline::from_json(&text, path)
    }

    /// Write the baseline as pretty JSON to `path` (created or replaced).
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let io = |source| BaselineError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        serde_json::to_writer_pretty(&mut out, self).map_err(|e| io(std::io::Error::other(e)))?;
        out.write_all(b"\n").map_err(io)?;
        out.flush().map_err(io)
    }

    /// Remove every finding the baseline lists from `report`, adding their number to each
    /// target's `suppressed`. Returns how many were removed in all.
    pub fn apply(&self, report: &mut Report) -> u64 {
        let keys: HashSet<(&str, &str)> = self
            .entries
            .iter()
            .map(|e| (e.rule.as_str(), e.fingerprint.as_str()))
            .collect();
        report.targets.iter_mut().map(|t| suppress(t, &keys)).sum()
    }
}

fn suppress(t: &mut TargetReport, keys: &HashSet<(&str, &str)>) -> u64 {
    let before = t.findings.len();
    t.findings
        .retain(|f| !keys.contains(&(f.rule.as_str(), f.fingerprint.as_str())));
    let removed = u64::try_from(before.saturating_sub(t.findings.len())).unwrap_or(u64::MAX);
    t.suppressed = t.suppressed.saturating_add(removed);
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, Severity};

    fn finding(rule: &str, fp: &str, path: &str) -> Finding {
        Finding {
            path_bytes: None,
            rule: rule.into(),
            severity: Severity::High,
            title: format!("{rule} title"),
            volume: "p1".into(),
            path: Some(path.into()),
            line: None,
            offset: None,
            evidence: "x…[9 chars]".into(),
            fingerprint: fp.into(),
            remediation: "r".into(),
            secret: None,
            provenance: None,
        }
    }

    fn report() -> Report {
        Report {
            version: 1,
            tool: "amiscan test".into(),
            targets: vec![TargetReport {
                target: "img".into(),
                complete: true,
                container: None,
                findings: vec![
                    finding("pem-private-key", "sha256:aa", "/a"),
                    finding("pem-private-key", "sha256:aa", "/copy-of-a"),
                    finding("pem-private-key", "sha256:bb", "/b"),
                    finding("jwt", "sha256:aa", "/c"),
                ],
                ..TargetReport::default()
            }],
        }
    }

    #[test]
    fn one_entry_per_rule_and_fingerprint() {
        let b = Baseline::from_report(&report(), "2024-01-01T00:00:00Z".into());
        let keys: Vec<_> = b
            .entries
            .iter()
            .map(|e| (e.rule.as_str(), e.fingerprint.as_str(), e.path.as_deref()))
            .collect();
        assert_eq!(
            keys,
            [
                ("jwt", "sha256:aa", Some("/c")),
                ("pem-private-key", "sha256:aa", Some("/a")),
                ("pem-private-key", "sha256:bb", Some("/b")),
            ]
        );
    }

    #[test]
    fn suppresses_by_rule_and_fingerprint_only() {
        let mut b = Baseline::from_report(&report(), "t".into());
        // Keep only pem-private-key/sha256:aa: the same fingerprint under another rule stays.
        b.entries
            .retain(|e| e.rule == "pem-private-key" && e.fingerprint == "sha256:aa");
        let mut r = report();
        assert_eq!(b.apply(&mut r), 2);
        let left: Vec<_> = r.targets[0]
            .findings
            .iter()
            .map(|f| f.path.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(left, ["/b", "/c"]);
        assert_eq!(r.targets[0].suppressed, 2);
    }

    #[test]
    fn round_trips_and_rejects_bad_files() {
        let b = Baseline::from_report(&report(), "2024-01-01T00:00:00Z".into());
        let text = serde_json::to_string(&b).unwrap();
        let p = Path::new("b.json");
        assert_eq!(Baseline::from_json(&text, p).unwrap(), b);
        let newer = text.replacen("\"version\":1", "\"version\":2", 1);
        assert!(matches!(
            Baseline::from_json(&newer, p),
            Err(BaselineError::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(
            Baseline::from_json(r#"{"version":1,"created":"t","entries":[{"rule":"x"}]}"#, p),
            Err(BaselineError::Parse { .. })
        ));
        assert!(matches!(
            Baseline::from_json(r#"{"version":1,"created":"t","entries":[],"extra":1}"#, p),
            Err(BaselineError::Parse { .. })
        ));
    }
}
