//! Package-database checks, for vetting third-party images: setuid/setgid files that no package
//! owns, and sensitive system files whose content differs from their dpkg package's `md5sums`.
//!
//! **Ownership** comes from dpkg's `/var/lib/dpkg/info/*.list`. rpm's database (sqlite or
//! Berkeley DB) is not read: on rpm systems, and on systems with no package database, setid
//! files are compared with a built-in list of the setid files stock distributions ship, and
//! the finding says which comparison was made (medium, as it is less certain than dpkg's).
//! An unowned setuid-root file is a classic backdoor: high.
//!
//! **Content**: reading and hashing every packaged file is costly, so only a bounded set is
//! verified against `/var/lib/dpkg/info/*.md5sums`: PAM modules (`*/security/*.so`), a list of
//! binaries rootkits replace (`ls`, `ps`, `ss`, `sshd`, `sudo`, `login`, ...), `libkeyutils`
//! (Ebury), and every setid file. Files already hashed by the scanner come from
//! [`FileLookup::md5`]; others are read (at most [`MAX_VERIFY_FILES`] files of at most
//! [`MAX_VERIFY_BYTES`] each). Diverted files (`/var/lib/dpkg/diversions`) are skipped.
//! A mismatch is high: a replaced login path or PAM module is how credentials get stolen.

use super::{CheckHit, CheckRule, file_name};
use crate::detect::lookup::{FileLookup, Meta};
use crate::report::Severity;
use md5::{Digest, Md5};
use std::collections::{BTreeMap, HashSet};

/// A setid file no package owns.
pub(crate) const SETID_RULE: CheckRule = CheckRule {
    id: "setid-unowned",
    title: "setuid/setgid file not owned by any package",
    severity: Severity::High,
    remediation: "Find where the file came from; remove it or its setuid/setgid bit (`chmod u-s,g-s FILE`) unless it is a vetted part of the image. Unowned setuid binaries are a common backdoor.",
    suppresses: &[],
};

/// A packaged file that differs from its package.
pub(crate) const MODIFIED_RULE: CheckRule = CheckRule {
    id: "dpkg-modified-file",
    title: "System file differs from its package",
    severity: Severity::High,
    remediation: "Reinstall the package (`apt-get install --reinstall PACKAGE`) and find out what replaced the file; a modified login path or PAM module captures credentials. Do not share the image until explained.",
    suppresses: &[],
};

const INFO: &str = "/var/lib/dpkg/info";
/// Most setid files considered.
const MAX_SETID: usize = 10_000;
/// Most dpkg info files read.
const MAX_INFO_FILES: usize = 50_000;
/// Most bytes read of one dpkg info file.
const MAX_INFO_BYTES: usize = 32 * 1024 * 1024;
/// Most packaged files verified by content.
pub(crate) const MAX_VERIFY_FILES: usize = 512;
/// Largest file verified by content.
pub(crate) const MAX_VERIFY_BYTES: usize = 64 * 1024 * 1024;

/// Binaries that userland rootkits replace, checked wherever dpkg puts them.
const SENSITIVE_BINARIES: &[&str] = &[
    "ls",
    "dir",
    "ps",
    "top",
    "pstree",
    "netstat",
    "ss",
    "lsof",
    "find",
    "du",
    "df",
    "who",
    "w",
    "last",
    "lastlog",
    "id",
    "login",
    "su",
    "sudo",
    "passwd",
    "chsh",
    "chfn",
    "newgrp",
    "gpasswd",
    "chpasswd",
    "useradd",
    "usermod",
    "sshd",
    "ssh",
    "scp",
    "bash",
    "dash",
    "crontab",
    "cron",
    "mount",
    "umount",
    "pkexec",
    "kill",
    "pgrep",
    "pkill",
    "ip",
    "ifconfig",
    "md5sum",
    "sha256sum",
    "strings",
    "systemctl",
    "tar",
    "curl",
    "wget",
    "unix_chkpwd",
    "agetty",
];

/// Setid files of stock Debian, Ubuntu, Amazon Linux, RHEL-family and Fedora images, for
/// systems whose package database amiscan does not read (names under `/usr`; `/bin` forms too).
const STOCK_SETID: &[&str] = &[
    "/usr/bin/at",
    "/usr/bin/bsd-write",
    "/usr/bin/chage",
    "/usr/bin/chfn",
    "/usr/bin/chsh",
    "/usr/bin/crontab",
    "/usr/bin/dotlockfile",
    "/usr/bin/expiry",
    "/usr/bin/fusermount",
    "/usr/bin/fusermount3",
    "/usr/bin/gpasswd",
    "/usr/bin/ksu",
    "/usr/bin/locate",
    "/usr/bin/mount",
    "/usr/bin/newgidmap",
    "/usr/bin/newgrp",
    "/usr/bin/newuidmap",
    "/usr/bin/passwd",
    "/usr/bin/pkexec",
    "/usr/bin/plocate",
    "/usr/bin/screen",
    "/usr/bin/ssh-agent",
    "/usr/bin/staprun",
    "/usr/bin/su",
    "/usr/bin/sudo",
    "/usr/bin/sudoedit",
    "/usr/bin/umount",
    "/usr/bin/wall",
    "/usr/bin/write",
    "/usr/lib/dbus-1.0/dbus-daemon-launch-helper",
    "/usr/lib/openssh/ssh-keysign",
    "/usr/lib/polkit-1/polkit-agent-helper-1",
    "/usr/lib/snapd/snap-confine",
    "/usr/lib/xorg/Xorg.wrap",
    "/usr/libexec/dbus-1/dbus-daemon-launch-helper",
    "/usr/libexec/openssh/ssh-keysign",
    "/usr/libexec/polkit-agent-helper-1",
    "/usr/libexec/utempter/utempter",
    "/usr/sbin/grub2-set-bootflag",
    "/usr/sbin/mount.nfs",
    "/usr/sbin/pam_timestamp_check",
    "/usr/sbin/postdrop",
    "/usr/sbin/postqueue",
    "/usr/sbin/unix_chkpwd",
    "/usr/sbin/userhelper",
    "/usr/sbin/usernetctl",
];

/// Where rpm keeps its database.
const RPM_DBS: &[&str] = &[
    "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/Packages",
];

/// The same file under merged `/usr`: `/bin/x` <-> `/usr/bin/x` (and `sbin`, `lib*`).
fn usrmerge_alias(path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix("/usr") {
        ["/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"]
            .iter()
            .any(|d| rest.starts_with(d))
            .then(|| rest.to_string())
    } else {
        ["/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"]
            .iter()
            .any(|d| path.starts_with(d))
            .then(|| format!("/usr{path}"))
    }
}

/// Whether a packaged path (from md5sums, absolute) is worth verifying.
fn sensitive(path: &str) -> bool {
    let name = file_name(path);
    let dir = path.strip_suffix(name).unwrap_or("");
    let bin_dir = matches!(
        dir,
        "/bin/" | "/sbin/" | "/usr/bin/" | "/usr/sbin/" | "/usr/local/bin/"
    );
    (bin_dir && SENSITIVE_BINARIES.contains(&name))
        || (dir.ends_with("/security/") && name.ends_with(".so"))
        || name.starts_with("libkeyutils.so")
        || (dir.starts_with("/usr/lib/openssh/") || dir.starts_with("/usr/libexec/openssh/"))
            && name.starts_with("sshd")
}

/// The dpkg info files of one kind (`list`, `md5sums`): `(package, path)` sorted, bounded.
fn info_files(lookup: &dyn FileLookup, ext: &str) -> Vec<(String, String)> {
    let suffix = format!(".{ext}");
    let mut out: Vec<(String, String)> = lookup
        .list(INFO)
        .into_iter()
        .filter_map(|n| {
            let pkg = n.strip_suffix(&suffix)?.to_string();
            Some((pkg, format!("{INFO}/{n}")))
        })
        .collect();
    out.sort();
    out.truncate(MAX_INFO_FILES);
    out
}

/// Findings about package ownership and integrity for the volume.
pub(crate) fn check(lookup: &dyn FileLookup) -> Vec<(String, CheckHit)> {
    let mut setid: BTreeMap<String, Meta> = BTreeMap::new();
    lookup.for_each_file(&mut |path, meta| {
        if meta.mode & 0o6000 != 0 && setid.len() < MAX_SETID {
            setid.insert(path.to_string(), *meta);
        }
    });
    let dpkg = lookup.metadata("/var/lib/dpkg/status").is_some() || !lookup.list(INFO).is_empty();
    let mut out = Vec::new();
    if dpkg {
        out.extend(unowned_dpkg(lookup, &setid));
        out.extend(modified(lookup, &setid));
    } else {
        let basis = if RPM_DBS.iter().any(|p| lookup.metadata(p).is_some()) {
            "rpm database not read; not in amiscan's list of stock setid files"
        } else {
            "no package database found; not in amiscan's list of stock setid files"
        };
        for (path, meta) in &setid {
            let alias = usrmerge_alias(path);
            let stock = STOCK_SETID.contains(&path.as_str())
                || alias.as_deref().is_some_and(|a| STOCK_SETID.contains(&a));
            if !stock {
                out.push(setid_hit(path, meta, Severity::Medium, basis));
            }
        }
    }
    out
}

/// `setuid root`, `setgid`, ... for evidence.
fn describe(meta: &Meta) -> String {
    let mut bits = Vec::new();
    if meta.mode & 0o4000 != 0 {
        bits.push(format!("setuid (owner uid {})", meta.uid));
    }
    if meta.mode & 0o2000 != 0 {
        bits.push(format!("setgid (group gid {})", meta.gid));
    }
    format!("{} mode {:04o}", bits.join(", "), meta.mode & 0o7777)
}

fn setid_hit(path: &str, meta: &Meta, severity: Severity, basis: &str) -> (String, CheckHit) {
    let evidence = format!("{}: {basis}", describe(meta));
    let fp = format!("{path}:{:o}", meta.mode & 0o7777);
    (
        path.to_string(),
        CheckHit::file(&SETID_RULE, severity, evidence, fp.as_bytes()),
    )
}

/// Setid files no dpkg `*.list` names.
fn unowned_dpkg(
    lookup: &dyn FileLookup,
    setid: &BTreeMap<String, Meta>,
) -> Vec<(String, CheckHit)> {
    if setid.is_empty() {
        return Vec::new();
    }
    let mut wanted: HashSet<String> = HashSet::new();
    for p in setid.keys() {
        wanted.insert(p.clone());
        wanted.extend(usrmerge_alias(p));
    }
    let mut owned: HashSet<String> = HashSet::new();
    for (_, list) in info_files(lookup, "list") {
        let Some(data) = lookup.read(&list, MAX_INFO_BYTES) else {
            continue;
        };
        for line in data.split(|&b| b == b'\n') {
            match std::str::from_utf8(line) {
                Ok(p) if wanted.contains(p) => {
                    owned.insert(p.to_string());
                }
                _ => {}
            }
        }
    }
    setid
        .iter()
        .filter(|(p, _)| {
            !owned.contains(p.as_str()) && !usrmerge_alias(p).is_some_and(|a| owned.contains(&a))
        })
        .map(|(p, meta)| {
            let severity = if meta.mode & 0o4000 != 0 && meta.uid == 0 {
                Severity::High
            } else {
                Severity::Medium
            };
            setid_hit(p, meta, severity, "no dpkg package lists it")
        })
        .collect()
}

/// Paths dpkg diverted (`/var/lib/dpkg/diversions`: from, to, package per three lines).
fn diversions(lookup: &dyn FileLookup) -> HashSet<String> {
    let data = lookup
        .read("/var/lib/dpkg/diversions", MAX_INFO_BYTES)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&data);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(3)
        .flat_map(|c| c.iter().take(2).map(|s| s.to_string()))
        .collect()
}

/// The MD5 of the file at `path` (or its usrmerge alias), from the scanner or read here.
fn md5_of(lookup: &dyn FileLookup, path: &str, budget: &mut usize) -> Option<[u8; 16]> {
    let candidates = std::iter::once(path.to_string()).chain(usrmerge_alias(path));
    for p in candidates {
        if let Some(d) = lookup.md5(&p) {
            return Some(d);
        }
        let Some(meta) = lookup.metadata(&p) else {
            continue;
        };
        if meta.size > MAX_VERIFY_BYTES as u64 || *budget == 0 {
            return None;
        }
        *budget -= 1;
        if let Some(data) = lookup.read(&p, MAX_VERIFY_BYTES) {
            return Some(Md5::digest(&data).into());
        }
    }
    None
}

/// Sensitive packaged files (and setid files) whose MD5 differs from dpkg's `md5sums`.
fn modified(lookup: &dyn FileLookup, setid: &BTreeMap<String, Meta>) -> Vec<(String, CheckHit)> {
    let diverted = diversions(lookup);
    let mut budget = MAX_VERIFY_FILES;
    let mut out = Vec::new();
    for (pkg, sums) in info_files(lookup, "md5sums") {
        let Some(data) = lookup.read(&sums, MAX_INFO_BYTES) else {
            continue;
        };
        for line in data.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let Some((hex_sum, rel)) = line.split_once("  ") else {
                continue;
            };
            let path = format!("/{}", rel.trim_start_matches('/'));
            let is_setid = setid.contains_key(&path)
                || usrmerge_alias(&path).is_some_and(|a| setid.contains_key(&a));
            if !(sensitive(&path) || is_setid) || diverted.contains(&path) {
                continue;
            }
            let Ok(expected) = hex::decode(hex_sum.trim()) else {
                continue;
            };
            let Some(actual) = md5_of(lookup, &path, &mut budget) else {
                continue;
            };
            if actual.as_slice() != expected.as_slice() {
                let pkg_name = pkg.split(':').next().unwrap_or(&pkg);
                let evidence = format!(
                    "content differs from package {}'s md5sums (expected {}, found {})",
                    super::clip(pkg_name, 60),
                    hex::encode(&expected),
                    hex::encode(actual)
                );
                let fp = format!("{path}:{}", hex::encode(actual));
                out.push((
                    path,
                    CheckHit::file(
                        &MODIFIED_RULE,
                        MODIFIED_RULE.severity,
                        evidence,
                        fp.as_bytes(),
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lookup::MemLookup;

    fn md5hex(data: &[u8]) -> String {
        hex::encode(Md5::digest(data))
    }

    /// A small Debian-layout volume: sudo and login-utils owned by dpkg.
    fn debian() -> MemLookup {
        let mut l = MemLookup::new()
            .file("/var/lib/dpkg/status", "Package: sudo\nStatus: install ok installed\n")
            .file(
                "/var/lib/dpkg/info/sudo.list",
                "/.\n/usr\n/usr/bin\n/usr/bin/sudo\n/usr/bin/sudoedit\n",
            )
            .file(
                "/var/lib/dpkg/info/mount.list",
                "/.\n/bin\n/bin/mount\n/bin/umount\n",
            )
            .file(
                "/var/lib/dpkg/info/libpam-modules:amd64.md5sums",
                format!(
                    "{}  lib/x86_64-linux-gnu/security/pam_unix.so\n{}  usr/share/doc/libpam-modules/copyright\n",
                    md5hex(b"pam_unix original"),
                    md5hex(b"whatever")
                ),
            )
            .file(
                "/var/lib/dpkg/info/procps.md5sums",
                format!("{}  usr/bin/ps\n", md5hex(b"ps original")),
            )
            .file("/usr/bin/ps", "ps original")
            .file("/lib/x86_64-linux-gnu/security/pam_unix.so", "pam_unix original");
        l.add("/usr/bin/sudo", 0o4755, "sudo");
        l.add("/usr/bin/mount", 0o4755, "mount");
        l.add("/usr/bin/wall", 0o2755, "wall");
        l.add("/usr/bin/ls", 0o755, "ls");
        l
    }

    #[test]
    fn a_clean_dpkg_system_with_only_wall_unowned() {
        // wall is not in any list here: a setgid-only finding at medium.
        let got: Vec<(String, &str, Severity)> = check(&debian())
            .into_iter()
            .map(|(p, h)| (p, h.rule, h.severity))
            .collect();
        assert_eq!(
            got,
            [(
                "/usr/bin/wall".to_string(),
                "setid-unowned",
                Severity::Medium
            )]
        );
    }

    #[test]
    fn backdoors_are_found() {
        let mut l = debian().file("/usr/bin/ps", "ps trojaned").file(
            "/lib/x86_64-linux-gnu/security/pam_unix.so",
            "pam_unix with a logger",
        );
        l.add("/tmp/.x/bash", 0o4755, "copy of bash");
        let got: Vec<(String, &str, String)> = check(&l)
            .into_iter()
            .map(|(p, h)| (p, h.rule, h.evidence))
            .collect();
        assert_eq!(got[0].0, "/tmp/.x/bash");
        assert_eq!(
            got[0].2,
            "setuid (owner uid 0) mode 4755: no dpkg package lists it"
        );
        let modified: Vec<&str> = got
            .iter()
            .filter(|g| g.1 == "dpkg-modified-file")
            .map(|g| g.0.as_str())
            .collect();
        assert_eq!(
            modified,
            ["/lib/x86_64-linux-gnu/security/pam_unix.so", "/usr/bin/ps"]
        );
        assert!(
            got.iter()
                .any(|g| g.2.contains("package libpam-modules's md5sums"))
        );
    }

    #[test]
    fn diverted_files_are_skipped() {
        let l = debian().file("/usr/bin/ps", "ps trojaned").file(
            "/var/lib/dpkg/diversions",
            "/usr/bin/ps\n/usr/bin/ps.distrib\nlocal\n",
        );
        assert!(
            check(&l)
                .iter()
                .all(|(_, h)| h.rule != "dpkg-modified-file")
        );
    }

    #[test]
    fn rpm_systems_use_the_stock_list() {
        let mut l = MemLookup::new().file("/var/lib/rpm/rpmdb.sqlite", "SQLite format 3\0");
        l.add("/usr/bin/passwd", 0o4755, "x");
        l.add("/usr/libexec/openssh/ssh-keysign", 0o2555, "x");
        l.add("/usr/local/bin/helper", 0o4755, "x");
        let got = check(&l);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "/usr/local/bin/helper");
        assert_eq!(got[0].1.severity, Severity::Medium);
        assert!(got[0].1.evidence.contains("rpm database not read"));
    }

    #[test]
    fn aliases_and_sensitivity() {
        assert_eq!(usrmerge_alias("/bin/ls").as_deref(), Some("/usr/bin/ls"));
        assert_eq!(
            usrmerge_alias("/usr/sbin/sshd").as_deref(),
            Some("/sbin/sshd")
        );
        assert_eq!(usrmerge_alias("/usr/share/x"), None);
        assert!(sensitive("/usr/sbin/sshd"));
        assert!(sensitive(
            "/usr/lib/x86_64-linux-gnu/security/pam_permit.so"
        ));
        assert!(sensitive("/lib/x86_64-linux-gnu/libkeyutils.so.1.10"));
        assert!(!sensitive("/usr/bin/vim"));
        assert!(!sensitive("/usr/share/doc/ls"));
    }
}
