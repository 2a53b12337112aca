//! SSH client state under `~/.ssh` other than `authorized_keys`: `known_hosts`.
//!
//! A `known_hosts` left by the build names the hosts the builder connected to (internal Git
//! servers, bastions). It is no secret and grants nothing, so it is info; private keys under
//! `~/.ssh` are found by the content signatures whatever their name.

use super::{CheckHit, CheckRule, text_lines};
use crate::detect::registry::pattern::{Glob, glob};
use crate::report::Severity;

/// The rule.
pub(crate) const KNOWN_HOSTS_RULE: CheckRule = CheckRule {
    id: "ssh-known-hosts",
    title: "SSH known_hosts left in the image",
    severity: Severity::Info,
    remediation: "Delete ~/.ssh/known_hosts before creating the image: it lists the hosts the build connected to.",
    suppresses: &[],
};

/// Whether `path` is a `known_hosts` file in a `.ssh` directory.
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::KnownHosts)
}

/// The files this check reads.
pub(crate) const SCOPE: &[Glob] = &[glob(".ssh/known_hosts{,2,.old}")];

/// Report a `known_hosts` with at least one entry; evidence counts entries and hashed ones.
pub(crate) fn check(data: &[u8]) -> Vec<CheckHit> {
    let mut entries = 0u64;
    let mut hashed = 0u64;
    for line in text_lines(data) {
        let t = line.text.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        entries += 1;
        // `@cert-authority host key` or `|1|salt|hash key`.
        let host = t.split_whitespace().find(|w| !w.starts_with('@'));
        if host.is_some_and(|h| h.starts_with("|1|")) {
            hashed += 1;
        }
    }
    if entries == 0 {
        return Vec::new();
    }
    let plural = if entries == 1 { "y" } else { "ies" };
    let evidence = format!("{entries} host entr{plural} ({hashed} with hashed host names)");
    vec![CheckHit::file(
        &KNOWN_HOSTS_RULE,
        KNOWN_HOSTS_RULE.severity,
        evidence,
        data,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_paths() {
        assert!(applies("/root/.ssh/known_hosts"));
        assert!(applies("/home/ec2-user/.ssh/known_hosts.old"));
        assert!(!applies("/etc/ssh/ssh_known_hosts"));
        assert!(!applies("/root/known_hosts"));
        assert!(!applies("/root/.ssh/authorized_keys"));
    }

    #[test]
    fn counts_entries() {
        // Public host keys as ssh-keyscan prints them (GitHub's published ed25519 key).
        let data = b"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
# comment\n\n";
        let hits = check(data);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Severity::Info);
        assert_eq!(
            hits[0].evidence,
            "2 host entries (1 with hashed host names)"
        );
        assert!(check(b"# nothing\n").is_empty());
        assert!(check(&[0xff, 0xfe]).is_empty());
    }
}
