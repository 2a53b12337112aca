//! `/etc/shadow`: accounts that can log in with a password baked into the image.
//!
//! A usable hash can be cracked offline and is the same on every instance; an empty password
//! field lets anyone log in (where PAM allows it). Locked and disabled accounts are fine. The
//! hash itself never appears in evidence, only its scheme and a fingerprint.

use super::{CheckHit, CheckRule};
use crate::detect::finding::clean;
use crate::report::Severity;

/// A usable password hash.
pub(crate) const HASH_RULE: CheckRule = CheckRule {
    id: "shadow-password-hash",
    title: "Account with a usable password hash",
    severity: Severity::High,
    remediation: "Lock the account (`passwd -l USER`, or `*` in /etc/shadow) before creating the image and use key-based or federated access; change this password wherever it is reused.",
    suppresses: &[],
};

/// An empty password field.
pub(crate) const EMPTY_RULE: CheckRule = CheckRule {
    id: "shadow-empty-password",
    title: "Account with an empty password",
    severity: Severity::Critical,
    remediation: "Lock the account (`passwd -l USER`) or set `*` in the password field before creating the image.",
    suppresses: &[],
};

/// Whether `path` is the shadow file or its `shadow-` backup.
pub(crate) fn applies(path: &str) -> bool {
    path == "/etc/shadow" || path == "/etc/shadow-"
}

/// The crypt scheme of a usable hash, or `None` when the field cannot match any password
/// (locked `!...`, disabled `*...`, `x`, garbage).
pub(crate) fn scheme(hash: &str) -> Option<&'static str> {
    if hash.starts_with('!') || hash.starts_with('*') {
        return None;
    }
    if let Some(rest) = hash.strip_prefix('$') {
        let id = rest.split('$').next().unwrap_or("");
        let name = match id {
            "1" => "md5-crypt",
            "2" | "2a" | "2b" | "2x" | "2y" => "bcrypt",
            "5" => "sha256-crypt",
            "6" => "sha512-crypt",
            "y" => "yescrypt",
            "gy" => "gost-yescrypt",
            "7" => "scrypt",
            "sha1" => "sha1-crypt",
            "md5" => "sun-md5-crypt",
            _ => "unknown-crypt",
        };
        // A scheme marker with nothing after it cannot be a real hash.
        return (rest.len() > id.len() + 1).then_some(name);
    }
    let des = hash.len() == 13
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    des.then_some("des-crypt")
}

/// One finding per account with an empty or usable password.
pub(crate) fn check(data: &[u8]) -> Vec<CheckHit> {
    let mut hits = Vec::new();
    let mut offset = 0u64;
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        let start = offset;
        offset += raw.len() as u64 + 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let line = line.trim_end_matches('\r');
        let mut fields = line.split(':');
        let (Some(user), Some(pw)) = (fields.next(), fields.next()) else {
            continue;
        };
        if user.is_empty()
            || user.starts_with('#')
            || user.starts_with('+')
            || user.starts_with('-')
        {
            continue;
        }
        let user_shown = clean(user.as_bytes());
        let hit = |rule: &CheckRule, severity, evidence, fp: &[u8], secret| CheckHit {
            rule: rule.id,
            severity,
            line: Some(i as u64 + 1),
            start,
            end: start + raw.len() as u64,
            evidence,
            fingerprint_of: fp.to_vec(),
            secret,
        };
        if pw.is_empty() {
            let fp = format!("{user}:");
            hits.push(hit(
                &EMPTY_RULE,
                EMPTY_RULE.severity,
                format!("{user_shown}: empty password field"),
                fp.as_bytes(),
                None,
            ));
        } else if let Some(name) = scheme(pw) {
            let severity = if user == "root" {
                Severity::Critical
            } else {
                HASH_RULE.severity
            };
            hits.push(hit(
                &HASH_RULE,
                severity,
                format!("{user_shown}: {name}"),
                pw.as_bytes(),
                Some(pw.as_bytes().to_vec()),
            ));
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Debian 12 layout; the two hashes were made for this test with `openssl passwd -6`.
    const ROOT_HASH: &str = "$6$FakeSalt1$Q8xLV6Lx..D8S49CrfaK3.ErPc4h.hs74651H.rEHCYTnJd.TqmFFa0x3rhq1fSTvi/7wAd./1ViuENVfTERn0";
    const USER_HASH: &str = "$6$GsmTuSZvzy/oey04$XQBggbLRxaVdLZ.GoYnyrDAnoxydr8FFRz2n2y3q.zzgHMVZTb1j7deZsh40.fQR7sIMXKkNyqX3xINe3XRcI1";

    fn shadow() -> String {
        format!(
            "root:{ROOT_HASH}:19700:0:99999:7:::\n\
             daemon:*:19700:0:99999:7:::\n\
             bin:*:19700:0:99999:7:::\n\
             sys:*:19700:0:99999:7:::\n\
             sync:*:19700:0:99999:7:::\n\
             systemd-network:!*:19700::::::\n\
             messagebus:!:19700::::::\n\
             sshd:!:19700::::::\n\
             _chrony:!:19700::::::\n\
             admin:{USER_HASH}:19700:0:99999:7:::\n\
             locked:!{USER_HASH}:19700:0:99999:7:::\n\
             old:!!:19700:0:99999:7:::\n\
             solaris:*LK*:::::::\n\
             guest::19700:0:99999:7:::\n\
             broken-line-without-colon\n\
             :$6$x$y:::\n"
        )
    }

    #[test]
    fn debian_shadow_findings() {
        let data = shadow();
        let hits = check(data.as_bytes());
        let got: Vec<(&str, Severity, &str, Option<u64>)> = hits
            .iter()
            .map(|h| (h.rule, h.severity, h.evidence.as_str(), h.line))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "shadow-password-hash",
                    Severity::Critical,
                    "root: sha512-crypt",
                    Some(1)
                ),
                (
                    "shadow-password-hash",
                    Severity::High,
                    "admin: sha512-crypt",
                    Some(10)
                ),
                (
                    "shadow-empty-password",
                    Severity::Critical,
                    "guest: empty password field",
                    Some(14)
                ),
            ]
        );
        for h in &hits {
            assert!(!h.evidence.contains("$6$"));
        }
        assert_eq!(hits[0].fingerprint_of, ROOT_HASH.as_bytes());
        let admin_start = data.find("admin:").unwrap() as u64;
        assert_eq!(hits[1].start, admin_start);
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("$y$j9T$abc$def"), Some("yescrypt"));
        assert_eq!(scheme("$2b$12$abcdefghijklmnopqrstuv"), Some("bcrypt"));
        assert_eq!(scheme("$1$salt$hash"), Some("md5-crypt"));
        assert_eq!(scheme("abcdefghij./1"), Some("des-crypt"));
        assert_eq!(scheme("$6$"), None);
        assert_eq!(scheme("$"), None);
        assert_eq!(scheme("x"), None);
        assert_eq!(scheme("!$6$a$b"), None);
        assert_eq!(scheme("*LK*"), None);
    }

    #[test]
    fn malformed_input_never_panics() {
        assert!(check(b"").is_empty());
        assert!(check(b"\n\n::\n:\n").is_empty());
        assert!(check(&[0xff, b':', 0xfe, b'\n']).is_empty());
        assert_eq!(check(b"root:\r\n").len(), 1);
    }
}
