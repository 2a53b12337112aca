//! cloud-init: state and logs left from the build instance, and passwords in cloud configs.
//!
//! The build instance's user data (`/var/lib/cloud/instances/*/user-data.txt`, its processed
//! `cloud-config.txt`, the pickled datasource `obj.pkl`) often carries bootstrap secrets, and it
//! tells cloud-init the image has already run; `/var/log/cloud-init*.log` records the build. Their
//! contents also go through the signatures. Severity: user data medium (it commonly holds
//! credentials), logs low.
//!
//! A `chpasswd` list or a `password`/`passwd`/`plain_text_passwd`/`hashed_passwd` key in
//! `/etc/cloud/cloud.cfg`, `cloud.cfg.d/*.cfg` or leftover user data sets that password on every
//! instance: critical in plain text, high when hashed. `RANDOM`/`R` (a random password per
//! instance) is fine.

use super::{CheckHit, CheckRule, TextLine, file_name, text_lines};
use crate::detect::finding::{clean, redact};
use crate::detect::registry::pattern::{self, Glob, glob};
use crate::report::Severity;

/// Leftover state and logs.
pub(crate) const LEFTOVER_RULE: CheckRule = CheckRule {
    id: "cloud-init-leftover",
    title: "cloud-init state or log from the build instance",
    severity: Severity::Medium,
    remediation: "Run `cloud-init clean --logs` (removes /var/lib/cloud/instances and /var/log/cloud-init*.log) before creating the image, and rotate any credential the build's user data carried.",
    suppresses: &[],
};

/// A password in a cloud config.
pub(crate) const PASSWORD_RULE: CheckRule = CheckRule {
    id: "cloud-init-password",
    title: "Password set by a cloud-init configuration",
    severity: Severity::Critical,
    remediation: "Remove `chpasswd` lists and password keys from cloud configs in the image (use `lock_passwd: true` and SSH keys, or `RANDOM`); change the password on instances already launched.",
    suppresses: &[],
};

/// What a path is to cloud-init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Per-instance state holding user or vendor data.
    State,
    /// A cloud-init log.
    Log,
    /// An image-wide cloud config.
    Config,
}

/// The files this check reads, with what each is. Per-instance state is the files that hold
/// the instance's user or vendor data, in `instance/` or `instances/<id>/` (`user-data*`
/// covers `user-data.txt` and `user-data.txt.i`).
const SCOPED: [(Glob, Kind); 5] = [
    (
        glob(
            "/var/lib/cloud/instance/{user-data*,vendor-data.txt,vendor-data.txt.i,\
vendor-data2.txt,vendor-data2.txt.i,cloud-config.txt,vendor-cloud-config.txt,\
vendor2-cloud-config.txt,obj.pkl}",
        ),
        Kind::State,
    ),
    (
        glob(
            "/var/lib/cloud/instances/*/{user-data*,vendor-data.txt,vendor-data.txt.i,\
vendor-data2.txt,vendor-data2.txt.i,cloud-config.txt,vendor-cloud-config.txt,\
vendor2-cloud-config.txt,obj.pkl}",
        ),
        Kind::State,
    ),
    (glob("/var/log/cloud-init*.log*"), Kind::Log),
    (glob("/etc/cloud/cloud.cfg"), Kind::Config),
    (glob("/etc/cloud/cloud.cfg.d/*.cfg"), Kind::Config),
];

/// The files this check reads.
pub(crate) const SCOPE: [Glob; SCOPED.len()] = pattern::globs(&SCOPED);

/// The kind of `path`, if it is one of cloud-init's.
fn kind(path: &str) -> Option<Kind> {
    pattern::kind_of(&SCOPED, path)
}

/// Whether `path` is a cloud-init state file, log or config.
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::CloudInit)
}

/// Findings for a cloud-init file: presence for state and logs, passwords in configs and user
/// data.
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let Some(kind) = kind(path) else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    if kind != Kind::Config && !data.trim_ascii().is_empty() {
        let (severity, what) = match kind {
            Kind::Log => (Severity::Low, "cloud-init log"),
            _ => (LEFTOVER_RULE.severity, "build instance's user/vendor data"),
        };
        let evidence = format!("{what}: {} ({} bytes)", file_name(path), data.len());
        hits.push(CheckHit::file(&LEFTOVER_RULE, severity, evidence, data));
    }
    if kind != Kind::Log {
        hits.extend(passwords(data));
    }
    hits
}

/// Keys whose value is an account password in cloud-config.
const PASSWORD_KEYS: &[&str] = &["password", "passwd", "plain_text_passwd", "hashed_passwd"];

/// Indentation of a YAML line (spaces), and its content after list markers (`- `).
fn indent_and_body(text: &str) -> (usize, &str) {
    let body = text.trim_start();
    let indent = text.len() - body.len();
    let mut body = body;
    while let Some(rest) = body.strip_prefix("- ") {
        body = rest.trim_start();
    }
    (indent, body)
}

/// A YAML scalar without quotes or a trailing comment.
fn scalar(v: &str) -> &str {
    let v = v.trim();
    if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let inner = &v[1..];
        return inner.find(q).map_or(inner, |e| &inner[..e]);
    }
    v.find(" #").map_or(v, |i| &v[..i]).trim()
}

/// Whether a password value sets nothing fixed (empty, random, a template, a YAML block start).
fn is_placeholder(v: &str) -> bool {
    v.is_empty()
        || v.eq_ignore_ascii_case("random")
        || v.eq_ignore_ascii_case("r")
        || matches!(v, "~" | "null" | "|" | ">" | "|-" | ">-")
        || v.starts_with("{{")
}

/// A finding for password `value` (for `who`) on `line`.
fn password_hit(line: &TextLine<'_>, who: &str, value: &str) -> CheckHit {
    let hashed = value.starts_with('$') && value.matches('$').count() >= 3;
    let (severity, how) = if hashed {
        (Severity::High, "hashed")
    } else {
        (Severity::Critical, "plain text")
    };
    CheckHit {
        rule: PASSWORD_RULE.id,
        severity,
        line: Some(line.no),
        start: line.start,
        end: line.end,
        evidence: format!("{who}: {how} password {}", redact(None, value.as_bytes())),
        fingerprint_of: value.as_bytes().to_vec(),
        secret: Some(value.as_bytes().to_vec()),
    }
}

/// Passwords set by a cloud-config document: password keys anywhere, and `user:password`
/// entries of a `chpasswd` `list`.
fn passwords(data: &[u8]) -> Vec<CheckHit> {
    let mut hits = Vec::new();
    // Indent of the `list:` key inside `chpasswd:` whose entries we are reading.
    let mut chpasswd: Option<usize> = None;
    let mut list: Option<usize> = None;
    for line in text_lines(data) {
        let (indent, body) = indent_and_body(line.text);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if let Some(li) = list {
            if indent > li || (indent == li && line.text.trim_start().starts_with("- ")) {
                if let Some((user, pw)) = scalar(body).split_once(':') {
                    let pw = pw.trim();
                    if !user.contains(' ') && !is_placeholder(pw) {
                        hits.push(password_hit(&line, &clean(user.as_bytes()), pw));
                    }
                }
                continue;
            }
            list = None;
        }
        if chpasswd.is_some_and(|ci| indent <= ci) {
            chpasswd = None;
        }
        let Some((key, value)) = body.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        let value = value.trim();
        if key == "chpasswd" {
            chpasswd = Some(indent);
            // Inline flow mapping: `chpasswd: {list: [user:pw, ...]}` or `list: |` follows.
            if let Some(i) = value.find("list:") {
                inline_list(&line, value.get(i + 5..).unwrap_or(""), &mut hits);
            }
            continue;
        }
        if chpasswd.is_some() && key == "list" {
            if value.starts_with('[') {
                inline_list(&line, value, &mut hits);
            } else {
                list = Some(indent);
            }
            continue;
        }
        if PASSWORD_KEYS.contains(&key) {
            let v = scalar(value);
            if !is_placeholder(v) {
                let who = format!("`{key}` key");
                hits.push(password_hit(&line, &who, v));
            }
        }
    }
    hits
}

/// `user:password` entries of an inline list (`[a:b, c:d]`).
fn inline_list(line: &TextLine<'_>, value: &str, hits: &mut Vec<CheckHit>) {
    let inner = value.trim().trim_start_matches('[');
    let inner = inner.split(']').next().unwrap_or(inner);
    for item in inner.split(',') {
        if let Some((user, pw)) = scalar(item).split_once(':') {
            let pw = pw.trim();
            if !is_placeholder(pw) {
                hits.push(password_hit(line, &clean(user.trim().as_bytes()), pw));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ubuntu 22.04's stock /etc/cloud/cloud.cfg (abridged: the module lists are shortened).
    const UBUNTU_CLOUD_CFG: &str = "# The top level settings are used as module
# and base configuration.
# A set of users which may be applied and/or used by various modules
# when a 'default' entry is found it will reference the 'default_user'
# from the distro configuration specified below
users:
   - default

# If this is set, 'root' will not be able to ssh in and they
# will get a message to login instead as the default $user
disable_root: true

# This will cause the set+update hostname module to not operate (if true)
preserve_hostname: false

# If you use datasource_list array, keep array items in a single line.
# If you use multi line array, ds-identify script won't read array items.
# Example datasource config
# datasource:
#   Ec2:
#     metadata_urls: [ 'blah.com' ]
#     timeout: 5 # (defaults to 50 seconds)
#     max_wait: 10 # (defaults to 120 seconds)

cloud_init_modules:
 - migrator
 - seed_random
 - set_hostname
 - update_hostname
 - users-groups
 - ssh

cloud_config_modules:
 - set-passwords
 - ntp

system_info:
   # This will affect which distro class gets used
   distro: ubuntu
   # Default user name + that default users groups (if added/used)
   default_user:
     name: ubuntu
     lock_passwd: True
     gecos: Ubuntu
     groups: [adm, audio, cdrom, dialout, dip, floppy, lxd, netdev, plugdev, sudo, video]
     sudo: [\"ALL=(ALL) NOPASSWD:ALL\"]
     shell: /bin/bash
   network:
     renderers: ['netplan', 'eni', 'sysconfig']
   ssh_svcname: ssh
";

    #[test]
    fn stock_ubuntu_cloud_cfg_is_clean() {
        assert!(check("/etc/cloud/cloud.cfg", UBUNTU_CLOUD_CFG.as_bytes()).is_empty());
        // Amazon Linux 2023's drop-in that only turns off password expiry.
        let al = "chpasswd:\n  expire: false\nssh_pwauth: false\n";
        assert!(check("/etc/cloud/cloud.cfg.d/50-x.cfg", al.as_bytes()).is_empty());
    }

    #[test]
    fn chpasswd_lists_and_password_keys() {
        // Shapes from cloud-init's documentation examples; the values are public examples.
        let cfg = "#cloud-config
chpasswd:
  expire: false
  list: |
    root:changeme-example
    ubuntu:RANDOM
password: example-pass
users:
  - name: builder
    passwd: $6$rounds=4096$exampleSalt$abcdefghijklmnopqrstuvwxyz0123456789
    lock_passwd: false
  - name: other
    plain_text_passwd: 'another-one'
chpasswd: {expire: False, list: [alice:alice-pass, bob:R]}
";
        let hits = check("/etc/cloud/cloud.cfg.d/99-build.cfg", cfg.as_bytes());
        let got: Vec<(Severity, &str, Option<u64>)> = hits
            .iter()
            .map(|h| (h.severity, h.evidence.as_str(), h.line))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Severity::Critical,
                    "root: plain text password chan…[16 chars]",
                    Some(5)
                ),
                (
                    Severity::Critical,
                    "`password` key: plain text password ex…[12 chars]",
                    Some(7)
                ),
                (
                    Severity::High,
                    "`passwd` key: hashed password $6$r…[63 chars]",
                    Some(10)
                ),
                (
                    Severity::Critical,
                    "`plain_text_passwd` key: plain text password an…[11 chars]",
                    Some(13)
                ),
                (
                    Severity::Critical,
                    "alice: plain text password al…[10 chars]",
                    Some(14)
                ),
            ]
        );
    }

    #[test]
    fn leftover_state_and_logs() {
        let p = "/var/lib/cloud/instances/i-0123456789abcdef0/user-data.txt";
        let hits = check(p, b"#cloud-config\npackages: [nginx]\n");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rule, "cloud-init-leftover");
        assert_eq!(hits[0].severity, Severity::Medium);
        let log = check(
            "/var/log/cloud-init.log",
            b"2024-01-01 00:00:00,000 - util.py[DEBUG]: Cloud-init v. 23.4 running 'init-local'\n",
        );
        assert_eq!(log[0].severity, Severity::Low);
        assert!(applies("/var/log/cloud-init-output.log"));
        assert!(applies("/var/lib/cloud/instance/cloud-config.txt"));
        assert!(applies("/var/lib/cloud/instances/i-1/obj.pkl"));
        assert!(!applies("/var/lib/cloud/instances/i-1/sem/config_ssh"));
        assert!(!applies("/var/lib/cloud/instances/i-1/scripts/x"));
        assert!(!applies("/etc/cloud/cloud.cfg.d/README"));
        assert!(check(p, b"").is_empty());
        // user data with a password gives both findings
        let hits = check(p, b"#cloud-config\npassword: example-pass\n");
        assert_eq!(hits.len(), 2);
    }

    #[test]
    fn garbage_never_panics() {
        for d in [
            &b"chpasswd:\n  list: |\n    :\n    a:\n'\n\"x"[..],
            b"password: '",
            b"chpasswd: {list: [",
            b"\xff\xfe:",
        ] {
            let _ = check("/etc/cloud/cloud.cfg", d);
        }
    }
}
