//! Shell and REPL history files left in an image.
//!
//! A history records how the image was built: commands with inline passwords, tokens, URLs of
//! internal systems. Its contents also go through the signatures, so a key typed at the prompt
//! is a finding of its own; this check flags the history itself. PowerShell's PSReadLine history
//! (`ConsoleHost_history.txt`) counts as a shell history.
//!
//! Editor and pager state (`.viminfo`, `.lesshst`, `.wget-hsts`) is a weaker signal: it names
//! files edited and hosts fetched during the build, rarely a secret. It is reported at info.

use super::{CheckHit, CheckRule, count_lines, file_name};
use crate::detect::registry::pattern::{Glob, glob, glob_nocase};
use crate::report::Severity;

/// The rule.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "shell-history",
    title: "Shell or REPL history in the image",
    severity: Severity::Medium,
    remediation: "Delete history files before creating the image (e.g. `history -c`, remove ~/.*_history) and review them for credentials used during the build; rotate any found.",
    suppresses: &[],
};

/// Editor, pager and downloader state.
pub(crate) const EDITOR_RULE: CheckRule = CheckRule {
    id: "editor-history",
    title: "Editor or tool history in the image",
    severity: Severity::Info,
    remediation: "Delete ~/.viminfo, ~/.lesshst and ~/.wget-hsts before creating the image; they record files opened and hosts contacted during the build.",
    suppresses: &[],
};

/// Editor and tool state files, recognised in any directory.
pub(crate) const EDITOR_SCOPE: &[Glob] = &[glob("{.viminfo,.lesshst,.wget-hsts}")];

/// History files, recognised in any directory (PowerShell's in any case).
pub(crate) const SCOPE: &[Glob] = &[
    glob(
        "{.bash_history,.zsh_history,.zhistory,.sh_history,.ash_history,.history,\
.python_history,.mysql_history,.psql_history,.node_repl_history,.rediscli_history,\
.sqlite_history}",
    ),
    glob(".local/share/fish/fish_history"),
    glob_nocase("ConsoleHost_history.txt"),
];

/// Whether `path` is a history file.
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::History)
}

/// Whether `path` is editor or tool state.
#[cfg(test)]
fn applies_editor(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::EditorHistory)
}

/// Report non-empty editor or tool state; evidence is its name and size.
pub(crate) fn check_editor(path: &str, data: &[u8]) -> Vec<CheckHit> {
    if data.trim_ascii().is_empty() {
        return Vec::new();
    }
    let evidence = format!("{} ({} bytes)", file_name(path), data.len());
    vec![CheckHit::file(
        &EDITOR_RULE,
        EDITOR_RULE.severity,
        evidence,
        data,
    )]
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
            "/root/.python_history",
            "/C/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt",
        ] {
            assert!(applies(p), "{p}");
        }
        assert!(!applies("/root/.lesshst"));
        assert!(applies_editor("/root/.lesshst"));
        assert!(applies_editor("/home/admin/.viminfo"));
        assert!(applies_editor("/root/.wget-hsts"));
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

    #[test]
    fn editor_state_is_info() {
        // What vim 9 writes on exit, trimmed.
        let viminfo = b"# This viminfo file was generated by Vim 9.0.\n# You may edit it if you're careful!\n\n# Value of 'encoding' when this file was written\n*encoding=utf-8\n\n# File marks:\n'0  12  0  /etc/ssh/sshd_config\n";
        let hits = check_editor("/root/.viminfo", viminfo);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rule, "editor-history");
        assert_eq!(hits[0].severity, Severity::Info);
        assert!(hits[0].evidence.starts_with(".viminfo ("));
        assert!(check_editor("/root/.lesshst", b"").is_empty());
        assert!(check_editor("/root/.wget-hsts", b"\n").is_empty());
    }

    #[test]
    fn powershell_history_is_a_shell_history() {
        let data = b"Get-WindowsFeature\r\nInstall-WindowsFeature Web-Server\r\n";
        assert_eq!(check(data, false)[0].evidence, "2 lines");
    }
}
