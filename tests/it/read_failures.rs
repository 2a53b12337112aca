//! Issue 19, "reads that fail must not become answers": an ext4 image written by the kernel
//! (loop mount), scanned through a source that fails every read of one file's data block, as a
//! disk with a bad sector or an EBS block that never arrives would. For each input of a check
//! (sshd_config, /etc/shadow, a sudoers drop-in, a dpkg package list), the scan must be
//! incomplete, name the file, and make no finding about it: the healthy image says
//! `PasswordAuthentication no`, and an unreadable sshd_config read as absent used to give
//! "PasswordAuthentication not set: OpenSSH's default is yes"; an unreadable package list made
//! the setuid binary it owns "unowned".

use amiscan::detect::Detector;
use amiscan::report::TargetReport;
use amiscan::scan::{ScanOptions, scan_source};
use amiscan::source::{FileSource, Source, SourceError};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A file source whose reads overlapping `bad` fail, every time.
struct Faulty {
    inner: FileSource,
    bad: Range<u64>,
}

impl Source for Faulty {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let end = offset + buf.len() as u64;
        if offset < self.bad.end && self.bad.start < end {
            return Err(SourceError::Io {
                what: "faulty.img".into(),
                offset,
                source: std::io::Error::other("injected permanent fault"),
            });
        }
        self.inner.read_at(offset, buf)
    }
    fn describe(&self) -> String {
        "faulty.img".into()
    }
}

/// The image (1 KiB blocks, files copied in through a loop mount), built once.
fn image() -> &'static Path {
    static IMG: OnceLock<PathBuf> = OnceLock::new();
    IMG.get_or_init(|| {
        let dir = crate::common::workdir("read-failures", "img");
        let hash = crate::common::run(&mut crate::common::bash(
            "openssl passwd -6 \"$(openssl rand -hex 12)\"",
        ));
        std::fs::write(dir.join("alice.hash"), hash.trim()).unwrap();
        crate::common::run(
            crate::common::bash(
                r#"
cd "$0"
truncate -s 16M fs.img && mkfs.ext4 -q -F -b 1024 fs.img
mkdir -p m
mount -o loop fs.img m
trap 'umount m 2>/dev/null || true' EXIT
mkdir -p m/etc/ssh m/etc/sudoers.d m/var/lib/dpkg/info m/usr/bin
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n' > m/etc/ssh/sshd_config
printf 'root:!:19700:0:99999:7:::\nalice:%s:19700:0:99999:7:::\n' "$(cat alice.hash)" > m/etc/shadow
chmod 640 m/etc/shadow
printf 'Defaults env_reset\n#includedir /etc/sudoers.d\n' > m/etc/sudoers
printf 'jenkins ALL=(ALL) NOPASSWD: ALL\n' > m/etc/sudoers.d/90-build
printf 'Package: sudo\nStatus: install ok installed\n' > m/var/lib/dpkg/status
printf '/.\n/usr\n/usr/bin\n/usr/bin/sudo\n' > m/var/lib/dpkg/info/sudo.list
head -c 3000 /dev/urandom > m/usr/bin/sudo
chmod 4755 m/usr/bin/sudo
umount m
trap - EXIT
e2fsck -fn fs.img >/dev/null
"#,
            )
            .arg(&dir),
        );
        dir.join("fs.img")
    })
}

/// Bytes of the first data block of `path` in the image.
fn block_of(img: &Path, path: &str) -> Range<u64> {
    let out = crate::common::run(
        std::process::Command::new("debugfs")
            .arg("-R")
            .arg(format!("bmap {path} 0"))
            .arg(img),
    );
    let block: u64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("debugfs bmap {path}: {out:?}"));
    assert!(block > 0, "{path} has no data block");
    block * 1024..(block + 1) * 1024
}

fn scan(bad: Option<Range<u64>>) -> TargetReport {
    let img = image();
    let inner = FileSource::open(img).unwrap();
    let src: Arc<dyn Source> = match bad {
        Some(bad) => Arc::new(Faulty { inner, bad }),
        None => Arc::new(inner),
    };
    let det = Detector::builtin().unwrap();
    scan_source("faulty.img".into(), src, &det, &ScanOptions::default())
}

/// `(rule, path)` of every finding.
fn findings(t: &TargetReport) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = t
        .findings
        .iter()
        .map(|f| (f.rule.clone(), f.path.clone().unwrap_or_default()))
        .collect();
    v.sort();
    v
}

/// Every error of the target and its volumes, as `path: message`.
fn errors(t: &TargetReport) -> Vec<String> {
    t.errors
        .iter()
        .chain(t.volumes.iter().flat_map(|v| &v.errors))
        .map(|e| format!("{}: {}", e.path.as_deref().unwrap_or("-"), e.message))
        .collect()
}

#[test]
fn the_healthy_image_is_complete_with_its_findings() {
    let t = scan(None);
    assert!(t.complete, "{:#?}", errors(&t));
    let got = findings(&t);
    for want in [
        ("shadow-password-hash", "/etc/shadow"),
        ("sudo-nopasswd", "/etc/sudoers.d/90-build"),
    ] {
        assert!(
            got.contains(&(want.0.into(), want.1.into())),
            "{want:?} not in {got:?}"
        );
    }
    assert!(
        !got.iter()
            .any(|(r, _)| r.starts_with("sshd-") || r == "setid-unowned"),
        "{got:?}"
    );
}

/// A permanent fault on the block of each check's input file: incomplete, the file named, no
/// finding about it, and none of the verdicts the failed read used to produce.
#[test]
fn a_check_input_that_cannot_be_read_is_an_error_not_a_verdict() {
    let img = image();
    for (file, never) in [
        ("/etc/ssh/sshd_config", "sshd-"),
        ("/etc/shadow", "sshd-"),
        ("/etc/sudoers.d/90-build", "sudo-"),
        ("/var/lib/dpkg/info/sudo.list", "setid-unowned"),
    ] {
        let t = scan(Some(block_of(img, file)));
        let errs = errors(&t);
        assert!(!t.complete, "{file}: complete despite the fault");
        assert!(
            errs.iter().any(|e| e.starts_with(&format!("{file}: "))),
            "{file}: no error names it: {errs:#?}"
        );
        let got = findings(&t);
        assert!(
            !got.iter().any(|(r, p)| p == file || r.starts_with(never)),
            "{file}: a verdict from a failed read: {got:?}"
        );
    }
}
