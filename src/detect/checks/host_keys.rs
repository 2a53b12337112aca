//! SSH host private keys baked into an image (`/etc/ssh/ssh_host_*_key`).
//!
//! Every instance launched from such an image shares the same host identity, so one
//! compromised instance lets an attacker impersonate all of them. Images should ship without
//! host keys and let `sshd-keygen`/cloud-init create them on first boot.

use super::{CheckHit, CheckRule, file_name};
use crate::detect::finding::clean;
use crate::detect::registry::pattern::{Glob, glob, glob_nocase};
use crate::detect::sshkey::parse_openssh_body;
use crate::report::Severity;

/// The rule.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "ssh-host-private-key",
    title: "SSH host private key in the image",
    severity: Severity::High,
    remediation: "Delete /etc/ssh/ssh_host_*_key* (on Windows: `Remove-Item C:\\ProgramData\\ssh\\ssh_host_*`, or run EC2Launch v2 `sysprep`) before creating the image so each instance generates its own host keys on first boot; instances already launched share this identity and should regenerate theirs.",
    suppresses: &[
        "pem-private-key",
        "pem-encrypted-private-key",
        "openssh-private-key",
        "putty-private-key",
        "putty-encrypted-private-key",
    ],
};

/// Whether `path` is a host private key (not its `.pub`).
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::HostKey)
}

/// The files this check reads (`ssh_host_key` is SSH 1's).
/// Windows' OpenSSH server keeps its keys in `C:\\ProgramData\\ssh` (names in any case).
pub(crate) const SCOPE: &[Glob] = &[
    glob("/etc/ssh/ssh_host_*_key"),
    glob("/etc/ssh/ssh_host_key"),
    glob_nocase("/ProgramData/ssh/ssh_host_*_key"),
];

/// Report a non-empty host key file, naming its type (and public fingerprint when readable).
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let content = data.trim_ascii();
    if content.is_empty() {
        return Vec::new();
    }
    let name = file_name(path);
    let from_name = name
        .strip_prefix("ssh_host_")
        .and_then(|n| n.strip_suffix("_key"))
        .filter(|t| !t.is_empty())
        .unwrap_or("unknown");
    let detail = describe(content);
    let evidence = format!("{} host key{detail}", clean(from_name.as_bytes()));
    vec![CheckHit {
        rule: RULE.id,
        severity: RULE.severity,
        line: None,
        start: 0,
        end: u64::MAX,
        evidence,
        fingerprint_of: content.to_vec(),
        secret: Some(content.to_vec()),
    }]
}

/// ` (format, type, fingerprint)` from the key's content, or "" when it is not recognised.
fn describe(content: &[u8]) -> String {
    const OPENSSH: &[u8] = b"-----BEGIN OPENSSH PRIVATE KEY-----";
    if let Some(rest) = content.strip_prefix(OPENSSH) {
        let end = memchr::memmem::find(rest, b"-----END").unwrap_or(rest.len());
        let body = rest.get(..end).unwrap_or(rest);
        return match parse_openssh_body(body) {
            Some(info) => {
                let mut parts = vec!["OpenSSH format".to_string()];
                parts.extend(info.key_type);
                parts.extend(info.fingerprint);
                if info.cipher != "none" {
                    parts.push(format!("encrypted with {}", info.cipher));
                }
                format!(" ({})", parts.join(", "))
            }
            None => " (OpenSSH format, unreadable)".into(),
        };
    }
    for (header, kind) in [
        (&b"-----BEGIN RSA PRIVATE KEY-----"[..], "PEM RSA"),
        (b"-----BEGIN EC PRIVATE KEY-----", "PEM EC"),
        (b"-----BEGIN DSA PRIVATE KEY-----", "PEM DSA"),
        (b"-----BEGIN PRIVATE KEY-----", "PEM PKCS#8"),
    ] {
        if content.starts_with(header) {
            return format!(" ({kind})");
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECDSA: &str = include_str!("../testdata/ssh_host_ecdsa_key");

    #[test]
    fn host_key_paths() {
        assert!(applies("/etc/ssh/ssh_host_ed25519_key"));
        assert!(applies("/etc/ssh/ssh_host_key"));
        assert!(!applies("/etc/ssh/ssh_host_ed25519_key.pub"));
        assert!(!applies("/etc/ssh/sshd_config"));
        assert!(!applies("/etc/ssh/backup/ssh_host_rsa_key"));
        assert!(!applies("/home/etc/ssh/ssh_host_rsa_key"));
    }

    #[test]
    fn openssh_host_key_gives_type_and_public_fingerprint() {
        let hits = check("/etc/ssh/ssh_host_ecdsa_key", ECDSA.as_bytes());
        assert_eq!(hits.len(), 1);
        let h = &hits[0];
        assert_eq!(h.rule, "ssh-host-private-key");
        assert_eq!(h.severity, Severity::High);
        // `ssh-keygen -lf ssh_host_ecdsa_key.pub` printed this fingerprint.
        assert_eq!(
            h.evidence,
            "ecdsa host key (OpenSSH format, ecdsa-sha2-nistp256, SHA256:kx9d2mni5vmyR7RlZ8uKCOoZuhl+3Pxxw8JZjJOeBEk)"
        );
        assert!(!h.evidence.contains("b3BlbnNzaC1rZXktdjE"));
    }

    #[test]
    fn pem_host_key_names_its_format() {
        let pem = include_str!("../testdata/rsa_pkcs1.pem");
        let hits = check("/etc/ssh/ssh_host_rsa_key", pem.as_bytes());
        assert_eq!(hits[0].evidence, "rsa host key (PEM RSA)");
    }

    #[test]
    fn empty_or_blank_file_is_fine() {
        assert!(check("/etc/ssh/ssh_host_rsa_key", b"").is_empty());
        assert!(check("/etc/ssh/ssh_host_rsa_key", b" \n\n").is_empty());
    }

    #[test]
    fn garbage_is_still_reported_without_panicking() {
        let hits = check(
            "/etc/ssh/ssh_host__key",
            b"-----BEGIN OPENSSH PRIVATE KEY-----\n\xff\xfe",
        );
        assert_eq!(
            hits[0].evidence,
            "unknown host key (OpenSSH format, unreadable)"
        );
    }
}
