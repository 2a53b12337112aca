//! sudoers: `/etc/sudoers` and what it includes (`@includedir`/`#includedir`,
//! `@include`/`#include`), for rules that give root without a password.
//!
//! Cloud images give their default user `NOPASSWD: ALL` on purpose (cloud-init's
//! `90-cloud-init-users`): that user logs in with the instance's key pair only. Anyone else with
//! `NOPASSWD: ALL` (another user, a group such as `%wheel` or `%sudo`, a user alias) turns any
//! foothold in that account into root: high; `ALL` users, or `Defaults !authenticate`, makes it
//! every account: critical and high.
//!
//! Included directories are read as sudo does: files sorted lexically, names ending in `~` or
//! containing `.` skipped; relative include paths are relative to the including file's
//! directory.
//!
//! A file or included directory that cannot be read is returned as [`Unreadable`] (the scan
//! reports it and is incomplete). Each finding is a fact about one line of a file that was read,
//! so the findings of the readable files stand; none is made about the unreadable one.

use super::{CheckHit, CheckRule, TextLine, clip, text_lines};
use crate::detect::lookup::{FileLookup, Unreadable};
use crate::report::Severity;

/// The rule.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "sudo-nopasswd",
    title: "sudo grants root without a password beyond the cloud default user",
    severity: Severity::High,
    remediation: "Remove the NOPASSWD rule (or `Defaults !authenticate`) from sudoers before creating the image; keep passwordless sudo for the distribution's default cloud user only.",
    suppresses: &[],
};

/// Users that get `NOPASSWD: ALL` by design in cloud images (and root, which gains nothing).
const CLOUD_USERS: &[&str] = &[
    "root",
    "ec2-user",
    "ubuntu",
    "admin",
    "centos",
    "debian",
    "fedora",
    "rocky",
    "almalinux",
    "cloud-user",
];

/// Tags that may precede a command.
const TAGS: &[&str] = &[
    "NOPASSWD",
    "PASSWD",
    "NOEXEC",
    "EXEC",
    "SETENV",
    "NOSETENV",
    "LOG_INPUT",
    "NOLOG_INPUT",
    "LOG_OUTPUT",
    "NOLOG_OUTPUT",
    "MAIL",
    "NOMAIL",
    "FOLLOW",
    "NOFOLLOW",
    "INTERCEPT",
    "NOINTERCEPT",
];

/// Most files read, deepest include nesting and most bytes per file.
const MAX_FILES: usize = 256;
const MAX_DEPTH: usize = 8;
const MAX_BYTES: usize = 1024 * 1024;

/// State of one read of the sudoers tree.
struct Reader<'a> {
    lookup: &'a dyn FileLookup,
    files: usize,
    out: Vec<(String, CheckHit)>,
    unread: Vec<Unreadable>,
}

impl Reader<'_> {
    fn read(&mut self, path: &str, depth: usize) {
        if depth > MAX_DEPTH || self.files >= MAX_FILES {
            return;
        }
        self.files += 1;
        let data = match self.lookup.read(path, MAX_BYTES) {
            Ok(Some(data)) => data,
            Ok(None) => return,
            Err(e) => return self.unread.push(e),
        };
        let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
        let mut pending: Option<(TextLine<'_>, String)> = None;
        for line in text_lines(&data) {
            // Join `\`-continued lines; the finding points at the first one.
            let (first, mut text) = match pending.take() {
                Some((first, mut acc)) => {
                    acc.push(' ');
                    acc.push_str(line.text.trim());
                    (first, acc)
                }
                None => (line, line.text.trim().to_string()),
            };
            if text.ends_with('\\') && text.len() < MAX_BYTES {
                text.pop();
                pending = Some((first, text));
                continue;
            }
            self.line(path, dir, &first, &text, depth);
        }
        if let Some((first, text)) = pending {
            self.line(path, dir, &first, &text, depth);
        }
    }

    /// One logical line of `path` (in directory `dir`).
    fn line(&mut self, path: &str, dir: &str, at: &TextLine<'_>, text: &str, depth: usize) {
        let resolve = |arg: &str| {
            let arg = arg.trim().trim_matches('"');
            if arg.starts_with('/') {
                arg.to_string()
            } else {
                format!("{dir}/{arg}")
            }
        };
        for (directive, is_dir) in [
            ("@includedir", true),
            ("#includedir", true),
            ("@include", false),
            ("#include", false),
        ] {
            let Some(arg) = text.strip_prefix(directive) else {
                continue;
            };
            if !arg.starts_with(char::is_whitespace) {
                continue;
            }
            let target = resolve(arg);
            if is_dir {
                let names = match self.lookup.list(&target) {
                    Ok(names) => names,
                    Err(e) => return self.unread.push(e),
                };
                let mut names: Vec<String> = names
                    .into_iter()
                    .filter(|n| !n.ends_with('~') && !n.contains('.'))
                    .collect();
                names.sort();
                for n in names {
                    self.read(&format!("{}/{n}", target.trim_end_matches('/')), depth + 1);
                }
            } else {
                self.read(&target, depth + 1);
            }
            return;
        }
        if text.is_empty() || text.starts_with('#') {
            return;
        }
        let hit = |severity: Severity, evidence: String| {
            (
                path.to_string(),
                CheckHit::at_line(&RULE, severity, at, evidence, text.as_bytes()),
            )
        };
        let first = text.split_whitespace().next().unwrap_or("");
        if first == "Defaults" || first.starts_with("Defaults") {
            let binding = first.get("Defaults".len()..).unwrap_or("");
            let rest = text.get(first.len()..).unwrap_or("");
            let off = rest.split(',').any(|o| o.trim() == "!authenticate");
            if off {
                let who = if binding.is_empty() {
                    "everyone".to_string()
                } else {
                    clip(binding.trim_start_matches([':', '@', '>', '!']), 60)
                };
                self.out.push(hit(
                    Severity::High,
                    format!("Defaults !authenticate for {who}"),
                ));
            }
            return;
        }
        if first.ends_with("_Alias") {
            return;
        }
        let Some((left, right)) = text.split_once('=') else {
            return;
        };
        let users = user_list(left);
        if !nopasswd_all(right) {
            return;
        }
        let flagged: Vec<&str> = users
            .iter()
            .copied()
            .filter(|u| !CLOUD_USERS.contains(u))
            .collect();
        if flagged.is_empty() {
            return;
        }
        let severity = if flagged.contains(&"ALL") {
            Severity::Critical
        } else {
            RULE.severity
        };
        let evidence = format!("{}: NOPASSWD: ALL", clip(&flagged.join(", "), 120));
        self.out.push(hit(severity, evidence));
    }
}

/// The users of a user specification's left side (`alice, %wheel  ALL`): all but the host list.
fn user_list(left: &str) -> Vec<&str> {
    let words: Vec<&str> = left.split_whitespace().collect();
    // The host list is the last word group; users are the comma-joined words before it.
    let mut users = Vec::new();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        users.extend(w.split(',').map(str::trim).filter(|u| !u.is_empty()));
        let continues = w.ends_with(',') || words.get(i + 1).is_some_and(|n| n.starts_with(','));
        i += 1;
        if !continues {
            break;
        }
    }
    users
}

/// Whether a command list gives `ALL` with `NOPASSWD` in effect.
fn nopasswd_all(right: &str) -> bool {
    // Drop Runas specifications: `(ALL : ALL)` holds `:` and `,`.
    let mut flat = String::with_capacity(right.len());
    let mut depth = 0usize;
    for c in right.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => flat.push(c),
            _ => {}
        }
    }
    let mut nopasswd = false;
    for cmd in flat.split(',') {
        let mut rest = cmd.trim();
        while let Some((tag, after)) = rest.split_once(':') {
            let tag = tag.trim();
            if !TAGS.contains(&tag) {
                break;
            }
            match tag {
                "NOPASSWD" => nopasswd = true,
                "PASSWD" => nopasswd = false,
                _ => {}
            }
            rest = after.trim_start();
        }
        // Options such as ROLE=, TYPE=, CWD=, CHROOT= come before the command.
        let command = rest
            .split_whitespace()
            .find(|w| !w.contains('='))
            .unwrap_or("");
        if nopasswd && command == "ALL" {
            return true;
        }
    }
    false
}

/// Findings for the sudoers tree of the volume, each with the file it is in, and the files and
/// included directories that could not be read.
pub(crate) fn check(lookup: &dyn FileLookup) -> (Vec<(String, CheckHit)>, Vec<Unreadable>) {
    let mut r = Reader {
        lookup,
        files: 0,
        out: Vec::new(),
        unread: Vec::new(),
    };
    r.read("/etc/sudoers", 0);
    (r.out, r.unread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lookup::MemLookup;

    /// Debian 12's stock /etc/sudoers.
    const DEBIAN: &str = "#
# This file MUST be edited with the 'visudo' command as root.
#
# Please consider adding local content in /etc/sudoers.d/ instead of
# directly modifying this file.
#
# See the man page for details on how to write a sudoers file.
#
Defaults\tenv_reset
Defaults\tmail_badpass
Defaults\tsecure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"

# This fixes CVE-2005-4890 and possibly breaks some versions of kdesu
# (#1011624, https://bugs.kali.org/view.php?id=5186)
Defaults\tuse_pty

# This preserves proxy settings from user environments of root
# equivalent users (group sudo)
#Defaults:%sudo env_keep += \"http_proxy https_proxy ftp_proxy all_proxy no_proxy\"

# Host alias specification

# User alias specification

# Cmnd alias specification

# User privilege specification
root\tALL=(ALL:ALL) ALL

# Allow members of group sudo to execute any command
%sudo\tALL=(ALL:ALL) ALL

# See sudoers(5) for more information on \"@include\" directives:

@includedir /etc/sudoers.d
";

    /// Amazon Linux 2023's /etc/sudoers (the directives and the commented NOPASSWD example).
    const AMAZON: &str = "Defaults   !visiblepw
Defaults    always_set_home
Defaults    match_group_by_gid
Defaults    always_query_group_plugin
Defaults    env_reset
Defaults    env_keep =  \"COLORS DISPLAY HOSTNAME HISTSIZE KDEDIR LS_COLORS\"
Defaults    env_keep += \"MAIL QTDIR USERNAME LANG LC_ADDRESS LC_CTYPE\"
Defaults    secure_path = /sbin:/bin:/usr/sbin:/usr/bin
root\tALL=(ALL) \tALL
## Allows people in group wheel to run all commands
%wheel\tALL=(ALL)\tALL
## Same thing without a password
# %wheel\tALL=(ALL)\tNOPASSWD: ALL
## Read drop-in files from /etc/sudoers.d (the # here does not mean a comment)
#includedir /etc/sudoers.d
";

    /// What cloud-init writes for the default user.
    const CLOUD_INIT: &str = "\n# Created by cloud-init v. 22.2.2 on Mon, 01 Jan 2024 00:00:00 +0000\n\n# User rules for ec2-user\nec2-user ALL=(ALL) NOPASSWD:ALL\n";

    fn run(l: &MemLookup) -> Vec<(String, Severity, String, Option<u64>)> {
        let (hits, unread) = check(l);
        assert_eq!(unread, []);
        hits.into_iter()
            .map(|(p, h)| (p, h.severity, h.evidence, h.line))
            .collect()
    }

    #[test]
    fn stock_files_are_clean() {
        let l = MemLookup::new()
            .file("/etc/sudoers", DEBIAN)
            .file(
                "/etc/sudoers.d/README",
                "# Files in this directory are read by sudo (comments only)\n",
            )
            .file(
                "/etc/sudoers.d/90-cloud-init-users",
                "admin ALL=(ALL) NOPASSWD:ALL\n",
            );
        assert_eq!(run(&l), []);
        let l = MemLookup::new()
            .file("/etc/sudoers", AMAZON)
            .file("/etc/sudoers.d/90-cloud-init-users", CLOUD_INIT);
        assert_eq!(run(&l), []);
    }

    #[test]
    fn nopasswd_beyond_the_default_user() {
        let drop_in = "# build leftovers\n\
                       jenkins ALL=(ALL) NOPASSWD: ALL\n\
                       %wheel  ALL=(ALL)  NOPASSWD: ALL\n\
                       deploy, ops ALL = (root) NOPASSWD: /usr/bin/systemctl restart app, PASSWD: ALL\n\
                       ALL ALL=(ALL:ALL) NOPASSWD:SETENV: ALL\n\
                       Defaults:builder !authenticate\n\
                       backup ALL=(ALL) NOPASSWD: /usr/bin/rsync, \\\n    ALL\n";
        let l = MemLookup::new()
            .file("/etc/sudoers", AMAZON)
            .file("/etc/sudoers.d/90-cloud-init-users", CLOUD_INIT)
            .file("/etc/sudoers.d/99-build", drop_in)
            .file("/etc/sudoers.d/99-build~", "evil ALL=(ALL) NOPASSWD: ALL\n")
            .file("/etc/sudoers.d/x.bak", "evil ALL=(ALL) NOPASSWD: ALL\n");
        let p = "/etc/sudoers.d/99-build".to_string();
        assert_eq!(
            run(&l),
            [
                (
                    p.clone(),
                    Severity::High,
                    "jenkins: NOPASSWD: ALL".into(),
                    Some(2)
                ),
                (
                    p.clone(),
                    Severity::High,
                    "%wheel: NOPASSWD: ALL".into(),
                    Some(3)
                ),
                (
                    p.clone(),
                    Severity::Critical,
                    "ALL: NOPASSWD: ALL".into(),
                    Some(5)
                ),
                (
                    p.clone(),
                    Severity::High,
                    "Defaults !authenticate for builder".into(),
                    Some(6)
                ),
                (p, Severity::High, "backup: NOPASSWD: ALL".into(), Some(7)),
            ]
        );
    }

    #[test]
    fn relative_include_and_loops_are_bounded() {
        let l = MemLookup::new()
            .file("/etc/sudoers", "@include sudoers.local\n")
            .file(
                "/etc/sudoers.local",
                "@include /etc/sudoers\nbob ALL=NOPASSWD: ALL\n",
            );
        let got = run(&l);
        assert!(!got.is_empty());
        assert!(got.iter().all(|g| g.0 == "/etc/sudoers.local"));
        assert!(got.len() <= MAX_DEPTH);
    }

    #[test]
    fn parsing_pieces() {
        assert_eq!(user_list("alice, %wheel ALL"), ["alice", "%wheel"]);
        assert_eq!(user_list("alice ,bob host"), ["alice", "bob"]);
        assert!(nopasswd_all(" (ALL : ALL) NOPASSWD: ALL"));
        assert!(!nopasswd_all(" (ALL) ALL"));
        assert!(!nopasswd_all(" NOPASSWD: /bin/ls, PASSWD: ALL"));
        assert!(nopasswd_all(" NOPASSWD: ROLE=x ALL"));
        assert!(check(&MemLookup::new()).0.is_empty());
        let l = MemLookup::new().file("/etc/sudoers", [b'=', 0xff, b'\\', b'\n', b'\\']);
        let _ = check(&l);
    }

    /// Issue 19: an included file or directory that cannot be read is reported, not skipped
    /// as absent; the readable files' lines are still judged.
    #[test]
    fn unreadable_includes_are_reported() {
        let l = MemLookup::new()
            .file(
                "/etc/sudoers",
                "#includedir /etc/sudoers.d\n@include /etc/sudoers.local\njenkins ALL=(ALL) NOPASSWD: ALL\n",
            )
            .file("/etc/sudoers.d/x", "bob ALL=(ALL) NOPASSWD: ALL\n")
            .unreadable_dir("/etc/sudoers.d")
            .unreadable("/etc/sudoers.local");
        let (hits, unread) = check(&l);
        let paths: Vec<&str> = unread.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["/etc/sudoers.d", "/etc/sudoers.local"]);
        let hit_paths: Vec<&str> = hits.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(hit_paths, ["/etc/sudoers"]);
        let (_, unread) = check(&MemLookup::new().unreadable("/etc/sudoers"));
        assert_eq!(unread.len(), 1);
    }
}
