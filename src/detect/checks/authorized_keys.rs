//! `authorized_keys` files: a key baked into an image grants its owner a login on every
//! instance launched from it, usually without the instance owner knowing.
//!
//! The finding lists each key's OpenSSH fingerprint (as `ssh-keygen -lf` prints it) so the
//! owner can be identified, and never the keys themselves.

use super::{CheckHit, CheckRule};
use crate::detect::registry::pattern::{Glob, glob, glob_nocase};
use crate::detect::sshkey::{decode_public_blob, fingerprint, is_key_type};
use crate::report::Severity;

/// The rule.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "ssh-authorized-keys",
    title: "SSH authorized_keys in the image",
    severity: Severity::High,
    remediation: "Remove authorized_keys from the image and inject keys at launch (EC2 key pair, cloud-init, SSM/EC2 Instance Connect). Check who owns each listed key.",
    suppresses: &[],
};

/// At most this many keys are listed in the evidence; the count is always complete.
const MAX_LISTED: usize = 16;

/// Whether `path` is an `authorized_keys` or `authorized_keys2` file in a `.ssh` directory.
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::AuthorizedKeys)
}

/// The files this check reads: `authorized_keys` and `authorized_keys2` in any `.ssh`.
/// Windows' OpenSSH server reads the keys of administrators from
/// `C:\\ProgramData\\ssh\\administrators_authorized_keys`.
pub(crate) const SCOPE: &[Glob] = &[
    glob(".ssh/authorized_keys"),
    glob(".ssh/authorized_keys2"),
    glob_nocase("/ProgramData/ssh/administrators_authorized_keys"),
];

/// One public key found on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    /// Key type (`ssh-ed25519`, ...).
    pub key_type: String,
    /// Decoded blob.
    pub blob: Vec<u8>,
}

/// Parse one `authorized_keys` line: `[options] keytype base64 [comment]`.
/// Comments, blank lines and lines without a valid key give `None`.
pub(crate) fn parse_line(line: &str) -> Option<PublicKey> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let rest = if is_key_type(first_token(line)) {
        line
    } else {
        skip_options(line)?.trim_start()
    };
    let mut tokens = rest.split_ascii_whitespace();
    let key_type = tokens.next()?;
    if !is_key_type(key_type) {
        return None;
    }
    let blob = decode_public_blob(key_type, tokens.next()?)?;
    Some(PublicKey {
        key_type: key_type.to_string(),
        blob,
    })
}

/// The first whitespace-separated token of `s` (empty if none).
fn first_token(s: &str) -> &str {
    s.split_ascii_whitespace().next().unwrap_or("")
}

/// Skip the options field (which may hold quoted spaces and `\"`); the rest of the line.
fn skip_options(line: &str) -> Option<&str> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && (c == ' ' || c == '\t') {
            return line.get(i..);
        }
    }
    None
}

/// Report a file holding at least one key: count and fingerprints.
pub(crate) fn check(data: &[u8]) -> Vec<CheckHit> {
    let text = String::from_utf8_lossy(data);
    let mut keys: Vec<PublicKey> = text.lines().filter_map(parse_line).collect();
    if keys.is_empty() {
        return Vec::new();
    }
    let mut listed: Vec<String> = keys
        .iter()
        .take(MAX_LISTED)
        .map(|k| format!("{} {}", k.key_type, fingerprint(&k.blob)))
        .collect();
    if keys.len() > MAX_LISTED {
        listed.push(format!("and {} more", keys.len() - MAX_LISTED));
    }
    let n = keys.len();
    let evidence = format!(
        "{n} key{}: {}",
        if n == 1 { "" } else { "s" },
        listed.join(", ")
    );
    keys.sort_by(|a, b| a.blob.cmp(&b.blob));
    let fingerprint_of: Vec<u8> = keys.iter().flat_map(|k| k.blob.iter().copied()).collect();
    vec![CheckHit {
        rule: RULE.id,
        severity: RULE.severity,
        line: None,
        start: 0,
        end: data.len() as u64,
        evidence,
        fingerprint_of,
        secret: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = include_str!("../testdata/authorized_keys");
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICwx54Wl6cuvOKyC3m0Ergxp8d99drLXe/oDuvP3tk/M fake@test";

    #[test]
    fn paths() {
        assert!(applies("/root/.ssh/authorized_keys"));
        assert!(applies("/home/ubuntu/.ssh/authorized_keys2"));
        assert!(!applies("/root/.ssh/authorized_keys.bak"));
        assert!(!applies("/etc/ssh/authorized_keys"));
    }

    #[test]
    fn options_comments_and_broken_lines() {
        let hits = check(FILE.as_bytes());
        assert_eq!(hits.len(), 1);
        // Both fingerprints as printed by `ssh-keygen -lf` on the .pub files.
        assert_eq!(
            hits[0].evidence,
            "2 keys: ssh-rsa SHA256:xX9RPA3Mz5maMW8mkZzPqOk7bANITcNcQeDnrnoQKmY, \
             ssh-ed25519 SHA256:2y02A99K+i4LCYctrFFFK+n57+JXml/AIxohjUYrfeA"
        );
        assert!(!hits[0].evidence.contains("AAAA"));
        assert_eq!(hits[0].severity, Severity::High);
    }

    #[test]
    fn fingerprint_does_not_depend_on_order() {
        let lines: Vec<&str> = FILE.lines().collect();
        let reversed = lines.iter().rev().copied().collect::<Vec<_>>().join("\n");
        assert_eq!(
            check(FILE.as_bytes())[0].fingerprint_of,
            check(reversed.as_bytes())[0].fingerprint_of
        );
    }

    #[test]
    fn quoted_options_with_spaces_and_escapes() {
        let line = format!(r#"command="echo \"a b\" && x",restrict {ED}"#);
        assert_eq!(parse_line(&line).unwrap().key_type, "ssh-ed25519");
        assert_eq!(parse_line(r#"command="unterminated ssh-rsa AAAA"#), None);
    }

    #[test]
    fn empty_and_keyless_files_give_nothing() {
        assert!(check(b"").is_empty());
        assert!(check(b"# only a comment\n\n").is_empty());
        assert!(check(b"ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ x\n").is_empty());
        assert!(check(&[0xff, 0xfe, b'\n']).is_empty());
    }

    #[test]
    fn many_keys_are_counted_but_listed_briefly() {
        let data = format!("{ED}\n").repeat(40);
        let hits = check(data.as_bytes());
        assert!(hits[0].evidence.starts_with("40 keys: "));
        assert!(hits[0].evidence.ends_with("and 24 more"));
    }
}
