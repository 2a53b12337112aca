//! Detection: finds leaked secrets and insecure defaults in the files of an image.
//!
//! Two kinds of rules feed one [`Detector`]: content **signatures** (data, in
//! `signatures/*.toml`, matched by a keyword-prefiltered regex engine over streamed content) and
//! path-based **checks** (code, in `checks`). Both are listed by family in the file-rule
//! [`registry`], which says which check applies to a file and what `--quick` reads. A file is
//! read once: its first bytes serve the check that applies to its path, and all of it goes
//! through the signatures. Findings are redacted when created; a secret appears only in
//! [`Finding::secret`] and only on request.

mod catalog;
mod catalog_check;
pub(crate) mod checks;
mod credfiles;
mod engine;
mod finding;
pub(crate) mod hive;
pub mod lookup;
mod precision;
mod provenance;
pub mod registry;
mod sshkey;
mod stream;
mod verify;
mod volume_scan;
mod window;
mod wire;

#[cfg(test)]
mod scan_tests;

pub use catalog::CatalogError;
pub use catalog_check::check_catalog;
pub use lookup::{FileLookup, Looked, MemLookup, Meta, MetaKind, Unreadable};
pub use volume_scan::VolumeFindings;

/// The Windows parsers' fuzz entry point (`fuzz/fuzz_targets/windows.rs`): `data` as every
/// registry hive the windows-hives check reads (each judged), as one LZNT1 compression unit,
/// as the head of an NTFS `$LogFile`, as a shortcut (`.lnk`) and as a WMI repository. Only
/// with the `fuzzing` feature: not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn windows_for_fuzzing(data: &[u8]) -> usize {
    let mut l = MemLookup::new();
    for p in [
        "/Windows/System32/config/SAM",
        "/Windows/System32/config/SECURITY",
        "/Windows/System32/config/SOFTWARE",
        "/Users/a/NTUSER.DAT",
    ] {
        l.add(p, 0o644, data);
    }
    let (hits, errors) = checks::windows_hives::check(&l);
    let unit = crate::fs::lznt1::decompress(data, 65536).map_or(0, |u| u.len());
    let _ = crate::fs::ntfs_logfile::state(data);
    let link = checks::lnk::parse(data).map_or(0, |l| usize::from(l.target().is_some()));
    let wmi = checks::windows_wmi::judge(data).len();
    hits.len() + errors.len() + unit + link + wmi
}

use crate::model::Finding;
pub use crate::model::{RuleInfo, RuleKind};
use checks::CheckHit;
use engine::{Matcher, RawMatch};
use finding::{Spanned, apply_suppression, fingerprint, redact};
use std::collections::HashMap;

/// The file being scanned, as the filesystem walker sees it.
#[derive(Clone, Copy, Debug)]
pub struct FileInfo<'a> {
    /// Absolute path inside the volume, e.g. `/root/.ssh/id_rsa`.
    pub path: &'a str,
    /// Size in bytes from the inode.
    pub size: u64,
    /// Mode bits from the inode.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

/// See [`Detector::path_class`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathClass(u8);

/// Options that change what findings contain.
#[derive(Default, Clone, Debug)]
pub struct DetectOptions {
    /// Put the secret in clear into [`Finding::secret`] (`--show-secrets`). Evidence stays redacted.
    pub show_secrets: bool,
}

/// The result of scanning one file.
#[derive(Debug)]
pub struct FileOutcome {
    /// Findings, with `volume` empty (the caller fills it) and `path` set; sorted by offset.
    pub findings: Vec<Finding>,
    /// Bytes of content read.
    pub bytes_scanned: u64,
    /// A read error that stopped the scan midway; the findings made before it are kept.
    pub error: Option<std::io::Error>,
}

/// The detection engine: built once, shared by every worker thread (it is `Send + Sync`).
#[derive(Debug)]
pub struct Detector {
    /// Keyword automaton and compiled signatures.
    matcher: Matcher,
    /// Every rule, sorted by id (binary-searched by [`Detector::info`]).
    rules: Vec<RuleInfo>,
    /// Rule id -> ids of the rules its findings hide when they overlap.
    suppresses: HashMap<String, Vec<String>>,
    /// See [`Detector::catalog_version`].
    catalog_version: String,
}

fn catalog_version(files: &[(&str, &str)], rules: &[RuleInfo]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    for (name, text) in files {
        h.update(format!("\0{name}\0{}\0", text.len()));
        h.update(text);
    }
    for r in rules {
        h.update(format!("\0{}:{}", r.id, r.severity));
    }
    format!("cat-{}", &hex::encode(h.finalize())[..16])
}

impl Detector {
    /// The catalog embedded in the binary (`signatures/*.toml`) plus the code checks.
    pub fn builtin() -> Result<Detector, CatalogError> {
        Detector::with_catalog(catalog::BUILTIN_FILES)
    }

    /// A detector over the given catalog files (`(file name, TOML text)`) plus the code checks.
    /// Fails on the first structural problem; [`check_catalog`] lists them all.
    pub fn with_catalog(files: &[(&str, &str)]) -> Result<Detector, CatalogError> {
        let reserved = registry::reserved_ids();
        let (sigs, problems) = catalog::compile(files, &reserved);
        if let Some(p) = problems.into_iter().next() {
            return Err(p);
        }
        let matcher = Matcher::new(&sigs).map_err(|e| CatalogError::Parse {
            file: "(catalog)".into(),
            message: format!("keyword automaton: {e}"),
        })?;
        let mut rules = registry::rule_infos(&sigs);
        let mut suppresses = HashMap::new();
        let all = |s: &catalog::Signature| s.suppresses.iter().any(|t| t == catalog::SUPPRESS_ALL);
        for s in &sigs {
            let mut targets: Vec<String> = s
                .suppresses
                .iter()
                .filter(|t| *t != catalog::SUPPRESS_ALL)
                .cloned()
                .collect();
            if all(s) {
                // Not a rule that hides this one itself: a finding that holds the key (a
                // service account file) stands for it.
                targets.extend(
                    sigs.iter()
                        .filter(|o| !all(o) && !o.suppresses.contains(&s.id))
                        .map(|o| o.id.clone()),
                );
            }
            suppresses.insert(s.id.clone(), targets);
        }
        for c in registry::code_rules() {
            let targets = c.suppresses.iter().map(|t| t.to_string()).collect();
            suppresses.insert(c.id.to_string(), targets);
        }
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        let catalog_version = catalog_version(files, &rules);
        Ok(Detector {
            matcher,
            rules,
            suppresses,
            catalog_version,
        })
    }

    /// What this detector finds, as a short stable id (`cat-<16 hex>`): a SHA-256 of the catalog
    /// files, every rule's id and severity, and the amiscan version (checks are code). A cached
    /// result is reusable only under the same catalog version.
    pub fn catalog_version(&self) -> &str {
        &self.catalog_version
    }

    /// Every rule (signatures and checks), sorted by id.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// Scan one regular file: the path-based check for its path (if any) and the content
    /// signatures, streaming `content` in overlapping chunks (memory bounded by the chunk size).
    pub fn scan_file(
        &self,
        file: &FileInfo<'_>,
        content: &mut dyn std::io::Read,
        opts: &DetectOptions,
    ) -> FileOutcome {
        let registry::FileRules { check, cred, .. } = registry::rules_for(file.path);
        let head_cap = if check.is_some() || cred.is_some() {
            checks::CHECK_CAP
        } else {
            0
        };
        let text_tier = !precision::is_package_data(file.path);
        let streamed = stream::stream(&self.matcher, content, head_cap, text_tier);
        let mut items = Vec::new();
        // A check judges the file's first bytes; when reading them failed, the part that was
        // read is not the file (a cut `/etc/shadow` line reads as an empty password). The
        // error is the outcome's, and the scan reports it.
        let check = check.filter(|_| !streamed.head_failed);
        if let Some(check) = check {
            for hit in check.run(file.path, &streamed.head, streamed.head_truncated) {
                items.push(self.check_finding(hit, file.path, opts));
            }
        }
        for hit in credfiles::run(cred, file.path, &streamed.head) {
            items.push(self.check_finding(hit, file.path, opts));
        }
        for m in streamed.matches {
            if let Some(s) = self.match_finding(m, file.path, opts) {
                items.push(s);
            }
        }
        let mut findings = apply_suppression(items, &self.suppresses);
        findings.sort_by(|a, b| a.offset.cmp(&b.offset).then_with(|| a.rule.cmp(&b.rule)));
        FileOutcome {
            findings,
            bytes_scanned: streamed.bytes,
            error: streamed.error,
        }
    }

    /// How a file's path changes what [`Detector::scan_file`] makes of its content, as a
    /// value: two files with the same bytes whose paths have equal classes get the same
    /// findings, but for the path they carry (the content scan then reads such bytes once:
    /// btrfs snapshots, reflinks). `None` when the path itself is judged — a path check or a
    /// credential-file format applies to it (their evidence may name it) — and the file is
    /// always read at its own path. Every use of the path in `scan_file` and `match_finding`
    /// must be reflected here: the registry's rules, the package-data tier, template names,
    /// the documentation and packaged-test directories of `refine`.
    pub fn path_class(&self, path: &str) -> Option<PathClass> {
        let rules = registry::rules_for(path);
        if rules.check.is_some() || rules.cred.is_some() {
            return None;
        }
        let bits = [
            precision::is_package_data(path),
            precision::is_template_path(path),
            verify::testkeys::is_doc_path(path),
            verify::testkeys::is_test_path(path),
        ];
        Some(PathClass(
            bits.iter()
                .enumerate()
                .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << i)),
        ))
    }

    /// Scan an in-memory file (tests, small inputs): [`Detector::scan_file`] on `data`.
    pub fn scan_bytes(&self, path: &str, data: &[u8], opts: &DetectOptions) -> Vec<Finding> {
        let file = FileInfo {
            path,
            size: data.len() as u64,
            mode: 0o100644,
            uid: 0,
            gid: 0,
        };
        let mut reader = data;
        self.scan_file(&file, &mut reader, opts).findings
    }

    /// Whether [`Detector::apply_provenance`] judges findings of `rule` by their file's digest:
    /// the secrets (content signatures and credential files), not the checks of system state.
    pub fn judged_by_provenance(&self, rule: &str) -> bool {
        self.info(rule)
            .is_some_and(|r| r.kind == RuleKind::Signature)
            || registry::code_rules().any(|r| r.id == rule)
    }

    /// Judge the secret findings of one volume against the package databases the volume holds
    /// (read through `lookup`): vendor content shipped unmodified becomes info with its
    /// [`crate::model::Provenance`], a modified packaged file keeps full severity and says so
    /// (see `detect/provenance.rs`). Findings of the checks of system state are left as they are.
    pub fn apply_provenance(&self, lookup: &dyn FileLookup, findings: &mut [Finding]) {
        let judged = |rule: &str| self.judged_by_provenance(rule);
        let severity = |rule: &str| self.info(rule).map(|r| r.severity);
        provenance::apply(
            lookup,
            findings,
            &provenance::RuleFacts {
                judged: &judged,
                severity: &severity,
            },
        );
    }

    /// The rule with this id.
    fn info(&self, id: &str) -> Option<&RuleInfo> {
        self.rules
            .binary_search_by(|r| r.id.as_str().cmp(id))
            .ok()
            .and_then(|i| self.rules.get(i))
    }

    /// A redacted, refined finding from a signature match.
    fn match_finding(&self, m: RawMatch, path: &str, opts: &DetectOptions) -> Option<Spanned> {
        let sig = self.matcher.sigs.get(m.rule)?;
        if sig.precision == precision::Precision::Password && precision::is_template_path(path) {
            return None;
        }
        let mut severity = sig.severity;
        let mut evidence = redact(m.label.as_deref(), &m.secret);
        let verdict = precision::judge(sig.precision, &m.secret, m.masked_tail);
        evidence.push_str(&verdict.note);
        // A value the precision model already lowered to info (a published example, a
        // placeholder) needs no second note for where it lies.
        let judged_info = verdict.severity == Some(crate::model::Severity::Info);
        if let Some((sev, note)) =
            finding::refine(&sig.id, &m.secret, path).filter(|_| !judged_info)
        {
            severity = sev.unwrap_or(severity);
            evidence.push_str(&note);
        }
        // The precision model only lowers (a placeholder is info whatever the rule says).
        severity = verdict.severity.map_or(severity, |v| v.min(severity));
        Some(Spanned {
            finding: Finding {
                path_bytes: None,
                rule: sig.id.clone(),
                severity,
                title: sig.title.clone(),
                volume: String::new(),
                path: Some(path.to_string()),
                line: m.line,
                offset: Some(m.start),
                evidence,
                fingerprint: fingerprint(&m.secret),
                remediation: sig.remediation.clone(),
                secret: opts
                    .show_secrets
                    .then(|| String::from_utf8_lossy(&m.secret).into_owned()),
                provenance: None,
            },
            start: m.start,
            end: m.end,
        })
    }

    /// A finding from a check hit, with its rule's title and remediation.
    fn check_finding(&self, hit: CheckHit, path: &str, opts: &DetectOptions) -> Spanned {
        let (title, remediation) = self
            .info(hit.rule)
            .map(|r| (r.title.clone(), r.remediation.clone()))
            .unwrap_or_default();
        Spanned {
            finding: Finding {
                path_bytes: None,
                rule: hit.rule.to_string(),
                severity: hit.severity,
                title,
                volume: String::new(),
                path: Some(path.to_string()),
                line: hit.line,
                offset: Some(hit.start),
                evidence: hit.evidence,
                fingerprint: fingerprint(&hit.fingerprint_of),
                remediation,
                secret: hit
                    .secret
                    .filter(|_| opts.show_secrets)
                    .map(|s| String::from_utf8_lossy(&s).into_owned()),
                provenance: None,
            },
            start: hit.start,
            end: hit.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    #[test]
    fn detector_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Detector>();
    }

    #[test]
    fn rules_are_sorted_and_complete() {
        let d = Detector::builtin().unwrap();
        let ids: Vec<&str> = d.rules().iter().map(|r| r.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
        for (id, sev, kind) in [
            ("pem-private-key", Severity::Critical, RuleKind::Signature),
            (
                "pem-encrypted-private-key",
                Severity::Medium,
                RuleKind::Signature,
            ),
            (
                "openssh-private-key",
                Severity::Critical,
                RuleKind::Signature,
            ),
            ("putty-private-key", Severity::Critical, RuleKind::Signature),
            (
                "putty-encrypted-private-key",
                Severity::Medium,
                RuleKind::Signature,
            ),
            ("aws-access-key-id", Severity::High, RuleKind::Signature),
            (
                "aws-access-key-pair",
                Severity::Critical,
                RuleKind::Signature,
            ),
            (
                "aws-example-access-key",
                Severity::Info,
                RuleKind::Signature,
            ),
            ("ssh-host-private-key", Severity::High, RuleKind::Check),
            ("ssh-authorized-keys", Severity::High, RuleKind::Check),
            ("shell-history", Severity::Medium, RuleKind::Check),
            ("shadow-password-hash", Severity::High, RuleKind::Check),
            ("shadow-empty-password", Severity::Critical, RuleKind::Check),
        ] {
            let r = d.info(id).unwrap_or_else(|| panic!("missing {id}"));
            assert_eq!((r.severity, r.kind), (sev, kind), "{id}");
            assert!(!r.title.is_empty() && !r.remediation.is_empty());
        }
    }

    #[test]
    fn a_broken_catalog_is_an_error_naming_file_and_rule() {
        let bad = "[[rule]]\nid = \"x-y\"\ntitle = \"t\"\nseverity = \"low\"\nkeywords = [\"abc\"]\nregex = \"(\"\nremediation = \"r\"\n";
        let err = Detector::with_catalog(&[("bad.toml", bad)]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.toml: rule `x-y`: bad regex"), "{msg}");
    }
}
