//! Path-based checks: files whose mere presence (or structure) is the problem, recognised by
//! where they live rather than by a content pattern.
//!
//! A check gets the first [`CHECK_CAP`] bytes of its file, the same bytes the signatures see,
//! so every file is read once. One family per file below.

use crate::report::Severity;

pub(crate) mod authorized_keys;
pub(crate) mod history;
pub(crate) mod host_keys;
pub(crate) mod shadow;

/// At most this many bytes of a file are given to a check (a larger file is marked truncated).
pub(crate) const CHECK_CAP: usize = 1024 * 1024;

/// The static description of a code check's rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckRule {
    /// Rule id (a contract: reports and tests use it).
    pub id: &'static str,
    /// Human title.
    pub title: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// What to do.
    pub remediation: &'static str,
    /// Rule ids whose findings on the same span this rule's findings hide.
    pub suppresses: &'static [&'static str],
}

/// Every code check's rule.
pub(crate) const CHECK_RULES: &[CheckRule] = &[
    host_keys::RULE,
    authorized_keys::RULE,
    history::RULE,
    shadow::HASH_RULE,
    shadow::EMPTY_RULE,
];

/// One finding produced by a check, before it gets its rule's title and remediation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckHit {
    /// Rule id, one of [`CHECK_RULES`].
    pub rule: &'static str,
    /// Severity of this finding.
    pub severity: Severity,
    /// 1-based line, when the finding is about one line.
    pub line: Option<u64>,
    /// File offset the finding starts at.
    pub start: u64,
    /// File offset it ends at (exclusive); `u64::MAX` for "the whole file".
    pub end: u64,
    /// Redacted evidence.
    pub evidence: String,
    /// Bytes whose sha256 is the finding's fingerprint.
    pub fingerprint_of: Vec<u8>,
    /// The secret in clear, shown only with `show_secrets`.
    pub secret: Option<Vec<u8>>,
}

/// A family of path-based checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// `/etc/ssh/ssh_host_*_key`.
    HostKey,
    /// `*/.ssh/authorized_keys{,2}`.
    AuthorizedKeys,
    /// Shell and REPL histories.
    History,
    /// `/etc/shadow` and its backup.
    Shadow,
}

impl Check {
    /// The check that applies to `path`, if any (a path belongs to at most one family).
    pub fn for_path(path: &str) -> Option<Check> {
        if host_keys::applies(path) {
            Some(Check::HostKey)
        } else if authorized_keys::applies(path) {
            Some(Check::AuthorizedKeys)
        } else if history::applies(path) {
            Some(Check::History)
        } else if shadow::applies(path) {
            Some(Check::Shadow)
        } else {
            None
        }
    }

    /// Run the check on the file's first bytes; `truncated` says the file is longer than `data`.
    pub fn run(self, path: &str, data: &[u8], truncated: bool) -> Vec<CheckHit> {
        match self {
            Check::HostKey => host_keys::check(path, data),
            Check::AuthorizedKeys => authorized_keys::check(data),
            Check::History => history::check(data, truncated),
            Check::Shadow => shadow::check(data),
        }
    }
}

/// The last path component.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Number of lines in `data` (a last line without a newline counts).
pub(crate) fn count_lines(data: &[u8]) -> u64 {
    let n = memchr::memchr_iter(b'\n', data).count() as u64;
    n + u64::from(data.last().is_some_and(|&b| b != b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_one_family() {
        assert_eq!(
            Check::for_path("/etc/ssh/ssh_host_rsa_key"),
            Some(Check::HostKey)
        );
        assert_eq!(Check::for_path("/etc/ssh/ssh_host_rsa_key.pub"), None);
        assert_eq!(
            Check::for_path("/home/ec2-user/.ssh/authorized_keys"),
            Some(Check::AuthorizedKeys)
        );
        assert_eq!(Check::for_path("/root/.bash_history"), Some(Check::History));
        assert_eq!(Check::for_path("/etc/shadow"), Some(Check::Shadow));
        assert_eq!(Check::for_path("/etc/passwd"), None);
        assert_eq!(Check::for_path(""), None);
    }

    #[test]
    fn check_ids_are_unique() {
        let mut ids: Vec<&str> = CHECK_RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECK_RULES.len());
    }

    #[test]
    fn lines_are_counted() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a"), 1);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\nb"), 2);
        assert_eq!(file_name("/a/b"), "b");
    }
}
