//! `/etc/shadow` and `/etc/passwd`: accounts that can log in with a password baked into the image.
//!
//! A usable hash can be cracked offline and is the same on every instance; an empty password
//! field lets anyone log in (where PAM allows it). Locked and disabled accounts are fine. The
//! hash itself never appears in evidence, only its scheme and a fingerprint.
//!
//! Severities: an empty password or a hash of a well-known default password grants access as it
//! stands (critical); a usable hash is high (critical for root); a hash in the world-readable
//! `/etc/passwd` is high (critical for root); a DES or MD5-crypt hash is high on its own, as it
//! falls to a short offline attack.

use super::crypt::{self, Verdict};
use super::{CheckHit, CheckRule, file_name};
use crate::detect::finding::clean;
use crate::detect::registry::pattern::{Glob, glob};
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

/// A hash in `/etc/passwd` instead of `x`.
pub(crate) const PASSWD_RULE: CheckRule = CheckRule {
    id: "passwd-password-hash",
    title: "Password hash in the world-readable /etc/passwd",
    severity: Severity::High,
    remediation: "Move hashes to /etc/shadow (`pwconv`) and lock the account (`passwd -l USER`) before creating the image; change this password wherever it is reused.",
    suppresses: &[],
};

/// A DES or MD5-crypt hash.
pub(crate) const WEAK_RULE: CheckRule = CheckRule {
    id: "shadow-weak-hash",
    title: "Password hashed with a weak scheme (DES or MD5-crypt)",
    severity: Severity::High,
    remediation: "Lock the account before creating the image; if it needs a password, set it with a modern scheme (yescrypt or SHA-512-crypt, see ENCRYPT_METHOD in /etc/login.defs) and change it wherever it is reused.",
    suppresses: &[],
};

/// A hash of a well-known default password.
pub(crate) const DEFAULT_RULE: CheckRule = CheckRule {
    id: "shadow-default-password",
    title: "Account whose password is a well-known default",
    severity: Severity::Critical,
    remediation: "Lock the account (`passwd -l USER`) before creating the image; instances already launched from it must have the password changed or the account locked now.",
    suppresses: &["shadow-password-hash", "passwd-password-hash"],
};

/// Most hashes of one file tried against the default passwords (each costs up to ~16 hashings).
const MAX_VERIFIED: usize = 32;

/// Whether `path` is the shadow or passwd file, or a `-` backup of one.
/// The files this check reads: the account databases and their backups.
pub(crate) const SCOPE: &[Glob] = &[glob("/etc/{shadow,shadow-,passwd,passwd-}")];

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

/// One line of an account file and where it is.
struct Account<'a> {
    user: &'a str,
    pw: &'a str,
    line: u64,
    start: u64,
    end: u64,
}

impl Account<'_> {
    fn hit(&self, rule: &CheckRule, severity: Severity, evidence: String) -> CheckHit {
        let fp = if self.pw.is_empty() {
            format!("{}:", self.user)
        } else {
            self.pw.to_string()
        };
        CheckHit {
            rule: rule.id,
            severity,
            line: Some(self.line),
            start: self.start,
            end: self.end,
            evidence,
            fingerprint_of: fp.into_bytes(),
            secret: (!self.pw.is_empty()).then(|| self.pw.as_bytes().to_vec()),
        }
    }
}

/// The accounts of a passwd- or shadow-format file (user and second field), skipping comments
/// and NIS `+`/`-` entries.
fn accounts(data: &[u8]) -> Vec<Account<'_>> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        let start = offset;
        offset = offset.saturating_add(raw.len() as u64 + 1);
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
        out.push(Account {
            user,
            pw,
            line: i as u64 + 1,
            start,
            end: start + raw.len() as u64,
        });
    }
    out
}

/// Accounts of a shadow-format file that can log in with a password: `(usable, empty)`.
/// Volume checks use this to weigh an sshd setting by whether any account has a password.
pub(crate) fn password_users(data: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut usable = Vec::new();
    let mut empty = Vec::new();
    for a in accounts(data) {
        if a.pw.is_empty() {
            empty.push(a.user.to_string());
        } else if scheme(a.pw).is_some() {
            usable.push(a.user.to_string());
        }
    }
    (usable, empty)
}

/// Findings for every account of `/etc/shadow` or `/etc/passwd` (told apart by `path`) with an
/// empty, usable, weak or default password.
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let passwd = file_name(path).starts_with("passwd");
    let mut hits = Vec::new();
    let mut verified = 0usize;
    for acct in accounts(data) {
        let user_shown = clean(acct.user.as_bytes());
        if acct.pw.is_empty() {
            hits.push(acct.hit(
                &EMPTY_RULE,
                EMPTY_RULE.severity,
                format!("{user_shown}: empty password field"),
            ));
            continue;
        }
        // In passwd, `x` points to shadow; `*` and `!` lock the account.
        if passwd && matches!(acct.pw, "x" | "*" | "!" | "!!") {
            continue;
        }
        let Some(name) = scheme(acct.pw) else {
            continue;
        };
        let rule = if passwd { &PASSWD_RULE } else { &HASH_RULE };
        let severity = if acct.user == "root" {
            Severity::Critical
        } else {
            rule.severity
        };
        let verdict = if verified < MAX_VERIFIED {
            verified += 1;
            crypt::default_password(acct.user, acct.pw)
        } else {
            Verdict::Skipped(format!("more than {MAX_VERIFIED} hashes in the file"))
        };
        let note = match &verdict {
            Verdict::Skipped(why) => format!(" (not tried against default passwords: {why})"),
            _ => String::new(),
        };
        hits.push(acct.hit(rule, severity, format!("{user_shown}: {name}{note}")));
        if verdict == Verdict::Default {
            hits.push(acct.hit(
                &DEFAULT_RULE,
                DEFAULT_RULE.severity,
                format!("{user_shown}: {name} hash matches a well-known default password"),
            ));
        }
        if matches!(name, "des-crypt" | "md5-crypt") {
            hits.push(acct.hit(
                &WEAK_RULE,
                WEAK_RULE.severity,
                format!("{user_shown}: {name}"),
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
        let hits = check("/etc/shadow", data.as_bytes());
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
        assert!(check("/etc/shadow", b"").is_empty());
        assert!(check("/etc/shadow", b"\n\n::\n:\n").is_empty());
        assert!(check("/etc/passwd", &[0xff, b':', 0xfe, b'\n']).is_empty());
        assert_eq!(check("/etc/shadow", b"root:\r\n").len(), 1);
    }

    /// Debian 12's stock /etc/passwd, plus two bad accounts.
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
messagebus:x:100:107::/nonexistent:/usr/sbin/nologin
sshd:x:101:65534::/run/sshd:/usr/sbin/nologin
admin:x:1000:1000:Debian:/home/admin:/bin/bash
legacy:abhKo2urtNdfg:1001:1001::/home/legacy:/bin/sh
locked:*:1002:1002::/home/locked:/bin/sh
nopw::1003:1003::/home/nopw:/bin/sh
+::::::
";

    #[test]
    fn passwd_hashes_weak_and_default() {
        let hits = check("/etc/passwd", PASSWD.as_bytes());
        let got: Vec<(&str, Severity, &str)> = hits
            .iter()
            .map(|h| (h.rule, h.severity, h.evidence.as_str()))
            .collect();
        // crypt("toor", "ab") is the DES hash on the legacy line.
        assert_eq!(
            got,
            [
                ("passwd-password-hash", Severity::High, "legacy: des-crypt"),
                (
                    "shadow-default-password",
                    Severity::Critical,
                    "legacy: des-crypt hash matches a well-known default password"
                ),
                ("shadow-weak-hash", Severity::High, "legacy: des-crypt"),
                (
                    "shadow-empty-password",
                    Severity::Critical,
                    "nopw: empty password field"
                ),
            ]
        );
        assert!(hits.iter().all(|h| !h.evidence.contains("toor")));
        assert_eq!(hits[0].line, Some(12));
        assert_eq!(hits[0].fingerprint_of, b"abhKo2urtNdfg");
    }

    #[test]
    fn ubuntu_default_user_with_its_own_name_as_password() {
        // crypt("ubuntu", "$y$j75$F5Jx5fExrKuPp53xLKQ..1$") by libxcrypt.
        let data = "root:*:19700:0:99999:7:::\n\
            ubuntu:$y$j75$F5Jx5fExrKuPp53xLKQ..1$tZBaBsKn9lLAOAWKU2e36aJXEJVjhORkPrlFo8YvZD.:19700:0:99999:7:::\n\
            old:$1$Xy12abcd$YcnV0cujcsm7lFRNybAHz/:19700:0:99999:7:::\n\
            slow:$6$rounds=5000000$salt$abc:19700:0:99999:7:::\n";
        let hits = check("/etc/shadow", data.as_bytes());
        let got: Vec<(&str, &str)> = hits.iter().map(|h| (h.rule, h.evidence.as_str())).collect();
        assert_eq!(
            got,
            [
                ("shadow-password-hash", "ubuntu: yescrypt"),
                (
                    "shadow-default-password",
                    "ubuntu: yescrypt hash matches a well-known default password"
                ),
                ("shadow-password-hash", "old: md5-crypt"),
                ("shadow-weak-hash", "old: md5-crypt"),
                (
                    "shadow-password-hash",
                    "slow: sha512-crypt (not tried against default passwords: 5000000 rounds exceed the cap of 1000000)"
                ),
            ]
        );
        // The default-password finding covers the same span, so it hides the plain hash one.
        assert_eq!((hits[0].start, hits[0].end), (hits[1].start, hits[1].end));
        assert!(DEFAULT_RULE.suppresses.contains(&HASH_RULE.id));
    }
}
