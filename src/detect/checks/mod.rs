//! Path-based checks: files whose mere presence (or structure) is the problem, recognised by
//! where they live rather than by a content pattern.
//!
//! A check gets the first [`CHECK_CAP`] bytes of its file, the same bytes the signatures see,
//! so every file is read once. One family per file below.

use crate::report::Severity;

pub(crate) mod authorized_keys;
pub(crate) mod autostart;
pub(crate) mod cloud_init;
pub(crate) mod crypt;
pub(crate) mod glob;
pub(crate) mod history;
pub(crate) mod host_keys;
pub(crate) mod identity;
pub(crate) mod lnk;
pub(crate) mod miner;
pub(crate) mod packages;
pub(crate) mod shadow;
pub(crate) mod ssh_client;
pub(crate) mod sshd;
pub(crate) mod sudoers;
pub(crate) mod volume;
pub(crate) mod windows;
pub(crate) mod windows_autoruns;
pub(crate) mod windows_command;
pub(crate) mod windows_hijack;
pub(crate) mod windows_hives;
pub(crate) mod windows_persistence;
pub(crate) mod windows_remote;
pub(crate) mod windows_vault;
pub(crate) mod windows_wmi;

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

/// One finding produced by a check, before it gets its rule's title and remediation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckHit {
    /// Rule id, one of the registry's code rules.
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
    /// `/etc/ssl/private/ssl-cert-snakeoil.key`.
    SnakeoilKey,
    /// `*/.ssh/authorized_keys{,2}`.
    AuthorizedKeys,
    /// Shell and REPL histories.
    History,
    /// Editor and pager state (`.viminfo`, `.lesshst`, `.wget-hsts`).
    EditorHistory,
    /// `/etc/shadow`, `/etc/passwd` and their backups.
    Shadow,
    /// `~/.ssh/known_hosts`.
    KnownHosts,
    /// cloud-init state, logs and configuration.
    CloudInit,
    /// Per-instance identity: machine-id, DHCP leases, random seed.
    Identity,
    /// `ld.so.preload`, cron, systemd units, rc.local.
    Autostart,
    /// Miner binaries and configurations.
    Miner,
    /// Windows unattended-setup answer files.
    Unattend,
    /// Windows Startup folders, scheduled tasks and `Windows\Temp`.
    WindowsPersistence,
    /// Windows Credential Manager files.
    WindowsVault,
}

impl Check {
    /// Run the check on the file's first bytes; `truncated` says the file is longer than `data`.
    pub fn run(self, path: &str, data: &[u8], truncated: bool) -> Vec<CheckHit> {
        match self {
            Check::HostKey => host_keys::check(path, data),
            Check::SnakeoilKey => host_keys::check_snakeoil(data),
            Check::AuthorizedKeys => authorized_keys::check(data),
            Check::History => history::check(data, truncated),
            Check::EditorHistory => history::check_editor(path, data),
            Check::Shadow => shadow::check(path, data),
            Check::KnownHosts => ssh_client::check(data),
            Check::CloudInit => cloud_init::check(path, data),
            Check::Identity => identity::check(path, data),
            Check::Autostart => autostart::check(path, data),
            Check::Miner => miner::check(path, data),
            Check::Unattend => windows::check(path, data),
            Check::WindowsPersistence => windows_persistence::check(path, data),
            Check::WindowsVault => windows_vault::check(path, data),
        }
    }
}

/// One line of a text file: its 1-based number, byte range and text (without `\r\n`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextLine<'a> {
    /// 1-based line number.
    pub no: u64,
    /// Offset of its first byte.
    pub start: u64,
    /// Offset just past its last byte (before the newline).
    pub end: u64,
    /// The text; a line that is not UTF-8 is skipped by [`text_lines`].
    pub text: &'a str,
}

/// The UTF-8 lines of `data` (lines that are not UTF-8 are skipped, not guessed at).
pub(crate) fn text_lines(data: &[u8]) -> impl Iterator<Item = TextLine<'_>> {
    let mut offset = 0u64;
    data.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(i, raw)| {
            let start = offset;
            offset = offset.saturating_add(raw.len() as u64).saturating_add(1);
            let text = std::str::from_utf8(raw).ok()?;
            Some(TextLine {
                no: i as u64 + 1,
                start,
                end: start.saturating_add(raw.len() as u64),
                text: text.trim_end_matches('\r'),
            })
        })
}

impl CheckHit {
    /// A finding about a whole file, fingerprinted by `fp`, with no secret to show.
    pub(crate) fn file(rule: &CheckRule, severity: Severity, evidence: String, fp: &[u8]) -> Self {
        CheckHit {
            rule: rule.id,
            severity,
            line: None,
            start: 0,
            end: u64::MAX,
            evidence,
            fingerprint_of: fp.to_vec(),
            secret: None,
        }
    }

    /// A finding about one line, fingerprinted by `fp`, with no secret to show.
    pub(crate) fn at_line(
        rule: &CheckRule,
        severity: Severity,
        line: &TextLine<'_>,
        evidence: String,
        fp: &[u8],
    ) -> Self {
        CheckHit {
            rule: rule.id,
            severity,
            line: Some(line.no),
            start: line.start,
            end: line.end,
            evidence,
            fingerprint_of: fp.to_vec(),
            secret: None,
        }
    }
}

/// At most `max` characters of untrusted text for evidence, control characters blanked.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let cleaned = crate::detect::finding::clean(text.as_bytes());
    if cleaned.chars().count() <= max {
        cleaned
    } else {
        let mut s: String = cleaned.chars().take(max).collect();
        s.push('…');
        s
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
    fn lines_are_counted() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a"), 1);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\nb"), 2);
        assert_eq!(file_name("/a/b"), "b");
    }
}
