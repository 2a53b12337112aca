//! The effective sshd configuration: `/etc/ssh/sshd_config` plus the files it `Include`s, read
//! the way sshd reads them.
//!
//! - Keywords are case-insensitive; `Keyword value` and `Keyword=value` both work.
//! - For each keyword the FIRST value obtained wins, so a drop-in included at the top of
//!   `sshd_config` (Ubuntu's `Include /etc/ssh/sshd_config.d/*.conf`) beats the main file.
//! - `Include` takes globs, expanded and sorted lexically as `glob(3)` does; relative paths are
//!   under `/etc/ssh`. An included file inherits the Match state of the line that included it,
//!   and a `Match` inside an included file ends with that file. Such a `Match` applies only when
//!   the block that included the file matches too (sshd never matches it otherwise), so its
//!   criteria are the including block's plus its own.
//! - `ChallengeResponseAuthentication` is an alias of `KbdInteractiveAuthentication`.
//!
//! `Match` blocks, as sshd applies them to a connection: the global value holds unless a block
//! that matches the connection sets the keyword, and among the matching blocks the first one that
//! sets it wins (`Match all` matches every connection). Inside a block only some keywords are
//! allowed: of those read here, `UsePAM` is global only. Offline the connection is unknown, so
//! the check judges one scope per block, "a connection this block matches", next to the global
//! scope, "a connection no block matches":
//!
//! - In a scope, a block applies when it matches every connection of the scope
//!   ([`criteria::Criteria::covers`], conservative: `Match all`, identical criteria, `User *`,
//!   an address block containing the scope's addresses). Other blocks are assumed not to match,
//!   since some connection of the scope can avoid them.
//! - A block that can match nothing (`Match User !root`: a list of negations alone never
//!   matches) is no scope.
//! - Two blocks that may match one connection, one allowing root or empty-password logins and
//!   the other allowing passwords, are also judged together (`Match User root` with
//!   `Match Address 10.0.0.0/8`), unless their criteria exclude each other
//!   ([`criteria::Criteria::disjoint`]: `User root` and `User alice`).
//! - A finding is made per rule and configuration line, at the worst severity over the scopes
//!   where that line decides the value; a scope other than the global one names its criteria
//!   (`PasswordAuthentication yes for Match Address 10.0.0.0/8`). So a block that sets a secure
//!   value never hides a global insecure one, an insecure value in a block already set by an
//!   earlier covering block (or `Match all`) is not reported twice, and a global
//!   `PermitRootLogin yes` is high when some block allows passwords.
//!
//! Severity rationale: SSH password logins expose every account with a password to online
//! guessing, and AWS Marketplace requires them off. With no account holding a password they are
//! a latent risk (medium); with one they are directly exploitable (high). `PermitRootLogin yes`
//! is medium when passwords are off (root by key only, but one config change from exposure),
//! high when passwords are possible, critical when root also has a password.
//! `PermitEmptyPasswords yes` is high, critical when an account with an empty password exists
//! and passwords are possible. A `Match` block gets the same severities as the global
//! configuration (its criteria are rarely narrower than they look: instances in a VPC are reached
//! from private addresses, `Match User root` is exactly root login), except a block that matches
//! only loopback connections (`Address` or `LocalAddress` within 127.0.0.0/8 or `::1`), which
//! needs a shell on the machine already: low.

mod criteria;
#[cfg(test)]
mod oracle_tests;

use super::glob::expand;
use super::shadow::password_users;
use super::{CheckHit, CheckRule};
use crate::detect::lookup::{FileLookup, Looked};
use crate::report::Severity;
use criteria::Criteria;
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

/// Most `Match` blocks read for one configuration (the rest of a file past it is not read).
const MAX_BLOCKS: usize = 128;
/// Most scopes judged (the global one, one per block, then pairs of blocks).
const MAX_SCOPES: usize = 512;
/// The keywords read here that sshd accepts inside a `Match` block.
const MATCH_KEYS: &[&str] = &[
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "permitrootlogin",
    "permitemptypasswords",
];

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

/// A `Match` block: its criteria and the first value of each keyword set in it.
#[derive(Debug)]
struct Block {
    criteria: Criteria,
    settings: HashMap<String, Setting>,
}

/// The configuration: global values and `Match` blocks in the order sshd reads them.
#[derive(Debug, Default)]
struct Config {
    global: HashMap<String, Setting>,
    blocks: Vec<Block>,
    files: usize,
}

impl Config {
    /// The setting of `key` (lowercase) for a connection of `scope`: the first block that covers
    /// the scope and sets it, else the global one.
    fn get(&self, key: &str, scope: &Criteria) -> Option<&Setting> {
        self.blocks
            .iter()
            .filter(|b| b.criteria.covers(scope))
            .find_map(|b| b.settings.get(key))
            .or_else(|| self.global.get(key))
    }

    /// The setting of `key` for one connection, as sshd decides it: the first matching block
    /// that sets it, else the global one.
    #[cfg(test)]
    fn for_conn(&self, key: &str, conn: &criteria::Conn<'_>) -> Option<&Setting> {
        self.blocks
            .iter()
            .filter(|b| b.criteria.matches(conn))
            .find_map(|b| b.settings.get(key))
            .or_else(|| self.global.get(key))
    }

    /// Whether `key` is `yes` in `scope`, with `default` when unset.
    fn yes(&self, key: &str, scope: &Criteria, default: bool) -> bool {
        self.get(key, scope).map_or(default, |s| s.value == "yes")
    }

    /// Read `path` into the configuration, its lines going to `block` (global when `None`)
    /// until a `Match` line. `Err` when it, or a file or directory it includes, cannot be
    /// read: the effective configuration is then unknown.
    fn read(
        &mut self,
        lookup: &dyn FileLookup,
        path: &str,
        block: Option<usize>,
        depth: usize,
    ) -> Looked<()> {
        if depth > MAX_DEPTH || self.files >= MAX_FILES {
            return Ok(());
        }
        self.files += 1;
        let Some(data) = lookup.read(path, MAX_BYTES)? else {
            return Ok(());
        };
        let outer = block
            .and_then(|i| self.blocks.get(i))
            .map(|b| b.criteria.clone());
        let mut current = block;
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
                    if self.blocks.len() >= MAX_BLOCKS {
                        return Ok(());
                    }
                    let own = Criteria::parse(&args);
                    let criteria = match &outer {
                        Some(o) => o.and(&own),
                        None => own,
                    };
                    current = Some(self.blocks.len());
                    self.blocks.push(Block {
                        criteria,
                        settings: HashMap::new(),
                    });
                }
                "include" => {
                    for arg in &args {
                        let pattern = if arg.starts_with('/') {
                            arg.clone()
                        } else {
                            format!("/etc/ssh/{arg}")
                        };
                        for file in expand(lookup, &pattern, MAX_FILES)? {
                            self.read(lookup, &file, current, depth + 1)?;
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
                    let map = match current.and_then(|i| self.blocks.get_mut(i)) {
                        None => &mut self.global,
                        Some(b) if MATCH_KEYS.contains(&key.as_str()) => &mut b.settings,
                        Some(_) => continue,
                    };
                    map.entry(key).or_insert(setting);
                }
            }
        }
        Ok(())
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

/// What `/etc/shadow` says about passwords.
#[derive(Debug, Default)]
struct Accounts {
    /// Some account has a usable or an empty password.
    any: bool,
    /// Root has one.
    root: bool,
    /// Some account has an empty password.
    empty: bool,
}

/// Findings for the effective sshd configuration of the volume, each with the path it is in.
/// Nothing when the volume has no `/etc/ssh/sshd_config` (no OpenSSH server). `Err` when
/// `sshd_config`, a file or directory it includes, or `/etc/shadow` (which sets the
/// severities) cannot be read: no verdict is made from a configuration only partly seen (an
/// unreadable file is not an unset keyword), and the caller reports the error.
pub(crate) fn check(lookup: &dyn FileLookup) -> Looked<Vec<(String, CheckHit)>> {
    if lookup.metadata(MAIN)?.is_none() {
        return Ok(Vec::new());
    }
    let mut cfg = Config::default();
    cfg.read(lookup, MAIN, None, 0)?;
    let (usable, empty) = lookup
        .read("/etc/shadow", MAX_BYTES)?
        .map(|d| password_users(&d))
        .unwrap_or_default();
    let accounts = Accounts {
        any: !usable.is_empty() || !empty.is_empty(),
        root: usable.iter().chain(&empty).any(|u| u == "root"),
        empty: !empty.is_empty(),
    };
    let mut out: Vec<(String, CheckHit)> = Vec::new();
    for scope in scopes(&cfg) {
        for (path, hit) in scope_findings(&cfg, &scope, &accounts) {
            let same = out.iter_mut().find(|(p, h)| {
                *p == path && h.rule == hit.rule && h.line == hit.line && h.start == hit.start
            });
            match same {
                Some(old) if old.1.severity < hit.severity => *old = (path, hit),
                Some(_) => {}
                None => out.push((path, hit)),
            }
        }
    }
    Ok(out)
}

/// The scopes to judge: every connection (`Match all`), each block that can match, and each
/// pair of blocks that may match one connection where one allows root or empty-password logins
/// and the other allows passwords (how bad the first is depends on the second).
fn scopes(cfg: &Config) -> Vec<Criteria> {
    let blocks: Vec<&Block> = cfg
        .blocks
        .iter()
        .filter(|b| !b.criteria.0.is_empty() && !b.criteria.never_matches())
        .collect();
    let mut out = vec![Criteria::default()];
    out.extend(blocks.iter().map(|b| b.criteria.clone()));
    let sets = |b: &Block, keys: &[&str]| {
        keys.iter()
            .any(|k| b.settings.get(*k).is_some_and(|s| s.value == "yes"))
    };
    for (i, a) in blocks.iter().enumerate() {
        if !sets(a, &["permitrootlogin", "permitemptypasswords"]) {
            continue;
        }
        for (j, b) in blocks.iter().enumerate() {
            if i == j
                || !sets(
                    b,
                    &["passwordauthentication", "kbdinteractiveauthentication"],
                )
                || a.criteria.disjoint(&b.criteria)
            {
                continue;
            }
            let both = a.criteria.and(&b.criteria);
            if !both.never_matches() && out.len() < MAX_SCOPES {
                out.push(both);
            }
        }
    }
    out
}

/// Findings for a connection of `scope` (the global scope is `Match all`'s criteria).
fn scope_findings(cfg: &Config, scope: &Criteria, accounts: &Accounts) -> Vec<(String, CheckHit)> {
    let password = cfg.yes("passwordauthentication", scope, true);
    let use_pam = cfg.global.get("usepam").is_some_and(|s| s.value == "yes");
    let kbd = cfg.yes("kbdinteractiveauthentication", scope, true);
    let passwords_possible = password || (use_pam && kbd);
    let mut out = Vec::new();

    let scoped = if scope.0.is_empty() {
        String::new()
    } else {
        format!(" for Match {}", scope.label())
    };
    let cap = |severity: Severity| {
        if scope.loopback_only() {
            severity.min(Severity::Low)
        } else {
            severity
        }
    };
    let accounts_note = if accounts.any {
        " (accounts with a password exist)"
    } else {
        ""
    };
    let password_severity = cap(if accounts.any {
        Severity::High
    } else {
        PASSWORD_RULE.severity
    });
    if password {
        let s = cfg.get("passwordauthentication", scope);
        let evidence = format!(
            "{}{scoped}{accounts_note}",
            shown(s, "PasswordAuthentication", "yes")
        );
        out.push(hit(&PASSWORD_RULE, password_severity, s, evidence));
    }
    if use_pam && kbd {
        let s = cfg.get("kbdinteractiveauthentication", scope);
        let evidence = format!(
            "UsePAM yes and {}{scoped}{accounts_note}",
            shown(s, "KbdInteractiveAuthentication", "yes")
        );
        let at = s.or_else(|| cfg.global.get("usepam"));
        out.push(hit(&KBD_RULE, password_severity, at, evidence));
    }
    if let Some(s) = cfg
        .get("permitrootlogin", scope)
        .filter(|s| s.value == "yes")
    {
        let (severity, note) = match (passwords_possible, accounts.root) {
            (true, true) => (
                Severity::Critical,
                " with passwords allowed, and root has one",
            ),
            (true, false) => (Severity::High, " with passwords allowed"),
            (false, _) => (Severity::Medium, " (password logins are off)"),
        };
        out.push(hit(
            &ROOT_RULE,
            cap(severity),
            Some(s),
            format!("PermitRootLogin yes{scoped}{note}"),
        ));
    }
    if let Some(s) = cfg
        .get("permitemptypasswords", scope)
        .filter(|s| s.value == "yes")
    {
        let (severity, note) = if passwords_possible && accounts.empty {
            (
                Severity::Critical,
                " and accounts with an empty password exist",
            )
        } else {
            (EMPTY_RULE.severity, "")
        };
        out.push(hit(
            &EMPTY_RULE,
            cap(severity),
            Some(s),
            format!("PermitEmptyPasswords yes{scoped}{note}"),
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

    /// `(line, rule, severity, evidence)` of every finding on a lone sshd_config.
    fn judged_lines(cfg: &str) -> Vec<(Option<u64>, &'static str, Severity, String)> {
        let l = MemLookup::new().file(MAIN, cfg);
        check(&l)
            .unwrap()
            .into_iter()
            .map(|(_, h)| (h.line, h.rule, h.severity, h.evidence))
            .collect()
    }

    fn run(l: &MemLookup) -> Vec<(String, &'static str, Severity, String)> {
        check(l)
            .unwrap()
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

    /// Global settings that allow nothing: the base for the `Match` tests.
    const LOCKED: &str = "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM yes\n";

    /// `(rule, severity, evidence)` of each finding for `cfg` as the main file.
    fn judged(cfg: &str) -> Vec<(&'static str, Severity, String)> {
        run(&MemLookup::new().file(MAIN, cfg))
            .into_iter()
            .map(|(_, r, s, e)| (r, s, e))
            .collect()
    }

    #[test]
    fn match_blocks_are_reported_with_their_criteria() {
        let cfg = format!(
            "{LOCKED}Match Address 10.0.0.0/8\n\
             \tPermitRootLogin yes\n\
             \tPermitEmptyPasswords yes\n\
             Match all\n\
             \tPermitEmptyPasswords yes\n"
        );
        let got = judged_lines(&cfg);
        assert_eq!(
            got,
            [
                (
                    Some(8),
                    "sshd-permit-empty-passwords",
                    Severity::High,
                    "PermitEmptyPasswords yes".to_string()
                ),
                (
                    Some(5),
                    "sshd-permit-root-login",
                    Severity::Medium,
                    "PermitRootLogin yes for Match Address 10.0.0.0/8 (password logins are off)"
                        .to_string()
                ),
                (
                    Some(6),
                    "sshd-permit-empty-passwords",
                    Severity::High,
                    "PermitEmptyPasswords yes for Match Address 10.0.0.0/8".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_secure_match_block_does_not_hide_the_global_value() {
        let cfg = "PasswordAuthentication yes\nMatch User alice\n  PasswordAuthentication no\n";
        assert_eq!(
            judged(cfg),
            [(
                "sshd-password-authentication",
                Severity::Medium,
                "PasswordAuthentication yes".to_string()
            )]
        );
    }

    #[test]
    fn match_all_overrides_the_global_value_and_later_blocks() {
        // Global yes, but `Match all` says no for every connection, and it comes before the
        // Address block, so it wins there too.
        let cfg = "PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                   Match all\n PasswordAuthentication no\n\
                   Match Address 10.0.0.0/8\n PasswordAuthentication yes\n";
        assert_eq!(judged(cfg), []);
        // The same block before `Match all` wins for its connections.
        let cfg = "KbdInteractiveAuthentication no\n\
                   Match Address 10.0.0.0/8\n PasswordAuthentication yes\n\
                   Match all\n PasswordAuthentication no\n";
        assert_eq!(
            judged(cfg),
            [(
                "sshd-password-authentication",
                Severity::Medium,
                "PasswordAuthentication yes for Match Address 10.0.0.0/8".to_string()
            )]
        );
    }

    #[test]
    fn the_first_covering_block_wins() {
        // Identical criteria, and an address block inside an earlier one: never applied.
        for cfg in [
            "Match User deploy\n PasswordAuthentication no\nMatch User deploy\n PasswordAuthentication yes\n",
            "Match Address 10.0.0.0/8\n PermitRootLogin no\nMatch Address 10.1.0.0/16,10.2.3.4 User x\n PermitRootLogin yes\n",
            "Match User *\n PermitEmptyPasswords no\nMatch Group wheel\n PermitEmptyPasswords yes\n",
        ] {
            assert_eq!(judged(&format!("{LOCKED}{cfg}")), [], "{cfg}");
        }
        // An earlier block that covers only some of the later one's connections does not.
        let cfg = format!(
            "{LOCKED}Match User alice\n PasswordAuthentication no\n\
             Match Address 10.0.0.0/8\n PasswordAuthentication yes\n"
        );
        assert_eq!(
            judged(&cfg),
            [(
                "sshd-password-authentication",
                Severity::Medium,
                "PasswordAuthentication yes for Match Address 10.0.0.0/8".to_string()
            )]
        );
    }

    #[test]
    fn negated_criteria() {
        // A list of negations alone never matches: sshd ignores the block.
        let cfg = format!("{LOCKED}Match User !root\n PasswordAuthentication yes\n");
        assert_eq!(judged(&cfg), []);
        let cfg = format!(
            "{LOCKED}Match User *,!root Address 10.0.0.0/8,!10.0.0.1\n PasswordAuthentication yes\n"
        );
        assert_eq!(
            judged(&cfg)[0].2,
            "PasswordAuthentication yes for Match User *,!root Address 10.0.0.0/8,!10.0.0.1"
        );
    }

    #[test]
    fn match_user_root_with_passwords_and_a_root_password_is_critical() {
        let cfg = format!(
            "{LOCKED}PermitRootLogin no\nMatch User root\n PasswordAuthentication yes\n PermitRootLogin yes\n"
        );
        let l = MemLookup::new().file(MAIN, cfg.as_str()).file(
            "/etc/shadow",
            "root:$6$x$yyyyyyyyyyyyyyyy:19700:0:99999:7:::\n",
        );
        assert_eq!(
            run(&l)
                .into_iter()
                .map(|(_, r, s, e)| (r, s, e))
                .collect::<Vec<_>>(),
            [
                (
                    "sshd-password-authentication",
                    Severity::High,
                    "PasswordAuthentication yes for Match User root (accounts with a password exist)"
                        .to_string()
                ),
                (
                    "sshd-permit-root-login",
                    Severity::Critical,
                    "PermitRootLogin yes for Match User root with passwords allowed, and root has one"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_global_root_login_is_worse_where_a_block_allows_passwords() {
        let cfg = format!(
            "PermitRootLogin yes\n{LOCKED}Match Address 10.0.0.0/8\n PasswordAuthentication yes\n"
        );
        let got = judged_lines(&cfg);
        assert_eq!(
            got,
            [
                (
                    Some(1),
                    "sshd-permit-root-login",
                    Severity::High,
                    "PermitRootLogin yes for Match Address 10.0.0.0/8 with passwords allowed"
                        .to_string()
                ),
                (
                    Some(6),
                    "sshd-password-authentication",
                    Severity::Medium,
                    "PasswordAuthentication yes for Match Address 10.0.0.0/8".to_string()
                ),
            ]
        );
    }

    #[test]
    fn overlapping_blocks_combine_but_disjoint_ones_do_not() {
        let cfg = format!(
            "{LOCKED}Match User root\n PermitRootLogin yes\n\
             Match Address 10.0.0.0/8\n PasswordAuthentication yes\n"
        );
        let got = judged(&cfg);
        assert_eq!(
            got[0],
            (
                "sshd-permit-root-login",
                Severity::High,
                "PermitRootLogin yes for Match User root Address 10.0.0.0/8 with passwords allowed"
                    .to_string()
            )
        );
        assert_eq!(got.len(), 2);
        let cfg = format!(
            "{LOCKED}Match User root\n PermitRootLogin yes\n\
             Match User alice,bob\n PasswordAuthentication yes\n"
        );
        assert_eq!(
            judged(&cfg)[0],
            (
                "sshd-permit-root-login",
                Severity::Medium,
                "PermitRootLogin yes for Match User root (password logins are off)".to_string()
            )
        );
    }

    #[test]
    fn many_blocks_are_bounded() {
        let mut cfg = String::from(LOCKED);
        for i in 0..2000 {
            cfg.push_str(&format!(
                "Match User u{i},* Address 10.{}.0.0/16 Host h*\n PermitRootLogin yes\n PasswordAuthentication yes\n",
                i % 256
            ));
        }
        let got = judged(&cfg);
        assert!(
            !got.is_empty() && got.len() <= 2 * MAX_BLOCKS,
            "{}",
            got.len()
        );
    }

    #[test]
    fn loopback_only_blocks_are_low() {
        let cfg = format!(
            "{LOCKED}Match Address 127.0.0.1,::1\n PasswordAuthentication yes\n PermitRootLogin yes\n\
             Match LocalAddress 127.0.0.0/8 User backup\n KbdInteractiveAuthentication yes\n"
        );
        let got = judged(&cfg);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|g| g.1 == Severity::Low), "{got:?}");
        assert_eq!(
            got[2].2,
            "UsePAM yes and KbdInteractiveAuthentication yes for Match LocalAddress 127.0.0.0/8 User backup"
        );
    }

    #[test]
    fn match_in_an_include_drop_in_ends_with_the_file() {
        let l = MemLookup::new()
            .file(MAIN, UBUNTU_SSHD)
            .file(
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "PasswordAuthentication no\nMatch Address 10.0.0.0/8\n  PasswordAuthentication yes\n",
            )
            // Global again: the Match above ended with its file.
            .file(
                "/etc/ssh/sshd_config.d/60-cloudimg-settings.conf",
                "PermitRootLogin no\n",
            );
        assert_eq!(
            run(&l),
            [(
                "/etc/ssh/sshd_config.d/50-cloud-init.conf".to_string(),
                "sshd-password-authentication",
                Severity::Medium,
                "PasswordAuthentication yes for Match Address 10.0.0.0/8".to_string()
            )]
        );
    }

    #[test]
    fn a_match_included_from_a_block_needs_both_criteria() {
        let l = MemLookup::new()
            .file(
                MAIN,
                format!("{LOCKED}Match User alice\n Include alice.conf\n PermitRootLogin yes\n")
                    .as_str(),
            )
            .file(
                "/etc/ssh/alice.conf",
                "PermitEmptyPasswords yes\nMatch all\n PasswordAuthentication yes\n",
            );
        let got = judged_lookup(&l);
        assert_eq!(
            got,
            [
                (
                    "sshd-password-authentication",
                    Severity::Medium,
                    "PasswordAuthentication yes for Match User alice".to_string()
                ),
                (
                    "sshd-permit-root-login",
                    Severity::High,
                    "PermitRootLogin yes for Match User alice with passwords allowed".to_string()
                ),
                (
                    "sshd-permit-empty-passwords",
                    Severity::High,
                    "PermitEmptyPasswords yes for Match User alice".to_string()
                ),
            ]
        );
    }

    #[test]
    fn use_pam_is_global_only() {
        let cfg = "PasswordAuthentication no\nMatch all\n UsePAM yes\n";
        assert_eq!(judged(cfg), []);
    }

    #[test]
    fn debian_12_stock_config_and_its_commented_match_example() {
        // The real file from openssh-server 1:9.2p1-2+deb12u10, ending in `#Match User anoncvs`.
        let stock = include_str!("../../../../testdata/sshd/debian12-sshd_config");
        assert!(stock.contains("#Match User anoncvs"));
        let l = MemLookup::new().file(MAIN, stock);
        assert_eq!(
            judged_lookup(&l),
            [(
                "sshd-password-authentication",
                Severity::Medium,
                "PasswordAuthentication not set: OpenSSH's default is yes".to_string()
            )]
        );
        let l = l.file("/etc/ssh/sshd_config.d/50-cloud-init.conf", CLOUDIMG);
        assert_eq!(run(&l), []);
        // The example uncommented sets nothing this check reads.
        let example = stock
            .replace("#Match User anoncvs", "Match User anoncvs")
            .replace("#\t", "\t");
        let l = MemLookup::new()
            .file(MAIN, example.as_str())
            .file("/etc/ssh/sshd_config.d/50-cloud-init.conf", CLOUDIMG);
        assert_eq!(run(&l), []);
    }

    fn judged_lookup(l: &MemLookup) -> Vec<(&'static str, Severity, String)> {
        run(l).into_iter().map(|(_, r, s, e)| (r, s, e)).collect()
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
        assert!(check(&MemLookup::new()).unwrap().is_empty());
        let l = MemLookup::new().file(MAIN, [0xffu8, 0xfe, b'\n', b'=', b'"']);
        assert_eq!(run(&l).len(), 1);
    }

    /// Issue 19: an sshd_config that cannot be read is not one that leaves
    /// PasswordAuthentication unset. Nor is one whose include (file or directory) fails, nor
    /// one judged without /etc/shadow, which sets the severities.
    #[test]
    fn an_unreadable_input_is_an_error_not_a_verdict() {
        let err = check(&MemLookup::new().unreadable(MAIN)).unwrap_err();
        assert_eq!(err.path, MAIN);
        let inc = "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n";
        let l = MemLookup::new()
            .file(MAIN, inc)
            .file(
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "PasswordAuthentication yes\n",
            )
            .unreadable_dir("/etc/ssh/sshd_config.d");
        assert_eq!(check(&l).unwrap_err().path, "/etc/ssh/sshd_config.d");
        let l = MemLookup::new()
            .file(MAIN, inc)
            .unreadable("/etc/ssh/sshd_config.d/50-cloud-init.conf");
        assert_eq!(
            check(&l).unwrap_err().path,
            "/etc/ssh/sshd_config.d/50-cloud-init.conf"
        );
        let l = MemLookup::new()
            .file(MAIN, "PermitRootLogin yes\n")
            .unreadable("/etc/shadow");
        assert_eq!(check(&l).unwrap_err().path, "/etc/shadow");
        // The same include, readable: judged.
        let l = MemLookup::new().file(MAIN, inc).file(
            "/etc/ssh/sshd_config.d/50-cloud-init.conf",
            "PasswordAuthentication yes\n",
        );
        assert_eq!(run(&l).len(), 1);
    }
}
