//! Directory and tar targets (issue 18): one root written by the kernel into an ext4 image
//! through a loop mount, with fresh fake secrets and insecure settings planted (an OpenSSH key
//! from ssh-keygen, an AWS key pair of random characters, a shadow hash from `openssl passwd -6`,
//! `PermitRootLogin yes`, a NOPASSWD sudoers drop-in, an unowned setuid file, a dpkg-packaged
//! binary that differs from its `md5sums`, a packaged key shipped unmodified (provenance: info),
//! a hard link, a path longer than a ustar name, a sparse file, a secret inside a `.tar.gz`).
//! Scanned as the disk image, as the mounted tree copied to a directory (`cp -a`), and as
//! tarballs of it (`tar --xattrs`, GNU and pax formats, sparse, gzip, zstd, xz): the same
//! findings (rule, path, severity) everywhere, complete. Symbolic links that leave the root
//! (absolute host paths, `../..`) never read the host's files; a truncated or corrupt tar is an
//! incomplete scan with a named error, the members before the cut still scanned. And the
//! error messages for targets that are not there.

use crate::common::{scan_json, sh, workdir};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The long directory names of the path longer than a ustar name (100 bytes).
const LONG: &str = "opt/a-directory-name-long-enough-to-need-a-gnu-long-name-or-pax-path-record/\
                    and-a-second-level-that-takes-it-past-the-ustar-prefix-field-as-well";

/// Build the root once: `disk.img` (bare ext4), `dir/` (`cp -a` of the mounted tree), the
/// tarballs, and `outside/` (host files the symlink test points at).
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = workdir("targets", "fixture");
        sh(
            &format!(
                r#"
long='{LONG}'
truncate -s 96M disk.img
mkfs.ext4 -q -F disk.img
mkdir -p m
trap 'mountpoint -q m && umount m; true' EXIT
mount -o loop disk.img m
mkdir -p m/etc/ssh m/etc/sudoers.d m/root/.ssh m/root/.aws m/usr/bin m/usr/local/bin \
  m/usr/share/procps m/var/lib/dpkg/info m/srv/stage/.aws m/var/lib/data "m/$long/.aws"
printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n' > m/etc/passwd
hash=$(openssl passwd -6 "$(head -c 12 /dev/urandom | base64)")
printf 'root:%s:19700:0:99999:7:::\nalice:!:19700:0:99999:7:::\n' "$hash" > m/etc/shadow
chmod 640 m/etc/shadow
printf 'PermitRootLogin yes\n' > m/etc/ssh/sshd_config
printf 'root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n' > m/etc/sudoers
printf 'build ALL=(ALL) NOPASSWD: ALL\n' > m/etc/sudoers.d/90-build
chmod 440 m/etc/sudoers
chmod 440 m/etc/sudoers.d/90-build
ssh-keygen -q -t ed25519 -N '' -C root@build -f m/root/.ssh/id_ed25519
creds() {{
  id="AKIA$(LC_ALL=C tr -dc 'A-Z2-7' </dev/urandom | head -c 16 || true)"
  secret=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40 || true)
  printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$id" "$secret"
}}
creds > m/root/.aws/credentials
ln m/root/.aws/credentials m/root/.aws/credentials.bak
creds > "m/$long/.aws/credentials"
creds > m/srv/stage/.aws/credentials
tar -C m/srv -czf m/srv/stage.tar.gz stage
rm -r m/srv/stage
# A sparse file: text, a 6 MiB hole, a key.
head -c 8192 /dev/zero | tr '\0' 'x' > m/var/lib/data/sparse.dat
ssh-keygen -q -t ed25519 -N '' -C sparse -f k
dd if=k of=m/var/lib/data/sparse.dat bs=1M seek=6 conv=notrunc status=none
rm k k.pub
# dpkg: procps owns /usr/bin/ps (modified since) and a key it ships unmodified.
printf '#!/bin/sh\necho original ps\n' > orig-ps
printf '#!/bin/sh\necho trojaned ps\n' > m/usr/bin/ps
ssh-keygen -q -t ed25519 -N '' -C vendor -f m/usr/share/procps/test-key
rm m/usr/share/procps/test-key.pub
chmod 755 m/usr/bin/ps
printf 'Package: procps\nStatus: install ok installed\nVersion: 2:4.0.2-3\nArchitecture: amd64\n\n' \
  > m/var/lib/dpkg/status
printf '/.\n/usr\n/usr/bin\n/usr/bin/ps\n/usr/share/procps\n/usr/share/procps/test-key\n' \
  > m/var/lib/dpkg/info/procps.list
printf '%s  usr/bin/ps\n%s  usr/share/procps/test-key\n' "$(md5sum < orig-ps | cut -c1-32)" \
  "$(md5sum < m/usr/share/procps/test-key | cut -c1-32)" > m/var/lib/dpkg/info/procps.md5sums
rm orig-ps
printf '#!/bin/sh\nexec /bin/sh -p\n' > m/usr/local/bin/helper
chmod 4755 m/usr/local/bin/helper
chown -R 1000:1000 "m/$long"
ln -s /etc/shadow m/etc/shadow.link
mkfifo m/srv/fifo
sync
cp -a m dir
tar --xattrs --sort=name -C m -cf root.tar .
tar --xattrs --sort=name --format=posix -C m -cf root-pax.tar .
tar --sort=name --format=gnu -C m -cf root-gnu.tar .
tar --sort=name --format=gnu --sparse -C m -cf root-sparse.tar .
tar --xattrs --sort=name --sparse --format=posix -C m -cf root-sparse-pax.tar .
umount m
e2fsck -fn disk.img >/dev/null
gzip -k root.tar
zstd -q -k root.tar
xz -k -T1 root.tar
"#
            ),
            &d,
        );
        d
    })
}

/// (rule, path, severity) of every finding.
fn findings(t: &Value) -> BTreeSet<(String, String, String)> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap_or("-").to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn disk() -> &'static (i32, Value) {
    static DISK: OnceLock<(i32, Value)> = OnceLock::new();
    DISK.get_or_init(|| scan_json(&fixture().join("disk.img"), &[]))
}

fn has(set: &BTreeSet<(String, String, String)>, rule: &str, path: &str, sev: &str) -> bool {
    set.contains(&(rule.to_string(), path.to_string(), sev.to_string()))
}

/// The disk image finds every plant: the baseline the other targets are held to.
#[test]
fn the_disk_image_finds_every_plant() {
    let (code, t) = disk();
    assert_eq!(*code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let got = findings(t);
    let long_creds = format!("/{LONG}/.aws/credentials");
    for (rule, path, sev) in [
        ("openssh-private-key", "/root/.ssh/id_ed25519", "critical"),
        ("aws-access-key-pair", "/root/.aws/credentials", "critical"),
        (
            "aws-access-key-pair",
            "/root/.aws/credentials.bak",
            "critical",
        ),
        ("aws-access-key-pair", long_creds.as_str(), "critical"),
        (
            "aws-access-key-pair",
            "/srv/stage.tar.gz!stage/.aws/credentials",
            "critical",
        ),
        (
            "openssh-private-key",
            "/var/lib/data/sparse.dat",
            "critical",
        ),
        ("shadow-password-hash", "/etc/shadow", "critical"),
        ("sshd-permit-root-login", "/etc/ssh/sshd_config", "critical"),
        ("dpkg-modified-file", "/usr/bin/ps", "high"),
        ("setid-unowned", "/usr/local/bin/helper", "high"),
        ("openssh-private-key", "/usr/share/procps/test-key", "info"),
    ] {
        assert!(
            has(&got, rule, path, sev),
            "{rule} {path} {sev} missing: {got:#?}"
        );
    }
    assert!(
        got.iter()
            .any(|(r, p, _)| r.starts_with("sudo") && p.starts_with("/etc/sudoers.d/90-build")),
        "{got:#?}"
    );
}

/// Scan `name` of the fixture and demand the disk image's findings and exit code, complete.
fn same_as_disk(name: &str, filesystem: &str) -> Value {
    let (disk_code, disk_t) = disk();
    let want = findings(disk_t);
    assert!(want.len() >= 12, "{want:#?}");
    let (code, t) = scan_json(&fixture().join(name), &[]);
    assert_eq!(t["complete"], true, "{name}: {:#}", t["errors"]);
    let vols = t["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 1, "{t:#}");
    assert_eq!(vols[0]["filesystem"], filesystem, "{t:#}");
    assert!(
        vols[0]["errors"].as_array().is_none_or(Vec::is_empty),
        "{t:#}"
    );
    let got = findings(&t);
    assert_eq!(
        got,
        want,
        "{name}: only here {:#?}, only on the disk {:#?}",
        got.difference(&want).collect::<Vec<_>>(),
        want.difference(&got).collect::<Vec<_>>()
    );
    assert_eq!(code, *disk_code);
    t
}

#[test]
fn a_directory_copy_finds_what_the_disk_image_holds() {
    let t = same_as_disk("dir", "directory");
    let text = t.to_string();
    assert!(!text.contains("is a directory"), "{text}");
}

#[test]
fn a_tarball_finds_what_the_disk_image_holds() {
    same_as_disk("root.tar", "tar");
}

#[test]
fn a_pax_tarball_finds_what_the_disk_image_holds() {
    same_as_disk("root-pax.tar", "tar");
}

/// The type flags of every header of a tar, and whether a pax header holds `needle`.
fn headers(name: &str, needle: &[u8]) -> (BTreeSet<u8>, bool) {
    let b = std::fs::read(fixture().join(name)).unwrap();
    let (mut types, mut found, mut at) = (BTreeSet::new(), false, 0usize);
    while at + 512 <= b.len() && b[at..at + 512].iter().any(|&x| x != 0) {
        let h = &b[at..at + 512];
        let size = std::str::from_utf8(&h[124..135])
            .unwrap()
            .trim_matches(['\0', ' ']);
        let size = usize::from_str_radix(if size.is_empty() { "0" } else { size }, 8).unwrap();
        let data = &b[at + 512..(at + 512 + size).min(b.len())];
        found |= h[156] == b'x' && data.windows(needle.len()).any(|w| w == needle);
        types.insert(h[156]);
        // An old GNU sparse header's extension blocks: none here (4 segments fit the header).
        at += 512 + size.next_multiple_of(512);
    }
    (types, found)
}

#[test]
fn a_gnu_tarball_with_long_names_finds_what_the_disk_image_holds() {
    let (types, _) = headers("root-gnu.tar", b"");
    assert!(types.contains(&b'L') && types.contains(&b'1'), "{types:?}");
    same_as_disk("root-gnu.tar", "tar");
}

#[test]
fn sparse_tarballs_find_what_the_disk_image_holds() {
    let (types, _) = headers("root-sparse.tar", b"");
    assert!(types.contains(&b'S'), "old GNU sparse headers: {types:?}");
    same_as_disk("root-sparse.tar", "tar");
    let (_, pax1) = headers("root-sparse-pax.tar", b"GNU.sparse.major=1");
    assert!(pax1, "pax 1.0 sparse headers");
    same_as_disk("root-sparse-pax.tar", "tar");
}

#[test]
fn compressed_tarballs_find_what_the_disk_image_holds() {
    for (name, kind) in [
        ("root.tar.gz", "gzip"),
        ("root.tar.zst", "zstd"),
        ("root.tar.xz", "xz"),
    ] {
        let t = same_as_disk(name, "tar");
        let note = t["volumes"][0]["note"].as_str().unwrap_or_default();
        assert!(
            note.starts_with(&format!("{kind}-compressed tar")),
            "{note}"
        );
    }
}

/// `--quick` on a directory and a tarball reads what it reads on the disk image.
#[test]
fn quick_scans_of_a_directory_and_a_tarball_match_the_disk_image() {
    let (_, disk_t) = scan_json(&fixture().join("disk.img"), &["--quick"]);
    let want = findings(&disk_t);
    assert!(
        has(&want, "shadow-password-hash", "/etc/shadow", "critical"),
        "{want:#?}"
    );
    for name in ["dir", "root.tar.zst"] {
        let (_, t) = scan_json(&fixture().join(name), &["--quick"]);
        assert_eq!(t["mode"], "quick", "{t:#}");
        assert_eq!(findings(&t), want, "{name}");
    }
}

/// A root whose links point out of it, at host files full of findings: an absolute host path,
/// a `../..` chain, a directory link. None of them is read: what the checks resolve, they
/// resolve inside the root, as a chroot would.
#[test]
fn links_out_of_the_root_never_read_the_host() {
    let d = workdir("targets", "escape");
    sh(
        r#"
mkdir -p outside/ssh outside/sudoers.d root/etc root/root
out=$(pwd)/outside
hash=$(openssl passwd -6 "$(head -c 12 /dev/urandom | base64)")
printf 'root:%s:19700:0:99999:7:::\n' "$hash" > outside/shadow
printf 'PermitRootLogin yes\n' > outside/ssh/sshd_config
printf 'evil ALL=(ALL) NOPASSWD: ALL\n' > outside/sudoers.d/evil
ssh-keygen -q -t ed25519 -N '' -C outside -f outside/ssh/id_ed25519
printf 'root:x:0:0:root:/root:/bin/bash\n' > root/etc/passwd
ln -s "$out/shadow" root/etc/shadow
ln -s ../../outside/ssh root/etc/ssh
ln -s "$out/sudoers.d" root/etc/sudoers.d
ln -s "$out/ssh" root/root/.ssh
ln -s /etc/shadow root/etc/evil
tar -C root -cf root.tar .
"#,
        &d,
    );
    // The links themselves are fine; the host's files are findings when scanned directly.
    let (_, host) = scan_json(&d.join("outside"), &[]);
    assert!(!findings(&host).is_empty(), "{host:#}");
    for target in ["root", "root.tar"] {
        let (code, t) = scan_json(&d.join(target), &[]);
        let got = findings(&t);
        assert!(got.is_empty(), "{target}: read the host: {got:#?}");
        assert_eq!(code, 0, "{target}: {t:#}");
        assert_eq!(t["complete"], true, "{target}: {t:#}");
    }
}

/// A tarball cut short: incomplete, the error says where it ends, and the members before the
/// cut are scanned (their findings reported); a cut gzip stream says so too.
#[test]
fn a_truncated_tarball_is_incomplete_and_keeps_what_it_read() {
    let d = workdir("targets", "truncated");
    let tar = fixture().join("root.tar");
    // Cut inside the data of the last file member (sorted by name: /var/lib/dpkg/status).
    let listing = crate::common::run(Command::new("tar").args(["-R", "-tvf"]).arg(&tar));
    let block: u64 = listing
        .lines()
        .filter(|l| l.contains("./var/lib/dpkg/status"))
        .find_map(|l| l.strip_prefix("block ")?.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{listing}"));
    let cut = block * 512 + 512 + 20;
    let bytes = std::fs::read(&tar).unwrap();
    std::fs::write(d.join("cut.tar"), &bytes[..usize::try_from(cut).unwrap()]).unwrap();
    let (code, t) = scan_json(&d.join("cut.tar"), &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    let errors = t["volumes"][0]["errors"].to_string();
    assert!(
        errors.contains(&format!(
            "the archive ends at byte {cut} inside the data of /var/lib/dpkg/status"
        )),
        "{errors}"
    );
    let got = findings(&t);
    assert!(
        has(
            &got,
            "openssh-private-key",
            "/root/.ssh/id_ed25519",
            "critical"
        ),
        "{got:#?}"
    );
    assert!(
        has(&got, "shadow-password-hash", "/etc/shadow", "critical"),
        "{got:#?}"
    );
    assert_eq!(
        code, 1,
        "findings decide the exit code before incompleteness"
    );

    // A gzip stream cut in the middle.
    let gz = std::fs::read(fixture().join("root.tar.gz")).unwrap();
    std::fs::write(d.join("cut.tar.gz"), &gz[..gz.len() / 2]).unwrap();
    let (_, t) = scan_json(&d.join("cut.tar.gz"), &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    let errors = t["errors"].to_string();
    assert!(errors.contains("gzip stream of"), "{errors}");

    // Without findings, the exit code says incomplete (3); a corrupt header is named.
    sh(
        r#"
mkdir -p clean/etc && printf 'hello\n' > clean/etc/motd && printf 'x\n' > clean/etc/zz
tar --sort=name -C clean -cf clean.tar .
head -c 2048 clean.tar > clean-cut.tar
cp clean.tar corrupt.tar && printf 'Z' | dd of=corrupt.tar bs=1 seek=2053 conv=notrunc status=none
"#,
        &d,
    );
    let (code, t) = scan_json(&d.join("clean-cut.tar"), &[]);
    assert_eq!((code, &t["complete"]), (3, &Value::Bool(false)), "{t:#}");
    let (code, t) = scan_json(&d.join("corrupt.tar"), &[]);
    assert_eq!(code, 3, "{t:#}");
    assert!(
        t["volumes"][0]["errors"]
            .to_string()
            .contains("corrupt header at byte 2048"),
        "{t:#}"
    );
}

/// `amiscan scan TARGET` with TARGET not there: one clean line, the OS error said once.
fn scan_error(target: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--no-progress", target])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_target_says_so_once() {
    let d = workdir("targets", "errors");
    let missing = d.join("no-such-image.img");
    let (code, err) = scan_error(missing.to_str().unwrap());
    assert_eq!(code, 2);
    assert_eq!(
        err.trim_end(),
        format!(
            "amiscan: error: cannot open {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn a_malformed_ami_or_snapshot_id_is_named_as_such() {
    for (target, what) in [
        ("ami-123", "AMI"),
        ("ami-0123456789abcdefg", "AMI"),
        ("snap-12", "snapshot"),
    ] {
        let (code, err) = scan_error(target);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!("{target} is not a valid {what} id")),
            "{target}: {err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
}
