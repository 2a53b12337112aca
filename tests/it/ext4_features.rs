//! ext4 that the kernel or `e2fsck` reads in full, read in full (issue 19): a primary superblock
//! zeroed or a group descriptor damaged while the backups are intact (opened from the backup, as
//! `e2fsck -b` does: a warning, not incompleteness). Every image holds the same tree, written by
//! the kernel through a loop mount (fresh SSH keys, a shell history with an AWS secret, a shadow
//! file, a few hundred small files and a large one): the oracle is the scan of the same image
//! before the damage, which must find every planted secret at its path and scan as many files
//! as the kernel's `find -type f` counted.

use crate::common::{bash, rule_paths, run, scan_json, sh, volume};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The tree every image gets (bash, `$m` the mount point); prints the kernel's count of
/// regular files.
const FILL: &str = r#"
for p in root/.ssh/id_ed25519 home/alice/.ssh/id_ed25519 srv/deep/a/b/c/deploy_key; do
  mkdir -p $(dirname $m/$p); ssh-keygen -q -t ed25519 -N '' -C '' -f $m/$p
done
secret=$(head -c 30 /dev/urandom | base64 | tr -d '+/=' | head -c 40)
while [ ${#secret} -lt 40 ]; do secret="${secret}Q"; done
printf 'ls\nexport AWS_SECRET_ACCESS_KEY=%s\n' "$secret" > $m/home/alice/.bash_history
mkdir -p $m/etc
printf 'root:%s:19000:0:99999:7:::\n' "$(openssl passwd -6 -salt $(openssl rand -hex 4) hunter2)" > $m/etc/shadow
mkdir -p $m/var/many
for i in $(seq 1 300); do echo "file $i" > $m/var/many/f$i; done
head -c 3000000 /dev/urandom > $m/srv/big.bin
sync
find $m -type f | wc -l
"#;

/// Make `DIR/img` with `mkfs` (size `size`), fill it through a loop mount with [`FILL`];
/// the kernel's file count.
fn build(dir: &Path, mkfs: &str, size: &str) -> u64 {
    let script = format!(
        r#"d={d}; m=$d/m
mkdir -p $m
trap 'mountpoint -q $m && umount $m' EXIT
truncate -s {size} $d/img
{mkfs} $d/img >/dev/null
mount -o loop $d/img $m
{FILL}
umount $m
"#,
        d = dir.display()
    );
    let out = run(&mut bash(&script));
    out.trim()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no file count in {out}"))
}

/// What must be found: the three keys, the history and its AWS secret, the shadow hash.
fn planted(t: &Value) -> BTreeSet<(String, String)> {
    let found = rule_paths(t, "");
    for path in [
        "/root/.ssh/id_ed25519",
        "/home/alice/.ssh/id_ed25519",
        "/srv/deep/a/b/c/deploy_key",
    ] {
        assert!(
            found.contains(&("openssh-private-key".into(), path.into())),
            "{path}: {found:?}"
        );
    }
    for path in ["/home/alice/.bash_history", "/etc/shadow"] {
        assert!(found.iter().any(|(_, p)| p == path), "{path}: {found:?}");
    }
    found
}

/// The findings and file count of the undamaged `DIR/img` (asserting it is clean of warnings).
fn oracle(dir: &Path, files: u64) -> BTreeSet<(String, String)> {
    let (code, t) = scan_json(&dir.join("img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(volume(&t, "disk")["files_scanned"], files, "{t:#}");
    let warnings = &volume(&t, "disk")["warnings"];
    assert!(warnings.as_array().is_none_or(Vec::is_empty), "{t:#}");
    planted(&t)
}

/// Scan `DIR/name`: complete, the oracle's findings and file count, and a warning containing
/// `warning`.
fn assert_like_oracle(
    dir: &Path,
    name: &str,
    want: &BTreeSet<(String, String)>,
    files: u64,
    warning: &str,
) {
    let (code, t) = scan_json(&dir.join(name), &[]);
    assert_eq!(code, 1, "{name}: {t:#}");
    assert_eq!(t["complete"], true, "{name}: {t:#}");
    let v = volume(&t, "disk");
    assert_eq!(v["filesystem"], "ext4", "{name}: {t:#}");
    assert_eq!(v["files_scanned"], files, "{name}: {t:#}");
    assert_eq!(&planted(&t), want, "{name}");
    assert!(
        v["warnings"].to_string().contains(warning),
        "{name}: no warning {warning:?}: {t:#}"
    );
}

/// A primary superblock zeroed (`dd` over bytes 1024..2048) with the backups intact, on 1 KiB
/// and 4 KiB blocks: `e2fsck -b` recovers it, and amiscan reads every file through the backup
/// of group 1 with a warning naming it. With the backup of group 1 zeroed too nothing says
/// where the filesystem is, and the scan is raw and incomplete, never silently complete.
#[test]
fn ext4_zeroed_primary_superblock_is_read_from_the_backup() {
    for (mkfs, size, backup) in [
        ("mkfs.ext4 -q -F -b 1024", "64M", 8193u64),
        ("mkfs.ext4 -q -F -b 4096", "300M", 32768),
    ] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let files = build(dir, mkfs, size);
        let want = oracle(dir, files);
        let bs = if backup == 8193 { 1024 } else { 4096 };
        sh(
            "cp --sparse=always img sb.img && \
             dd if=/dev/zero of=sb.img bs=1024 seek=1 count=1 conv=notrunc status=none",
            dir,
        );
        // e2fsck agrees: no primary superblock, a backup to use.
        let fsck = sh("e2fsck -fn sb.img 2>&1 || true", dir);
        assert!(fsck.contains("trying backup blocks"), "{fsck}");
        assert_like_oracle(
            dir,
            "sb.img",
            &want,
            files,
            &format!("backup superblock of group 1 (block {backup} of {bs} bytes)"),
        );
        // And the backup of group 1 gone as well.
        sh(
            &format!(
                "cp --sparse=always sb.img none.img && \
                 dd if=/dev/zero of=none.img bs={bs} seek={backup} count=1 conv=notrunc status=none"
            ),
            dir,
        );
        let (code, t) = scan_json(&dir.join("none.img"), &[]);
        assert_eq!(t["complete"], false, "{mkfs}: {t:#}");
        assert_eq!(volume(&t, "disk")["status"], "scanned_raw", "{mkfs}: {t:#}");
        assert_ne!(code, 0, "{mkfs}: {t:#}");
    }
}

/// Group 0's descriptor damaged, its backups intact: its checksum zeroed (`set_bg 0 checksum
/// 0`), or its inode table moved outside the filesystem with a checksum that matches (`set_bg 0
/// inode_table`, then `checksum calc`). Both are read from the backup descriptor table, every
/// file found, with a warning. Checked with and without `metadata_csum` (then `gdt_csum`).
#[test]
fn ext4_damaged_group_descriptor_is_read_from_the_backup() {
    for mkfs in [
        "mkfs.ext4 -q -F -b 1024",
        "mkfs.ext4 -q -F -b 1024 -O ^metadata_csum,uninit_bg",
    ] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let files = build(dir, mkfs, "64M");
        let want = oracle(dir, files);
        for (name, edits, warning) in [
            ("csum.img", &["set_bg 0 checksum 0"][..], "checksum 0x0000"),
            (
                "itable.img",
                &["set_bg 0 inode_table 99999999", "set_bg 0 checksum calc"][..],
                "inode table at 99999999",
            ),
        ] {
            sh(&format!("cp --sparse=always img {name}"), dir);
            for e in edits {
                sh(&format!("debugfs -w -R '{e}' {name} 2>/dev/null"), dir);
            }
            let fsck = sh(&format!("e2fsck -fn {name} 2>&1 || true"), dir);
            assert!(
                fsck.contains("descriptor") || fsck.contains("Group descriptors"),
                "{mkfs} {name}: e2fsck sees no damage: {fsck}"
            );
            assert_like_oracle(dir, name, &want, files, warning);
            assert!(
                {
                    let (_, t) = scan_json(&dir.join(name), &[]);
                    volume(&t, "disk")["warnings"]
                        .to_string()
                        .contains("backup descriptor table")
                },
                "{mkfs} {name}"
            );
        }
    }
}
