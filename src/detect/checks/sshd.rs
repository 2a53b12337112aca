//! The effective sshd configuration: `/etc/ssh/sshd_config` plus the files it `Include`s, read
//! the way sshd reads them.
//!
//! - Keywords are case-insensitive; `Keyword value` and `Keyword=value` both work.
//! - For each keyword the FIRST value obtained wins, so a drop-in included at the top of
//!   `sshd_config` (Ubuntu's `Include /etc/ssh/sshd_config.d/*.conf`) beats the main file.
//! - `Include` takes globs, expanded and sorted lexically as `glob(3)` does; relative paths are
//!   under `/etc/ssh`. An included file inherits the Match state of the line that included it,
//!   and a `Match` inside an included file ends with that file.
//! - `Match` blocks set nothing globally. `Match all` applies to every connection and overrides
//!   the global value, so it is taken into account.
//! - `ChallengeResponseAuthentication` is an alias of `KbdInteractiveAuthentication`.
//!
//! Severity rationale: SSH password logins expose every account with a password to online
//! guessing, and AWS Marketplace requires them off. With no account holding a password they are
//! a latent risk (medium); with one they are directly exploitable (high). `PermitRootLogin yes`
//! is medium when passwords are off (root by key only, but one config change from exposure),
//! high when passwords are possible, critical when root also has a password.
//! `PermitEmptyPasswords yes` is high, critical when an account with an empty password exists
//! and passwords are possible.

use super::glob::expand;
use super::shadow::password_users;
use super::{CheckHit, CheckRule};
use crate::detect::lookup::FileLookup;
use crate::report::Severity;
use std::collections::HashMap;

/// `PermitRootLogin yes`.
pub(crate) const ROOT_RULE: CheckRule = CheckRule {
    id: "sshd-permit-root-login",
    title: "sshd permits root login",
    severity: Severity::High,
    remediation: "Set `PermitRootLogin prohibit-password` (or `no`) in /etc/ssh/sshd_config, before any Include that could set it first, and log in as the distribution's default user.",
    suppresses: &[],
};

/// Password authentication on.
pub(crate) const PASSWORD_RULE: CheckRule = CheckRule {
    id: "sshd-password-authentication",
    title: "sshd allows password authentication",
    severity: Severity::Medium,
    remediation: "Set `PasswordAuthentication no` in the first file sshd reads it from (e.g. /etc/ssh/sshd_config.d/ drop-ins come first on Ubuntu and Debian) and use key-based access.",
    suppresses: &[],
};

/// `PermitEmptyPasswords yes`.
pub(crate) const EMPTY_RULE: CheckRule = CheckRule {
    id: "sshd-permit-empty-passwords",
    title: "sshd permits empty passwords",
    severity: Severity::High,
    remediation: "Set `PermitEmptyPasswords no` (the default) and lock accounts without a password.",
    suppresses: &[],
};

/// Keyboard-interactive through PAM.
pub(crate) const KBD_RULE: CheckRule = CheckRule {
    id: "sshd-kbd-interactive-passwords",
    title: "sshd allows passwords through PAM keyboard-interactive authentication",
    severity: Severity::Medium,
    remediation: "Set `KbdInteractiveAuthentication no` (and `ChallengeResponseAuthentication no` on OpenSSH before 8.7) when `UsePAM yes`, unless PAM is configured for a second factor only.",
    suppresses: &[],
};

/// The main configuration file.
const MAIN: &str = "/etc/ssh/sshd_config";
/// Deepest `Include` nesting (sshd's own limit is 16).
const MAX_DEPTH: usize = 16;
/// Most files read for one configuration.
const MAX_FILES: usize = 128;
/// Most bytes read of one file.
const MAX_BYTES: usize = 1024 * 1024;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    /// First argument, lowercased.
    value: String,
    /// File it was set in.
    path: String,
    /// 1-based line, and its byte range.
    line: u64,
    start: u64,
    end: u64,
}

/// Which settings a line applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Global,
    MatchAll,
    MatchOther,
}

/// The effective configuration.
#[derive(Debug, Default)]
struct Config {
    global: HashMap<String, Setting>,
    match_all: HashMap<String, Setting>,
    files: usize,
}

impl Config {
    /// The effective setting of `key` (lowercase) for every connection.
    fn get(&self, key: &str) -> Option<&Setting> {
        self.match_all.get(key).or_else(|| self.global.get(key))
    }

    /// Whether `key` is `yes`, with `default` when unset.
    fn yes(&self, key: &str, default: bool) -> bool {
        self.get(key).map_or(default, |s| s.value == "yes")
    }

    /// Read `path` into the configuration, starting in `scope`.
    fn read(&mut self, lookup: &dyn FileLookup, path: &str, mut scope: Scope, depth: usize) {
        if depth > MAX_DEPTH || self.files >= MAX_FILES {
            return;
        }
        self.files += 1;
        let Some(data) = lookup.read(path, MAX_BYTES) else {
            return;
        };
        let outer = scope;
        for line in super::text_lines(&data) {
            let t = line.text.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let key_end = t
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(t.len());
            let key = t.get(..key_end).unwrap_or("").to_ascii_lowercase();
            let rest = t.get(key_end..).unwrap_or("").trim_start();
            let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
            let args = split_args(rest);
            match key.as_str() {
                "match" => {
                    let all = args.first().is_some_and(|a| a.eq_ignore_ascii_case("all"))
                        && args.len() == 1;
                    // Inside an include that is itself under a non-matching block, nothing
                    // becomes global.
                    scope = if outer == Scope::MatchOther || !all {
                        Scope::MatchOther
                    } else {
                        Scope::MatchAll
                    };
                }
                "include" => {
                    for arg in &args {
                        let pattern = if arg.starts_with('/') {
                            arg.clone()
                        } else {
                            format!("/etc/ssh/{arg}")
                        };
                        for file in expand(lookup, &pattern, MAX_FILES) {
                            self.read(lookup, &file, scope, depth + 1);
                        }
                    }
                }
                _ => {
                    let key = if key == "challengeresponseauthentication" {
                        "kbdinteractiveauthentication".to_string()
                    } else {
                        key
                    };
                    let setting = Setting {
                        value: args
                            .first()
                            .map(|a| a.to_ascii_lowercase())
                            .unwrap_or_default(),
                        path: path.to_string(),
                        line: line.no,
                        start: line.start,
                        end: line.end,
                    };
                    let map = match scope {
                        Scope::Global => &mut self.global,
                        Scope::MatchAll => &mut self.match_all,
                        Scope::MatchOther => continue,
                    };
                    map.entry(key).or_insert(setting);
                }
            }
        }
    }
}

/// Whitespace-separated arguments, `"double quoted"` ones kept whole, up to a `#` comment.
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted && cur.is_empty() => break,
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
        if out.len() >= 256 {
            break;
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A hit about `setting` (or about the main file when the keyword is unset).
fn hit(
    rule: &CheckRule,
    severity: Severity,
    setting: Option<&Setting>,
    evidence: String,
) -> (String, CheckHit) {
    let (path, line, start, end) = match setting {
        Some(s) => (s.path.clone(), Some(s.line), s.start, s.end),
        None => (MAIN.to_string(), None, 0, 0),
    };
    let fp = format!("{path}:{evidence}");
    let hit = CheckHit {
        rule: rule.id,
        severity,
        line,
        start,
        end,
        evidence,
        fingerprint_of: fp.into_bytes(),
        secret: None,
    };
    (path, hit)
}

/// `Keyword value` as evidence, or the default explanation when unset.
fn shown(setting: Option<&Setting>, keyword: &str, default: &str) -> String {
    match setting {
        Some(s) => format!("{keyword} {}", s.value),
        None => format!("{keyword} not set: OpenSSH's default is {default}"),
    }
}

/// Findings for the effective sshd configuration of the volume, each with the path it is in.
/// Nothing when the volume has no `/etc/ssh/sshd_config` (no OpenSSH server).
pub(crate) fn check(lookup: &dyn FileLookup) -> Vec<(String, CheckHit)> {
    if lookup.metadata(MAIN).is_none() {
        return Vec::new();
    }
    let mut cfg = Config::default();
    cfg.read(lookup, MAIN, Scope::Global, 0);
    let (usable, empty) = lookup
        .read("/etc/shadow", MAX_BYTES)
        .map(|d| password_users(&d))
        .unwrap_or_default();
    let anyone_has_password = !usable.is_empty() || !empty.is_empty();
    let root_has_password = usable.iter().chain(&empty).any(|u| u == "root");

    let password = cfg.yes("passwordauthentication", true);
    let use_pam = cfg.yes("usepam", false);
    let kbd = cfg.yes("kbdinteractiveauthentication", true);
    let passwords_possible = password || (use_pam && kbd);
    let mut out = Vec::new();

    let accounts_note = if anyone_has_password {
        " (accounts with a password exist)"
    } else {
        ""
    };
    let password_severity = if anyone_has_password {
        Severity::High
    } else {
        PASSWORD_RULE.severity
    };
    if password {
        let s = cfg.get("passwordauthentication");
        let evidence = format!(
            "{}{accounts_note}",
            shown(s, "PasswordAuthentication", "yes")
        );
        out.push(hit(&PASSWORD_RULE, password_severity, s, evidence));
    }
    if use_pam && kbd {
        let s = cfg.get("kbdinteractiveauthentication");
        let evidence = format!(
            "UsePAM yes and {}{accounts_note}",
            shown(s, "KbdInteractiveAuthentication", "yes")
        );
        let at = s.or_else(|| cfg.get("usepam"));
        out.push(hit(&KBD_RULE, password_severity, at, evidence));
    }
    if let Some(s) = cfg.get("permitrootlogin").filter(|s| s.value == "yes") {
        let (severity, note) = match (passwords_possible, root_has_password) {
            (true, true) => (
                Severity::Critical,
                " with passwords allowed, and root has one",
            ),
            (true, false) => (Severity::High, " with passwords allowed"),
            (false, _) => (Severity::Medium, " (password logins are off)"),
        };
        out.push(hit(
            &ROOT_RULE,
            severity,
            Some(s),
            format!("PermitRootLogin yes{note}"),
        ));
    }
    if let Some(s) = cfg.get("permitemptypasswords").filter(|s| s.value == "yes") {
        let (severity, note) = if passwords_possible && !empty.is_empty() {
            (
                Severity::Critical,
                " and accounts with an empty password exist",
            )
        } else {
            (EMPTY_RULE.severity, "")
        };
        out.push(hit(
            &EMPTY_RULE,
            severity,
            Some(s),
            format!("PermitEmptyPasswords yes{note}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lookup::MemLookup;

    /// Ubuntu 22.04's stock /etc/ssh/sshd_config (comments trimmed, every directive kept).
    const UBUNTU_SSHD: &str = "
# This is the sshd server system-wide configuration file.  See
# sshd_config(5) for more information.

Include /etc/ssh/sshd_config.d/*.conf

#Port 22
#PermitRootLogin prohibit-password
#PubkeyAuthentication yes

# To disable tunneled clear text passwords, change to no here!
#PasswordAuthentication yes
#PermitEmptyPasswords no

# Change to yes to enable challenge-response passwords (beware issues with
# some PAM modules and threads)
KbdInteractiveAuthentication no

UsePAM yes

X11Forwarding yes
PrintMotd no

# Allow client to pass locale environment variables
AcceptEnv LANG LC_*

# override default of no subsystems
Subsystem\tsftp\t/usr/lib/openssh/sftp-server

# Example of overriding settings on a per-user basis
#Match User anoncvs
#\tX11Forwarding no
#\tAllowTcpForwarding no
#\tPermitTTY no
#\tForceCommand cvs server
";

    /// Ubuntu cloud images' /etc/ssh/sshd_config.d/60-cloudimg-settings.conf.
    const CLOUDIMG: &str = "PasswordAuthentication no\n";

    /// Amazon Linux 2023's stock /etc/ssh/sshd_config (directives only) and its drop-in.
    const AL2023_SSHD: &str = "Include /etc/ssh/sshd_config.d/*.conf
HostKey /etc/ssh/ssh_host_rsa_key
HostKey /etc/ssh/ssh_host_ecdsa_key
HostKey /etc/ssh/ssh_host_ed25519_key
SyslogFacility AUTHPRIV
PermitRootLogin forced-commands-only
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
ChallengeResponseAuthentication no
UsePAM yes
X11Forwarding yes
Subsystem sftp\t/usr/libexec/openssh/sftp-server
AuthorizedKeysCommand /opt/aws/bin/eic_run_authorized_keys %u %f
AuthorizedKeysCommandUser ec2-instance-connect
";
    const AL2023_REDHAT: &str = "# This system is following system-wide crypto policy.
Include /etc/crypto-policies/back-ends/opensshserver.config
SyslogFacility AUTHPRIV
ChallengeResponseAuthentication no
GSSAPIAuthentication yes
GSSAPICleanupCredentials no
UsePAM yes
X11Forwarding yes
PrintMotd no
";

    fn run(l: &MemLookup) -> Vec<(String, &'static str, Severity, String)> {
        check(l)
            .into_iter()
            .map(|(p, h)| (p, h.rule, h.severity, h.evidence))
            .collect()
    }

    #[test]
    fn stock_ubuntu_cloud_image_is_clean() {
        let l = MemLookup::new()
            .file(MAIN, UBUNTU_SSHD)
            .file("/etc/ssh/sshd_config.d/60-cloudimg-settings.conf", CLOUDIMG)
            .file(
                "/etc/shadow",
                "root:*:19700:0:99999:7:::\nubuntu:!:19700:0:99999:7:::\n",
            );
        assert_eq!(run(&l), []);
    }

    #[test]
    fn stock_amazon_linux_2023_is_clean() {
        let l = MemLookup::new()
            .file(MAIN, AL2023_SSHD)
            .file("/etc/ssh/sshd_config.d/50-redhat.conf", AL2023_REDHAT);
        assert_eq!(run(&l), []);
    }

    #[test]
    fn a_drop_in_read_first_wins() {
        // cloud-init's `ssh_pwauth: true` writes this file; it sorts before 60-cloudimg.
        let l = MemLookup::new()
            .file(MAIN, UBUNTU_SSHD)
            .file(
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "PasswordAuthentication yes\n",
            )
            .file("/etc/ssh/sshd_config.d/60-cloudimg-settings.conf", CLOUDIMG);
        let got = run(&l);
        assert_eq!(
            got,
            [(
                "/etc/ssh/sshd_config.d/50-cloud-init.conf".to_string(),
                "sshd-password-authentication",
                Severity::Medium,
                "PasswordAuthentication yes".to_string()
            )]
        );
    }

    #[test]
    fn unset_means_openssh_defaults() {
        // Upstream's sample config: everything commented out, UsePAM off by default.
        let l = MemLookup::new()
            .file(MAIN, "#PasswordAuthentication yes\nPermitRootLogin yes\n")
            .file(
                "/etc/shadow",
                "root:$6$x$yyyyyyyyyyyyyyyy:19700:0:99999:7:::\n",
            );
        let got = run(&l);
        assert_eq!(
            got,
            [
                (
                    MAIN.to_string(),
                    "sshd-password-authentication",
                    Severity::High,
                    "PasswordAuthentication not set: OpenSSH's default is yes (accounts with a password exist)".to_string()
                ),
                (
                    MAIN.to_string(),
                    "sshd-permit-root-login",
                    Severity::Critical,
                    "PermitRootLogin yes with passwords allowed, and root has one".to_string()
                ),
            ]
        );
    }

    #[test]
    fn match_blocks_are_not_global_but_match_all_is() {
        let cfg = "PasswordAuthentication no\n\
                   KbdInteractiveAuthentication no\n\
                   UsePAM yes\n\
                   Match Address 10.0.0.0/8\n\
                   \tPermitRootLogin yes\n\
                   \tPermitEmptyPasswords yes\n\
                   Match all\n\
                   \tPermitEmptyPasswords yes\n";
        let l = MemLookup::new().file(MAIN, cfg);
        let got = run(&l);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, "sshd-permit-empty-passwords");
        assert_eq!(got[0].2, Severity::High);
    }

    #[test]
    fn root_login_by_key_only_is_medium_and_kbd_with_pam_counts() {
        let cfg = "PermitRootLogin=yes\nPasswordAuthentication no\nUsePAM yes\nChallengeResponseAuthentication yes\n";
        let l = MemLookup::new().file(MAIN, cfg);
        let got = run(&l);
        let rules: Vec<(&str, Severity)> = got.iter().map(|g| (g.1, g.2)).collect();
        assert_eq!(
            rules,
            [
                ("sshd-kbd-interactive-passwords", Severity::Medium),
                ("sshd-permit-root-login", Severity::High),
            ]
        );
        assert_eq!(got[0].3, "UsePAM yes and KbdInteractiveAuthentication yes");
        let cfg =
            "PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n";
        let got = run(&MemLookup::new().file(MAIN, cfg));
        assert_eq!(got[0].2, Severity::Medium);
        assert_eq!(got[0].3, "PermitRootLogin yes (password logins are off)");
    }

    #[test]
    fn includes_relative_nested_and_looping() {
        let l = MemLookup::new()
            .file(MAIN, "Include conf.d/*.conf\nPasswordAuthentication no\n")
            .file(
                "/etc/ssh/conf.d/a.conf",
                "Include /etc/ssh/sshd_config\nMatch User x\n",
            )
            .file(
                "/etc/ssh/conf.d/b.conf",
                "PermitRootLogin \"yes\" # comment\n",
            );
        // b.conf is global again after a.conf's Match; the self-include is bounded.
        let got = run(&l);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "/etc/ssh/conf.d/b.conf");
        assert_eq!(got[0].1, "sshd-permit-root-login");
    }

    #[test]
    fn no_sshd_config_no_findings() {
        assert!(check(&MemLookup::new()).is_empty());
        let l = MemLookup::new().file(MAIN, [0xffu8, 0xfe, b'\n', b'=', b'"']);
        assert_eq!(run(&l).len(), 1);
    }
}
