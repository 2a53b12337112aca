//! Turning matches into [`Finding`]s: redacted evidence, secret fingerprints, rule-specific
//! refinement (an encrypted OpenSSH key is medium, not critical), and suppression of findings
//! covered by a more specific one.
//!
//! Redaction happens here, at creation, so no later stage (writers, logs) can leak a secret by
//! mistake: evidence never holds more than 4 characters of a secret.

use super::sshkey::parse_openssh_body;
use super::verify::keyformats::{self, Protection};
use super::verify::testkeys;
use crate::model::{Finding, Severity};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// `sha256:<hex>` of a secret: lets one secret be tracked across images without showing it.
pub(crate) fn fingerprint(secret: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(secret)))
}

/// How many leading characters of a secret of `n` characters may be shown: 4 for long
/// secrets, fewer for short ones so the hint never gives most of a secret away.
fn shown_chars(n: usize) -> usize {
    match n {
        0..=7 => 0,
        8..=15 => 2,
        _ => 4,
    }
}

/// Printable form of untrusted bytes for a one-line message (control characters become ` `).
pub(crate) fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Redacted evidence: `label` (if any, and only if it does not contain the secret), then the
/// secret's first characters followed by `…[N chars]`, e.g. `AKIA…[20 chars]`.
pub(crate) fn redact(label: Option<&[u8]>, secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let n = text.chars().count();
    let head = clean(
        text.chars()
            .take(shown_chars(n))
            .collect::<String>()
            .as_bytes(),
    );
    let hint = format!("{head}…[{n} chars]");
    match label {
        Some(l) if !l.is_empty() && !contains(l, secret) => format!("{} {hint}", clean(l)),
        _ => hint,
    }
}

/// Whether `needle` occurs in `hay` (an empty needle never does).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(hay, needle).is_some()
}

/// A finding with the byte span it covers in its file, for suppression.
#[derive(Debug, Clone)]
pub(crate) struct Spanned {
    /// The finding.
    pub finding: Finding,
    /// Span start (file offset).
    pub start: u64,
    /// Span end (file offset, exclusive).
    pub end: u64,
}

/// Drop every finding that overlaps a finding of a rule listed as suppressing it.
/// `suppresses` maps a rule id to the ids it suppresses. Runs in O(n log n).
pub(crate) fn apply_suppression(
    items: Vec<Spanned>,
    suppresses: &HashMap<String, Vec<String>>,
) -> Vec<Finding> {
    // Suppressed rule id -> merged, sorted spans of the findings that suppress it.
    let mut shadows: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for it in &items {
        if let Some(targets) = suppresses.get(&it.finding.rule) {
            for t in targets {
                shadows
                    .entry(t.as_str())
                    .or_default()
                    .push((it.start, it.end));
            }
        }
    }
    for spans in shadows.values_mut() {
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
        for &(s, e) in spans.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *spans = merged;
    }
    let hidden = |it: &Spanned| {
        let Some(spans) = shadows.get(it.finding.rule.as_str()) else {
            return false;
        };
        // First merged span ending after our start: overlap iff it starts before our end.
        let i = spans.partition_point(|&(_, e)| e <= it.start);
        spans
            .get(i)
            .is_some_and(|&(s, _)| s < it.end.max(it.start.saturating_add(1)))
    };
    let keep: Vec<bool> = items.iter().map(|it| !hidden(it)).collect();
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(it, k)| k.then_some(it.finding))
        .collect()
}

/// Rule whose matches are decoded to tell encrypted from unencrypted keys.
pub(crate) const OPENSSH_RULE: &str = "openssh-private-key";
/// OpenPGP private key blocks, decoded the same way.
pub(crate) const PGP_RULE: &str = "pgp-private-key";
/// SSH2 (ssh.com) private keys, decoded the same way.
pub(crate) const SSH2_RULE: &str = "ssh2-private-key";

/// Severity and an evidence suffix for a match of `rule` whose secret is `secret`, found in
/// the file at `path`. `None` leaves the match as the catalog describes it.
///
/// Key containers are decoded to tell encrypted keys (medium) from clear ones; then a
/// published test key, or any match inside a packaged test directory, is lowered to `info`
/// (see [`testkeys`](super::verify::testkeys) for the rule).
pub(crate) fn refine(rule: &str, secret: &[u8], path: &str) -> Option<(Option<Severity>, String)> {
    let own = refine_format(rule, secret);
    match testkeys::test_vector_note(path, secret) {
        Some(note) => {
            let mut text = own.map(|(_, t)| t).unwrap_or_default();
            text.push_str(&note);
            Some((Some(Severity::Info), text))
        }
        None => own,
    }
}

/// What decoding the key container says, for the rules whose text does not tell.
fn refine_format(rule: &str, secret: &[u8]) -> Option<(Option<Severity>, String)> {
    match rule {
        OPENSSH_RULE => Some(refine_openssh(secret)),
        PGP_RULE | SSH2_RULE => {
            let decoded = if rule == PGP_RULE {
                keyformats::pgp_protection(secret)
            } else {
                keyformats::ssh2_protection(secret)
            };
            Some(match decoded {
                Some(Protection::Clear) => (None, " (unencrypted)".into()),
                Some(Protection::Encrypted(how)) => (
                    Some(Severity::Medium),
                    format!(" (encrypted: {})", clean(how.as_bytes())),
                ),
                None => (None, " (protection unknown: body not decoded)".into()),
            })
        }
        _ => None,
    }
}

/// An OpenSSH key's cipher, type and fingerprint.
fn refine_openssh(secret: &[u8]) -> (Option<Severity>, String) {
    let Some(info) = parse_openssh_body(secret) else {
        return (None, " (not an openssh-key-v1 container)".into());
    };
    let mut parts = Vec::new();
    let severity = if info.cipher == "none" {
        parts.push("unencrypted".to_string());
        None
    } else {
        parts.push(format!("encrypted with {}", clean(info.cipher.as_bytes())));
        Some(Severity::Medium)
    };
    parts.extend(info.key_type.map(|t| clean(t.as_bytes())));
    parts.extend(info.fingerprint);
    (severity, format!(" ({})", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_shows_at_most_four_characters() {
        assert_eq!(redact(None, b"AKIACPCZW4FLKEW5GOHI"), "AKIA…[20 chars]");
        assert_eq!(
            redact(
                Some(b"-----BEGIN RSA PRIVATE KEY-----"),
                b"MIIEpAIBAAKCAQEA"
            ),
            "-----BEGIN RSA PRIVATE KEY----- MIIE…[16 chars]"
        );
        assert_eq!(redact(None, b"hunter2"), "…[7 chars]");
        assert_eq!(redact(None, b"abcdefghij"), "ab…[10 chars]");
        assert_eq!(
            redact(None, "ééééééééééééééééé".as_bytes()),
            "éééé…[17 chars]"
        );
    }

    #[test]
    fn a_label_holding_the_secret_is_dropped() {
        assert_eq!(
            redact(Some(b"key=SECRETSECRETSECRET"), b"SECRETSECRETSECRET"),
            "SECR…[18 chars]"
        );
    }

    #[test]
    fn control_characters_are_blanked() {
        assert_eq!(
            redact(Some(b"a\nb"), b"\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"),
            "a b     …[16 chars]"
        );
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            fingerprint(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn spanned(rule: &str, start: u64, end: u64) -> Spanned {
        Spanned {
            finding: Finding {
                path_bytes: None,
                rule: rule.into(),
                severity: Severity::High,
                title: String::new(),
                volume: String::new(),
                path: None,
                line: None,
                offset: Some(start),
                evidence: String::new(),
                fingerprint: String::new(),
                remediation: String::new(),
                secret: None,
                provenance: None,
            },
            start,
            end,
        }
    }

    #[test]
    fn overlapping_listed_findings_are_dropped() {
        let map = HashMap::from([("pair".to_string(), vec!["id".to_string()])]);
        let items = vec![
            spanned("id", 10, 30),
            spanned("pair", 10, 100),
            spanned("id", 200, 220),
            spanned("other", 20, 25),
        ];
        let kept: Vec<(String, Option<u64>)> = apply_suppression(items, &map)
            .into_iter()
            .map(|f| (f.rule, f.offset))
            .collect();
        assert_eq!(
            kept,
            [
                ("pair".into(), Some(10)),
                ("id".into(), Some(200)),
                ("other".into(), Some(20))
            ]
        );
    }

    #[test]
    fn empty_spans_still_overlap_their_position() {
        let map = HashMap::from([("host".to_string(), vec!["key".to_string()])]);
        let kept = apply_suppression(
            vec![spanned("host", 0, u64::MAX), spanned("key", 5, 5)],
            &map,
        );
        assert_eq!(kept.len(), 1);
    }

    fn body(pem: &str) -> &[u8] {
        let start = pem.find('\n').unwrap() + 1;
        &pem.as_bytes()[start..pem.find("-----END").unwrap()]
    }

    #[test]
    fn encrypted_openssh_key_is_medium() {
        let (sev, note) = refine(
            OPENSSH_RULE,
            body(include_str!("testdata/openssh_ed25519_encrypted")),
            "/root/.ssh/id",
        )
        .unwrap();
        assert_eq!(sev, Some(Severity::Medium));
        assert!(
            note.starts_with(" (encrypted with aes256-ctr, ssh-ed25519, SHA256:"),
            "{note}"
        );
    }

    #[test]
    fn unencrypted_openssh_key_keeps_its_severity() {
        let (sev, note) = refine(
            OPENSSH_RULE,
            body(include_str!("testdata/openssh_rsa")),
            "/root/k",
        )
        .unwrap();
        assert_eq!(sev, None);
        assert!(
            note.starts_with(" (unencrypted, ssh-rsa, SHA256:"),
            "{note}"
        );
    }

    #[test]
    fn other_rules_and_garbage() {
        assert_eq!(refine("pem-private-key", b"x", "/root/k"), None);
        assert_eq!(
            refine(OPENSSH_RULE, b"AAAA", "/root/k"),
            Some((None, " (not an openssh-key-v1 container)".into()))
        );
    }
}
