//! Package-database checks, for vetting third-party images: setuid/setgid files that no package
//! owns, and sensitive system files whose content differs from what their package installed.
//!
//! **Ownership** comes from dpkg's `/var/lib/dpkg/info/*.list`, or from the rpm database
//! (`rpmdb.sqlite` or the older Berkeley DB `Packages`, read by [`crate::pkgdb::rpm`]): the union of
//! every installed package's files. An unowned setuid-root file is a classic backdoor: high.
//! On systems with no package database amiscan reads (none at all, SUSE's ndb `Packages.db`,
//! or an rpm database that cannot be read), setid files are compared with a built-in list of
//! the setid files stock distributions ship, and the finding says which comparison was made
//! (medium, as it is less certain). An rpm database that cannot be read, or some of whose
//! package headers do not decode, is also a scan error naming the file: the scan could not
//! verify, and says so.
//!
//! **Reads that fail** (the lookup's [`Unreadable`], not a file that is absent) are scan errors
//! naming the file, and never become a verdict: a dpkg `*.list` that cannot be read could own
//! any setid file, so no ownership finding is made; an unreadable `md5sums` leaves its
//! package's files unverified; unreadable `diversions` leave every file unverified (a diverted
//! file would look modified); a file to verify that cannot be read is not judged; an rpm
//! database that cannot be read (as opposed to one that reads but does not parse) makes no
//! ownership finding, not even against the built-in list.
//!
//! **Content**: reading and hashing every packaged file is costly, so only a bounded set is
//! verified: PAM modules (`*/security/*.so`), a list of binaries rootkits replace (`ls`, `ps`,
//! `ss`, `sshd`, `sudo`, `login`, ...), `libkeyutils` (Ebury), and every setid file. dpkg's
//! digests are the MD5s of `/var/lib/dpkg/info/*.md5sums` (diverted files,
//! `/var/lib/dpkg/diversions`, are skipped); rpm's are each package's `FILEDIGESTS` in its
//! `FILEDIGESTALGO` (MD5, SHA-1, SHA-224/256/384/512), skipping configuration and ghost files,
//! files not installed and files packaged with `%verify(not md5)`. A path several rpm packages
//! list (multilib) is modified only when it matches none of them. MD5s already computed by the
//! scanner come from [`FileLookup::md5`]; other files are read (at most [`MAX_VERIFY_FILES`]
//! files of at most [`MAX_VERIFY_BYTES`] each). A mismatch is high (`dpkg-modified-file`,
//! `rpm-modified-file`): a replaced login path or PAM module is how credentials get stolen.

use super::{CheckHit, CheckRule, file_name};
use crate::detect::lookup::{FileLookup, Looked, Meta, Unreadable};
use crate::pkgdb::dpkg;
use crate::pkgdb::rpm as rpmdb;
use crate::report::{ScanError, Severity};
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

/// A file that differs from its rpm package.
pub(crate) const RPM_MODIFIED_RULE: CheckRule = CheckRule {
    id: "rpm-modified-file",
    title: "System file differs from its rpm package",
    severity: Severity::High,
    remediation: "Check it with `rpm -Vf FILE`, reinstall the package (`dnf reinstall PACKAGE` or `yum reinstall PACKAGE`) and find out what replaced the file; a modified login path or PAM module captures credentials. Do not share the image until explained.",
    suppresses: &[],
};

const INFO: &str = "/var/lib/dpkg/info";
/// Most setid files considered.
const MAX_SETID: usize = 10_000;
/// Most dpkg info files read.
const MAX_INFO_FILES: usize = 50_000;
/// Most bytes read of one dpkg info file.
pub(crate) const MAX_INFO_BYTES: usize = 32 * 1024 * 1024;
/// Most packaged files verified by content.
pub(crate) const MAX_VERIFY_FILES: usize = 512;
/// Most `md5sums` entries kept for verification (a stock system has a few hundred; a hostile
/// database listing more is cut here, and the files past it are not verified).
const MAX_VERIFY_ENTRIES: usize = 65_536;
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

/// The same file under merged `/usr`: `/bin/x` <-> `/usr/bin/x` (and `sbin`, `lib*`).
pub(crate) fn usrmerge_alias(path: &str) -> Option<String> {
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

/// Whether the content scan should keep the MD5 of the file it streams at `path` (a real path,
/// with permission bits `mode`) for [`FileLookup::md5`]: a file this check verifies, by its
/// name or as a setid file, so it need not read it again.
pub(crate) fn md5_wanted(path: &str, mode: u32) -> bool {
    mode & 0o6000 != 0 || sensitive(path) || usrmerge_alias(path).is_some_and(|a| sensitive(&a))
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
fn info_files(lookup: &dyn FileLookup, ext: &str) -> Looked<Vec<(String, String)>> {
    let suffix = format!(".{ext}");
    let mut out: Vec<(String, String)> = lookup
        .list(INFO)?
        .into_iter()
        .filter_map(|n| {
            let pkg = n.strip_suffix(&suffix)?.to_string();
            Some((pkg, format!("{INFO}/{n}")))
        })
        .collect();
    out.sort();
    out.truncate(MAX_INFO_FILES);
    Ok(out)
}

/// `e` as a scan error: what the package check could not do because of it.
fn unread(errors: &mut Vec<ScanError>, e: &Unreadable, what: &str) {
    errors.push(e.scan_error(what));
}

/// Whether the volume has a dpkg database (its status file or info directory).
fn has_dpkg(lookup: &dyn FileLookup) -> Looked<bool> {
    Ok(lookup.metadata("/var/lib/dpkg/status")?.is_some() || !lookup.list(INFO)?.is_empty())
}

/// Findings about package ownership and integrity for the volume. A package database that
/// exists but cannot be read (wholly or in part) is pushed to `errors`, naming the file.
pub(crate) fn check(
    lookup: &dyn FileLookup,
    errors: &mut Vec<ScanError>,
) -> Vec<(String, CheckHit)> {
    let mut setid: BTreeMap<String, Meta> = BTreeMap::new();
    lookup.for_each_file(&mut |path, meta| {
        if meta.mode & 0o6000 != 0 && setid.len() < MAX_SETID {
            setid.insert(path.to_string(), *meta);
        }
    });
    // Without content verification (--quick) the package database only matters for the setid
    // files the walk saw: none, nothing to read.
    if !lookup.verify_content() && setid.is_empty() {
        return Vec::new();
    }
    const NOT_VERIFIED: &str = "the package database was not identified: package ownership of \
                                setuid/setgid files and file contents were not verified";
    let dpkg = match has_dpkg(lookup) {
        Ok(dpkg) => dpkg,
        Err(e) => {
            unread(errors, &e, NOT_VERIFIED);
            return Vec::new();
        }
    };
    if dpkg {
        let mut out = unowned_dpkg(lookup, &setid, errors);
        if lookup.verify_content() {
            out.extend(modified(lookup, &setid, errors));
        }
        return out;
    }
    let found = match rpm::find(lookup) {
        Ok(found) => found,
        Err(e) => {
            unread(errors, &e, NOT_VERIFIED);
            return Vec::new();
        }
    };
    let basis = if let Some((path, backend)) = found {
        match rpm::check(lookup, path, backend, &setid, errors) {
            Ok((hits, stats)) => {
                if stats.bad_headers > 0 {
                    errors.push(ScanError {
                        path_bytes: None,
                        path: Some(path.to_string()),
                        message: format!(
                            "rpm {} database: {} of {} package headers could not be decoded \
                             (first: {}); the files of those packages count as unowned and \
                             unverified",
                            backend.name(),
                            stats.bad_headers,
                            stats.bad_headers.saturating_add(stats.packages),
                            stats.first_bad.as_deref().unwrap_or("?"),
                        ),
                    });
                }
                return hits;
            }
            Err(rpmdb::RpmDbError::Unreadable(why)) => {
                errors.push(ScanError {
                    path: Some(path.to_string()),
                    path_bytes: None,
                    message: format!(
                        "rpm {} database cannot be read ({why}): package ownership of \
                         setuid/setgid files and file contents were not verified",
                        backend.name()
                    ),
                });
                return Vec::new();
            }
            Err(e) => {
                errors.push(ScanError {
                    path_bytes: None,
                    path: Some(path.to_string()),
                    message: format!(
                        "rpm {} database could not be read: {e}; package ownership and file \
                         contents were not verified (setuid/setgid files were compared with \
                         amiscan's built-in list instead)",
                        backend.name()
                    ),
                });
                format!(
                    "rpm database {path} unreadable; not in amiscan's list of stock setid files"
                )
            }
        }
    } else if let Some(p) = match first_present(lookup, rpmdb::UNREAD_DB_PATHS) {
        Ok(p) => p,
        Err(e) => {
            unread(errors, &e, NOT_VERIFIED);
            return Vec::new();
        }
    } {
        format!("rpm ndb database {p} not read; not in amiscan's list of stock setid files")
    } else {
        "no package database found; not in amiscan's list of stock setid files".to_string()
    };
    let mut out = Vec::new();
    for (path, meta) in &setid {
        let alias = usrmerge_alias(path);
        let stock = STOCK_SETID.contains(&path.as_str())
            || alias.as_deref().is_some_and(|a| STOCK_SETID.contains(&a));
        if !stock {
            out.push(setid_hit(path, meta, Severity::Medium, &basis));
        }
    }
    out
}

/// The first of `paths` that exists on the volume.
fn first_present<'p>(lookup: &dyn FileLookup, paths: &[&'p str]) -> Looked<Option<&'p str>> {
    for p in paths {
        if lookup.metadata(p)?.is_some() {
            return Ok(Some(p));
        }
    }
    Ok(None)
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

/// `setid` paths and their usrmerge aliases: the paths whose ownership matters.
fn wanted(setid: &BTreeMap<String, Meta>) -> HashSet<String> {
    let mut wanted: HashSet<String> = HashSet::new();
    for p in setid.keys() {
        wanted.insert(p.clone());
        wanted.extend(usrmerge_alias(p));
    }
    wanted
}

/// Setid files no dpkg `*.list` names. None when a list cannot be read (it may be the one
/// that owns them): that is an error instead.
fn unowned_dpkg(
    lookup: &dyn FileLookup,
    setid: &BTreeMap<String, Meta>,
    errors: &mut Vec<ScanError>,
) -> Vec<(String, CheckHit)> {
    const NO_OWNERSHIP: &str = "package ownership of setuid/setgid files was not judged";
    if setid.is_empty() {
        return Vec::new();
    }
    let wanted = wanted(setid);
    let mut owned: HashSet<String> = HashSet::new();
    let lists = match info_files(lookup, "list") {
        Ok(lists) => lists,
        Err(e) => {
            unread(errors, &e, NO_OWNERSHIP);
            return Vec::new();
        }
    };
    lookup.prefetch(&lists.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>());
    let mut complete = true;
    for (_, list) in lists {
        let data = match lookup.read(&list, MAX_INFO_BYTES) {
            Ok(Some(data)) => data,
            Ok(None) => continue,
            Err(e) => {
                unread(errors, &e, NO_OWNERSHIP);
                complete = false;
                continue;
            }
        };
        for p in dpkg::list_paths(&data) {
            if wanted.contains(p) {
                owned.insert(p.to_string());
            }
        }
    }
    if !complete {
        return Vec::new();
    }
    unowned(setid, &owned, "no dpkg package lists it")
}

/// Setid files not in `owned` (nor their usrmerge aliases): high for setuid root.
fn unowned(
    setid: &BTreeMap<String, Meta>,
    owned: &HashSet<String>,
    basis: &str,
) -> Vec<(String, CheckHit)> {
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
            setid_hit(p, meta, severity, basis)
        })
        .collect()
}

/// Paths dpkg diverted (`/var/lib/dpkg/diversions`: from, to, package per three lines).
fn diversions(lookup: &dyn FileLookup) -> Looked<HashSet<String>> {
    let data = lookup
        .read("/var/lib/dpkg/diversions", MAX_INFO_BYTES)?
        .unwrap_or_default();
    Ok(dpkg::diversions(&data))
}

/// The bytes of the file at `path` (or its usrmerge alias), within the verification budget;
/// `Ok(None)` when it is not there, too large or past the budget.
pub(crate) fn verify_bytes(
    lookup: &dyn FileLookup,
    path: &str,
    budget: &mut usize,
) -> Looked<Option<Vec<u8>>> {
    if !lookup.verify_content() {
        return Ok(None);
    }
    for p in std::iter::once(path.to_string()).chain(usrmerge_alias(path)) {
        let Some(meta) = lookup.metadata(&p)? else {
            continue;
        };
        if meta.size > MAX_VERIFY_BYTES as u64 || *budget == 0 {
            return Ok(None);
        }
        *budget -= 1;
        return lookup.read(&p, MAX_VERIFY_BYTES);
    }
    Ok(None)
}

/// The MD5 of the file at `path` (or its usrmerge alias), from the scanner or read here.
fn md5_of(lookup: &dyn FileLookup, path: &str, budget: &mut usize) -> Looked<Option<[u8; 16]>> {
    let candidates = std::iter::once(path.to_string()).chain(usrmerge_alias(path));
    for p in candidates {
        if let Some(d) = lookup.md5(&p) {
            return Ok(Some(d));
        }
    }
    Ok(verify_bytes(lookup, path, budget)?.map(|data| Md5::digest(&data).into()))
}

/// What a file that could not be verified did not get.
pub(crate) const NOT_JUDGED: &str = "its content was not verified against its package";

/// A packaged file to verify: its package and the MD5 dpkg recorded.
struct ToVerify {
    pkg: String,
    path: String,
    expected: Vec<u8>,
}

/// Sensitive packaged files (and setid files) whose MD5 differs from dpkg's `md5sums`. The
/// `md5sums` files are read first, then the files to verify: each set is hinted to the lookup
/// before it is read (see [`FileLookup::prefetch`]).
fn modified(
    lookup: &dyn FileLookup,
    setid: &BTreeMap<String, Meta>,
    errors: &mut Vec<ScanError>,
) -> Vec<(String, CheckHit)> {
    const NO_CONTENT: &str = "packaged files were not verified against dpkg's md5sums";
    let (diverted, sums) =
        match diversions(lookup).and_then(|d| Ok((d, info_files(lookup, "md5sums")?))) {
            Ok(both) => both,
            Err(e) => {
                unread(errors, &e, NO_CONTENT);
                return Vec::new();
            }
        };
    lookup.prefetch(&sums.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>());
    let mut todo: Vec<ToVerify> = Vec::new();
    for (pkg, sums) in sums {
        let data = match lookup.read(&sums, MAX_INFO_BYTES) {
            Ok(Some(data)) => data,
            Ok(None) => continue,
            Err(e) => {
                unread(errors, &e, "the files of its package were not verified");
                continue;
            }
        };
        for line in dpkg::md5sums(&data) {
            let path = line.path.clone();
            let is_setid = setid.contains_key(&path)
                || usrmerge_alias(&path).is_some_and(|a| setid.contains_key(&a));
            if !(sensitive(&path) || is_setid) || diverted.contains(&path) {
                continue;
            }
            let Some(expected) = line.md5() else {
                continue;
            };
            if todo.len() >= MAX_VERIFY_ENTRIES {
                break;
            }
            todo.push(ToVerify {
                pkg: pkg.clone(),
                path,
                expected,
            });
        }
    }
    // What the scanner has the digest of is not read: not hinted either.
    let hint: Vec<String> = todo
        .iter()
        .filter(|t| {
            std::iter::once(t.path.clone())
                .chain(usrmerge_alias(&t.path))
                .all(|p| lookup.md5(&p).is_none())
        })
        .take(MAX_VERIFY_FILES)
        .flat_map(|t| std::iter::once(t.path.clone()).chain(usrmerge_alias(&t.path)))
        .collect();
    lookup.prefetch(&hint);
    let mut budget = MAX_VERIFY_FILES;
    let mut out = Vec::new();
    for ToVerify {
        pkg,
        path,
        expected,
    } in todo
    {
        let actual = match md5_of(lookup, &path, &mut budget) {
            Ok(Some(actual)) => actual,
            Ok(None) => continue,
            Err(e) => {
                unread(errors, &e, NOT_JUDGED);
                continue;
            }
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
    out
}

pub(crate) mod rpm;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lookup::MemLookup;

    /// The findings of `check`, asserting no scan error.
    fn check_all(l: &MemLookup) -> Vec<(String, CheckHit)> {
        let mut errors = Vec::new();
        let out = check(l, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        out
    }

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

    /// A lookup that logs the hints and the reads made through it, with the MD5s a scanner
    /// computed.
    struct Logged<'a> {
        inner: &'a MemLookup,
        log: std::cell::RefCell<Vec<String>>,
        md5s: BTreeMap<String, [u8; 16]>,
    }

    impl<'a> Logged<'a> {
        fn new(inner: &'a MemLookup, md5s: BTreeMap<String, [u8; 16]>) -> Self {
            Logged {
                inner,
                log: Default::default(),
                md5s,
            }
        }
    }

    impl FileLookup for Logged<'_> {
        fn read(&self, path: &str, max: usize) -> Looked<Option<Vec<u8>>> {
            self.log.borrow_mut().push(format!("read {path}"));
            self.inner.read(path, max)
        }
        fn list(&self, dir: &str) -> Looked<Vec<String>> {
            self.inner.list(dir)
        }
        fn metadata(&self, path: &str) -> Looked<Option<Meta>> {
            self.inner.metadata(path)
        }
        fn for_each_file(&self, visit: &mut dyn FnMut(&str, &Meta)) {
            self.inner.for_each_file(visit);
        }
        fn prefetch(&self, paths: &[String]) {
            for p in paths {
                self.log.borrow_mut().push(format!("hint {p}"));
            }
        }
        fn md5(&self, path: &str) -> Option<[u8; 16]> {
            self.md5s.get(path).copied()
        }
    }

    /// A file whose MD5 the scanner computed while scanning it is neither read nor hinted
    /// again, and is still judged by that digest.
    #[test]
    fn the_scanners_digests_spare_a_second_read() {
        let vol = debian();
        let scanned = BTreeMap::from([(
            "/usr/bin/ps".to_string(),
            Md5::digest(b"ps trojaned").into(),
        )]);
        let l = Logged::new(&vol, scanned);
        let mut errors = Vec::new();
        let got: Vec<(String, &str)> = check(&l, &mut errors)
            .into_iter()
            .map(|(p, h)| (p, h.rule))
            .collect();
        assert!(
            got.contains(&("/usr/bin/ps".to_string(), "dpkg-modified-file")),
            "{got:?}"
        );
        let log = l.log.into_inner();
        assert!(!log.iter().any(|e| e.ends_with(" /usr/bin/ps")), "{log:#?}");
        // The file without a digest is still hinted and read.
        let pam = "/lib/x86_64-linux-gnu/security/pam_unix.so";
        assert!(log.contains(&format!("hint {pam}")) && log.contains(&format!("read {pam}")));
    }

    /// On a remote volume one read waits a round trip: each set of files the check reads one
    /// after another (the package lists, the md5sums, the files to verify) is named to the
    /// lookup before the first of them is read.
    #[test]
    fn the_files_read_in_turn_are_hinted_first() {
        let vol = debian();
        let l = Logged::new(&vol, BTreeMap::new());
        let mut errors = Vec::new();
        assert_eq!(check(&l, &mut errors).len(), 1);
        let log = l.log.into_inner();
        let at = |entry: &str| {
            log.iter()
                .position(|e| e == entry)
                .unwrap_or_else(|| panic!("no {entry:?} in {log:#?}"))
        };
        let info = "/var/lib/dpkg/info";
        for (hint, first_read) in [
            (format!("{info}/mount.list"), format!("{info}/mount.list")),
            (format!("{info}/sudo.list"), format!("{info}/mount.list")),
            (
                format!("{info}/procps.md5sums"),
                format!("{info}/libpam-modules:amd64.md5sums"),
            ),
            (
                "/usr/bin/ps".to_string(),
                "/lib/x86_64-linux-gnu/security/pam_unix.so".to_string(),
            ),
            // The usrmerge alias too: the file may be there.
            (
                "/usr/lib/x86_64-linux-gnu/security/pam_unix.so".to_string(),
                "/lib/x86_64-linux-gnu/security/pam_unix.so".to_string(),
            ),
        ] {
            assert!(
                at(&format!("hint {hint}")) < at(&format!("read {first_read}")),
                "{hint} is hinted after {first_read} is read: {log:#?}"
            );
        }
    }

    #[test]
    fn a_clean_dpkg_system_with_only_wall_unowned() {
        // wall is not in any list here: a setgid-only finding at medium.
        let got: Vec<(String, &str, Severity)> = check_all(&debian())
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
        let got: Vec<(String, &str, String)> = check_all(&l)
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
            check_all(&l)
                .iter()
                .all(|(_, h)| h.rule != "dpkg-modified-file")
        );
    }

    #[test]
    fn an_unreadable_rpm_database_is_an_error_and_the_stock_list_is_used() {
        let mut l = MemLookup::new().file("/var/lib/rpm/rpmdb.sqlite", "SQLite format 3\0");
        l.add("/usr/bin/passwd", 0o4755, "x");
        l.add("/usr/libexec/openssh/ssh-keysign", 0o2555, "x");
        l.add("/usr/local/bin/helper", 0o4755, "x");
        let mut errors = Vec::new();
        let got = check(&l, &mut errors);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "/usr/local/bin/helper");
        assert_eq!(got[0].1.severity, Severity::Medium);
        assert!(
            got[0]
                .1
                .evidence
                .contains("rpm database /var/lib/rpm/rpmdb.sqlite unreadable")
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path.as_deref(), Some("/var/lib/rpm/rpmdb.sqlite"));
        assert!(
            errors[0]
                .message
                .starts_with("rpm sqlite database could not be read: sqlite: "),
            "{}",
            errors[0].message
        );
    }

    /// Issue 19: package files that cannot be read are errors naming them, never verdicts. An
    /// unreadable list could own the setid files: none is called unowned. An unreadable file
    /// to verify is not called modified; the others still are.
    #[test]
    fn unreadable_package_files_are_errors_not_verdicts() {
        let info = "/var/lib/dpkg/info";
        let l = debian()
            .unreadable(&format!("{info}/sudo.list"))
            .unreadable("/lib/x86_64-linux-gnu/security/pam_unix.so")
            .file("/usr/bin/ps", "ps trojaned");
        let mut errors = Vec::new();
        let got: Vec<(String, &str)> = check(&l, &mut errors)
            .into_iter()
            .map(|(p, h)| (p, h.rule))
            .collect();
        assert_eq!(got, [("/usr/bin/ps".to_string(), "dpkg-modified-file")]);
        let paths: Vec<&str> = errors.iter().filter_map(|e| e.path.as_deref()).collect();
        assert_eq!(
            paths,
            [
                "/var/lib/dpkg/info/sudo.list",
                "/lib/x86_64-linux-gnu/security/pam_unix.so"
            ]
        );
        // Diversions unknown: nothing is judged modified.
        let l = debian()
            .file("/usr/bin/ps", "ps trojaned")
            .unreadable("/var/lib/dpkg/diversions");
        let mut errors = Vec::new();
        let got = check(&l, &mut errors);
        assert!(
            got.iter().all(|(_, h)| h.rule != "dpkg-modified-file"),
            "{got:?}"
        );
        assert_eq!(errors.len(), 1);
        // An info directory that cannot be listed: no verdict at all.
        let l = debian().unreadable_dir(info);
        let mut errors = Vec::new();
        assert!(check(&l, &mut errors).is_empty());
        assert_eq!(errors[0].path.as_deref(), Some(info));
    }

    /// An rpm database that cannot be read (not one that reads and does not parse) makes no
    /// ownership finding, not even against the built-in list.
    #[test]
    fn an_rpm_database_that_cannot_be_read_gives_no_verdict() {
        let mut l = MemLookup::new().unreadable("/var/lib/rpm/rpmdb.sqlite");
        l.add("/usr/local/bin/helper", 0o4755, "x");
        let mut errors = Vec::new();
        assert!(check(&l, &mut errors).is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path.as_deref(), Some("/var/lib/rpm/rpmdb.sqlite"));
        assert!(
            errors[0].message.contains("injected read error"),
            "{:?}",
            errors[0]
        );
    }

    #[test]
    fn systems_without_a_database_use_the_stock_list() {
        let mut l = MemLookup::new();
        l.add("/usr/bin/passwd", 0o4755, "x");
        l.add("/usr/local/bin/helper", 0o4755, "x");
        let got = check_all(&l);
        assert_eq!(got.len(), 1);
        assert!(got[0].1.evidence.contains("no package database found"));
        let l = l.file("/usr/lib/sysimage/rpm/Packages.db", "ndb");
        let got = check_all(&l);
        assert!(got[0].1.evidence.contains("rpm ndb database"));
    }

    fn sha256hex(data: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(data))
    }

    /// An rpm volume whose Berkeley DB `Packages` lists sudo (setuid) and procps (ps), with
    /// pam (two packages list pam_unix.so, as multilib would, one with another digest).
    fn rpm_bdb(endian: rpmdb::bdb::Endian) -> MemLookup {
        use rpmdb::header::build::package;
        let sudo = package(
            "sudo",
            &[
                ("/usr/bin/sudo", 0o104111, 0, &sha256hex(b"sudo original")),
                ("/etc/sudoers", 0o100440, 1, &sha256hex(b"stock sudoers")),
            ],
        );
        let procps = package(
            "procps-ng",
            &[("/usr/bin/ps", 0o100755, 0, &sha256hex(b"ps original"))],
        );
        let pam = package(
            "pam",
            &[(
                "/usr/lib64/security/pam_unix.so",
                0o100755,
                0,
                &sha256hex(b"pam_unix original"),
            )],
        );
        let pam32 = package(
            "pam32",
            &[(
                "/usr/lib64/security/pam_unix.so",
                0o100755,
                0,
                &sha256hex(b"pam_unix other arch"),
            )],
        );
        let key = |n: u32| match endian {
            rpmdb::bdb::Endian::Little => n.to_le_bytes().to_vec(),
            rpmdb::bdb::Endian::Big => n.to_be_bytes().to_vec(),
        };
        let pairs = vec![
            (key(0), key(4)),
            (key(1), sudo),
            (key(2), procps),
            (key(3), pam),
            (key(4), pam32),
        ];
        let db = rpmdb::bdb::build::file(&pairs, 4096, endian);
        let mut l = MemLookup::new()
            .file("/var/lib/rpm/Packages", db)
            .file("/usr/bin/ps", "ps original")
            .file("/etc/sudoers", "edited sudoers")
            .file("/usr/lib64/security/pam_unix.so", "pam_unix other arch");
        l.add("/usr/bin/sudo", 0o4111, "sudo original");
        l
    }

    #[test]
    fn a_clean_rpm_system_has_no_findings() {
        for e in [rpmdb::bdb::Endian::Little, rpmdb::bdb::Endian::Big] {
            assert_eq!(check_all(&rpm_bdb(e)), []);
        }
    }

    #[test]
    fn rpm_backdoors_are_found() {
        let mut l = rpm_bdb(rpmdb::bdb::Endian::Little)
            .file("/usr/bin/ps", "ps trojaned")
            .file("/usr/lib64/security/pam_unix.so", "pam_unix with a logger");
        l.add("/usr/bin/sudo", 0o4111, "sudo trojaned");
        l.add("/usr/local/bin/.x", 0o4755, "copy of bash");
        let got: Vec<(String, &str, String)> = check_all(&l)
            .into_iter()
            .map(|(p, h)| (p, h.rule, h.evidence))
            .collect();
        let rules: Vec<(&str, &str)> = got.iter().map(|g| (g.0.as_str(), g.1)).collect();
        assert_eq!(
            rules,
            [
                ("/usr/local/bin/.x", "setid-unowned"),
                ("/usr/bin/ps", "rpm-modified-file"),
                ("/usr/bin/sudo", "rpm-modified-file"),
                ("/usr/lib64/security/pam_unix.so", "rpm-modified-file"),
            ]
        );
        assert_eq!(
            got[0].2,
            "setuid (owner uid 0) mode 4755: no rpm package lists it \
             (Berkeley DB database /var/lib/rpm/Packages)"
        );
        assert_eq!(
            got[1].2,
            format!(
                "content differs from package procps-ng-1.0-1 in the rpm Berkeley DB database \
                 /var/lib/rpm/Packages (SHA256 expected {}, found {})",
                sha256hex(b"ps original"),
                sha256hex(b"ps trojaned")
            )
        );
    }

    #[test]
    fn rpm_sqlite_with_wal() {
        use rpmdb::header::build::package;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
        let ps = package(
            "procps-ng",
            &[("/usr/bin/ps", 0o100755, 0, &sha256hex(b"ps original"))],
        );
        c.execute("INSERT INTO Packages VALUES (1, ?1)", [&ps])
            .unwrap();
        let db = std::fs::read(&p).unwrap();
        let wal = std::fs::read(dir.path().join("db-wal")).unwrap();
        let mut l = MemLookup::new()
            .file("/var/lib/rpm/rpmdb.sqlite", db)
            .file("/usr/bin/ps", "ps trojaned");
        // The package lives only in the WAL: without it, ps is not verified.
        assert_eq!(check_all(&l), []);
        l = l.file("/var/lib/rpm/rpmdb.sqlite-wal", wal);
        let got = check_all(&l);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.rule, "rpm-modified-file");
        assert!(
            got[0]
                .1
                .evidence
                .contains("procps-ng-1.0-1 in the rpm sqlite database")
        );
    }

    #[test]
    fn corrupt_rpm_headers_are_reported_and_the_rest_used() {
        use rpmdb::header::build::package;
        let e = rpmdb::bdb::Endian::Little;
        let ps = package(
            "procps-ng",
            &[("/usr/bin/ps", 0o100755, 0, &sha256hex(b"ps original"))],
        );
        let pairs = vec![
            (1u32.to_le_bytes().to_vec(), ps),
            (2u32.to_le_bytes().to_vec(), b"\0\0\0\x01garbage".to_vec()),
        ];
        let mut l = MemLookup::new()
            .file(
                "/var/lib/rpm/Packages",
                rpmdb::bdb::build::file(&pairs, 4096, e),
            )
            .file("/usr/bin/ps", "ps trojaned");
        l.add("/usr/bin/helper", 0o4755, "x");
        let mut errors = Vec::new();
        let got = check(&l, &mut errors);
        assert_eq!(got.len(), 2);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .starts_with("rpm Berkeley DB database: 1 of 2 package headers could not"),
            "{}",
            errors[0].message
        );
        // A database with no decodable header: an error, and the stock list.
        let l = MemLookup::new().file(
            "/var/lib/rpm/Packages",
            rpmdb::bdb::build::file(&pairs[1..], 4096, e),
        );
        let mut errors = Vec::new();
        check(&l, &mut errors);
        assert!(
            errors[0]
                .message
                .contains("no package header could be decoded")
        );
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
