//! Shell and REPL history files left in an image.
//!
//! A history records how the image was built: commands with inline passwords, tokens, URLs of
//! internal systems. Its contents also go through the signatures, so a key typed at the prompt
//! is a finding of its own; this check flags the history itself.

use super::{CheckHit, CheckRule, count_lines, file_name};
use crate::report::Severity;

/// The rule.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "shell-history",
    title: "Shell or REPL history in the image",
    severity: Severity::Medium,
    remediation: "Delete history files before creating the image (e.g. `history -c`, remove ~/.*_history) and review them for credentials used during the build; rotate any found.",
    suppresses: &[],
};

/// History file names recognised in any directory.
const NAMES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".zhistory",
    ".sh_history",
    ".ash_history",
    ".history",
    ".python_history",
    ".mysql_history",
    ".psql_history",
    ".node_repl_history",
    ".rediscli_history",
    ".sqlite_history",
    ".lesshst",
];

/// Whether `path` is a history file.
pub(crate) fn applies(path: &str) -> bool {
    NAMES.contains(&file_name(path)) || path.ends_with("/.local/share/fish/fish_history")
}

/// Report a history with any non-blank content; evidence is its line count.
pub(crate) fn check(data: &[u8], truncated: bool) -> Vec<CheckHit> {
    if data.trim_ascii().is_empty() {
        return Vec::new();
    }
    let lines = count_lines(data);
    let evidence = if truncated {
        format!("more than {lines} lines")
    } else {
        format!("{lines} line{}", if lines == 1 { "" } else { "s" })
    };
    vec![CheckHit {
        rule: RULE.id,
        severity: RULE.severity,
        line: None,
        start: 0,
        end: data.len() as u64,
        evidence,
        fingerprint_of: data.to_vec(),
        secret: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_histories_anywhere() {
        for p in [
            "/root/.bash_history",
            "/home/admin/.zsh_history",
            "/home/a/.local/share/fish/fish_history",
            "/var/lib/postgresql/.psql_history",
            "/root/.lesshst",
            "/root/.python_history",
        ] {
            assert!(applies(p), "{p}");
        }
        assert!(!applies("/root/.bash_history.d/x"));
        assert!(!applies("/root/.bashrc"));
        assert!(!applies("/usr/share/fish_history"));
    }

    #[test]
    fn line_count_is_the_evidence() {
        let data = b"sudo apt-get update\nexport AWS_PROFILE=build\nls -la\n";
        let hits = check(data, false);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].evidence, "3 lines");
        assert_eq!(hits[0].severity, Severity::Medium);
        assert_eq!(check(b"ls", false)[0].evidence, "1 line");
        assert_eq!(check(b"ls\n", true)[0].evidence, "more than 1 lines");
    }

    #[test]
    fn empty_history_is_fine() {
        assert!(check(b"", false).is_empty());
        assert!(check(b"\n\n  \n", false).is_empty());
    }
}
