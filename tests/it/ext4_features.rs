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

/// The tree every image gets (bash, `$m` the mount point).
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
"#;

/// Make `DIR/img` with `mkfs` (size `size`), fill it through a loop mount with [`FILL`];
/// the kernel's file count.
fn build(dir: &Path, mkfs: &str, size: &str) -> u64 {
    build_with(dir, mkfs, size, "")
}

/// [`build`], running `extra` (bash, `$m` the mount point) after [`FILL`].
fn build_with(dir: &Path, mkfs: &str, size: &str, extra: &str) -> u64 {
    let script = format!(
        r#"d={d}; m=$d/m
mkdir -p $m
trap 'mountpoint -q $m && umount $m' EXIT
truncate -s {size} $d/img
{mkfs} $d/img >/dev/null
mount -o loop $d/img $m
{FILL}
{extra}
sync
find $m -type f | wc -l
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
    if warning.is_empty() {
        assert!(
            v["warnings"].as_array().is_none_or(Vec::is_empty),
            "{name}: {t:#}"
        );
    } else {
        assert!(
            v["warnings"].to_string().contains(warning),
            "{name}: no warning {warning:?}: {t:#}"
        );
    }
}

/// A primary superblock zeroed (`dd` over bytes 1024..2048) with the backups intact, on 1 KiB
/// and 4 KiB blocks: `e2fsck -b` recovers it, and amiscan reads every file through the backup
/// of group 1 with a warning naming it; with that one zeroed too, through the next backup group
/// that has one. With every backup zeroed nothing says where the filesystem is, and the scan
/// is raw and incomplete, never silently complete.
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
        // The backup of group 1 gone as well: the next backup group's copy is used (`e2fsck -b`
        // takes it when told where), when the filesystem has one. The 4 KiB one has three
        // groups: group 1's was its only backup.
        let zero = |from: &str, to: &str, blocks: &[u64]| {
            let dds: Vec<String> = blocks
                .iter()
                .map(|b| {
                    format!(
                        "dd if=/dev/zero of={to} bs={bs} seek={b} count=1 conv=notrunc status=none"
                    )
                })
                .collect();
            sh(
                &format!("cp --sparse=always {from} {to} && {}", dds.join(" && ")),
                dir,
            );
        };
        if bs == 1024 {
            zero("sb.img", "g3.img", &[backup]);
            let fsck = sh("e2fsck -fn -b 24577 -B 1024 g3.img 2>&1 || true", dir);
            assert!(!fsck.contains("Bad magic number"), "{fsck}");
            assert_like_oracle(
                dir,
                "g3.img",
                &want,
                files,
                "backup superblock of group 3 (block 24577 of 1024 bytes)",
            );
        }
        // Every backup gone: nothing says where the filesystem is.
        let groups: &[u64] = if bs == 1024 {
            &[8193, 24577, 40961, 57345]
        } else {
            &[32768]
        };
        zero("sb.img", "none.img", groups);
        let (code, t) = scan_json(&dir.join("none.img"), &[]);
        assert_eq!(t["complete"], false, "{mkfs}: {t:#}");
        assert_eq!(volume(&t, "disk")["status"], "scanned_raw", "{mkfs}: {t:#}");
        assert_ne!(code, 0, "{mkfs}: {t:#}");
        assert_raw_findings(&dir.join("none.img"), &t);
    }
}

/// What the raw fallback must find on an image holding [`FILL`]: every content rule that needs
/// no path (the three keys, and the labelled AWS secret of the history, a text-only rule that
/// never ran on raw bytes before) at an offset without a path, none of the path-based checks
/// (shadow, shell history); and the text report's summary line names the raw volume and says
/// that path-based checks could not run there.
fn assert_raw_findings(img: &Path, t: &Value) {
    let found = rule_paths(t, "(raw)");
    let count = |rule: &str| {
        found
            .iter()
            .filter(|(r, p)| r == rule && p == "(raw)")
            .count()
    };
    let keys = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "openssh-private-key" && f["path"].is_null())
        .count();
    assert_eq!(keys, 3, "{t:#}");
    assert_eq!(count("aws-secret-access-key"), 1, "{t:#}");
    assert!(
        found
            .iter()
            .all(|(r, p)| p == "(raw)" && r != "shell-history"),
        "{found:?}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--no-progress", "--color", "never"])
        .arg(img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        summary.contains(
            "scanned raw: disk (content signatures only; path-based checks could not run there)"
        ),
        "{summary}"
    );
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

/// The kernel's count of files, the findings and the bytes scanned of the same tree written
/// to a plain ext4 and to one with `bigalloc` (clusters of 16 KiB over 1 KiB blocks, and of
/// 64 KiB over 4 KiB blocks): equal, complete, no warning. `--unallocated` reads the cluster
/// bitmaps: a key deleted before unmounting is found in the free space, the live keys only at
/// their paths.
#[test]
fn ext4_bigalloc_reads_like_plain_ext4() {
    let scan = |dir: &Path| {
        let (code, t) = scan_json(&dir.join("img"), &[]);
        assert_eq!((code, &t["complete"]), (1, &Value::Bool(true)), "{t:#}");
        let v = volume(&t, "disk");
        (
            planted(&t),
            v["files_scanned"].clone(),
            v["bytes_scanned"].clone(),
        )
    };
    let p = tempfile::tempdir().unwrap();
    let files = build(p.path(), "mkfs.ext4 -q -F -b 4096", "300M");
    let plain = scan(p.path());
    assert_eq!(plain.1, files);
    let gone =
        "ssh-keygen -q -t ed25519 -N '' -C '' -f $m/gone; sync; rm $m/gone $m/gone.pub; sync";
    for mkfs in [
        "mkfs.ext4 -q -F -b 1024 -O bigalloc -C 16384",
        "mkfs.ext4 -q -F -b 4096 -O bigalloc -C 65536",
    ] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        assert_eq!(build_with(dir, mkfs, "300M", gone), files, "{mkfs}");
        let feats = sh("dumpe2fs -h img 2>/dev/null | grep -i features", dir);
        assert!(feats.contains("bigalloc"), "{feats}");
        assert_eq!(scan(dir), plain, "{mkfs}");
        assert_like_oracle(dir, "img", &plain.0, files, "");
        let (_, t) = scan_json(&dir.join("img"), &["--unallocated"]);
        assert_eq!(t["complete"], true, "{mkfs}: {t:#}");
        let keys: Vec<String> = rule_paths(&t, "(raw)")
            .into_iter()
            .filter(|(r, _)| r == "openssh-private-key")
            .map(|(_, p)| p)
            .collect();
        assert_eq!(
            keys.iter().filter(|p| *p == "(raw)").count(),
            1,
            "{mkfs}: {t:#}"
        );
        assert_eq!(keys.len(), 4, "{mkfs}: {t:#}");
    }
}

/// `shared_blocks` (valid, read-only: identical blocks merged, as `e2fsdroid -s` makes them;
/// `mke2fs` cannot create it): a file whose second half maps the same blocks as its first, and
/// a second file mapping the first's blocks, edited with `debugfs -w` on a filesystem the kernel
/// wrote, the feature set, `e2fsck -fn` clean. Read as before the edit: same findings, files,
/// bytes; complete.
#[test]
fn ext4_shared_blocks_reads_like_the_unshared_tree() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // 16 KiB (4 blocks) holding a fresh key, twice: a file of 8 blocks whose halves are equal.
    let dup = r#"mkdir -p $m/srv/dup; k=$(mktemp -u); ssh-keygen -q -t ed25519 -N '' -C '' -f $k
(cat $k; head -c $((16384 - $(stat -c %s $k))) /dev/zero | tr '\0' 'x') > $k.chunk
cat $k.chunk $k.chunk > $m/srv/dup/a; cp $m/srv/dup/a $m/srv/dup/b; rm -f $k $k.pub $k.chunk"#;
    let files = build_with(dir, "mkfs.ext4 -q -F -b 4096", "64M", dup);
    let (code, t) = scan_json(&dir.join("img"), &[]);
    assert_eq!((code, &t["complete"]), (1, &Value::Bool(true)), "{t:#}");
    let want = planted(&t);
    assert!(want.contains(&("openssh-private-key".into(), "/srv/dup/b".into())));
    let bytes = volume(&t, "disk")["bytes_scanned"].clone();
    // The first extent's physical start of a file (one extent of 8 blocks each).
    let start = |f: &str| -> u64 {
        let out = sh(&format!("debugfs -R 'ex {f}' img 2>/dev/null"), dir);
        let line = out.lines().nth(1).unwrap_or_else(|| panic!("{out}"));
        let tok: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(tok.last(), Some(&"8"), "{out}");
        tok[7].parse().unwrap_or_else(|_| panic!("{out}"))
    };
    let (a, b) = (start("/srv/dup/a"), start("/srv/dup/b"));
    sh("cp --sparse=always img shared.img", dir);
    // a: two extents (0..4 and 4..8) on a's first 4 blocks; b: on a's 8 blocks; b's freed.
    let edits = format!(
        "set_inode_field /srv/dup/a block[0] 0x0002F30A\n\
         set_inode_field /srv/dup/a block[4] 4\n\
         set_inode_field /srv/dup/a block[6] 4\n\
         set_inode_field /srv/dup/a block[7] 4\n\
         set_inode_field /srv/dup/a block[8] {a}\n\
         set_inode_field /srv/dup/b block[5] {a}\n\
         freeb {b} 8\nfeature shared_blocks\n"
    );
    sh(
        &format!(
            "printf '{edits}' | debugfs -w -f - shared.img >/dev/null 2>&1; e2fsck -fy shared.img >/dev/null 2>&1 || true; e2fsck -fn shared.img"
        ),
        dir,
    );
    let ex = sh("debugfs -R 'ex /srv/dup/a' shared.img 2>/dev/null", dir);
    assert_eq!(ex.matches(&format!(" {a} - ")).count(), 2, "{ex}");
    let content = sh(
        "debugfs -R 'cat /srv/dup/b' shared.img 2>/dev/null | sha256sum; debugfs -R 'cat /srv/dup/b' img 2>/dev/null | sha256sum",
        dir,
    );
    let l: Vec<&str> = content.lines().collect();
    assert_eq!(l[0], l[1], "b's content unchanged");
    assert_like_oracle(dir, "shared.img", &want, files, "");
    let (_, t) = scan_json(&dir.join("shared.img"), &[]);
    assert_eq!(volume(&t, "disk")["bytes_scanned"], bytes, "{t:#}");
}

/// An ext4 whose journal is on another device (`mke2fs -O journal_dev`, `mkfs.ext4 -J
/// device=`), filled by the kernel. Unmounted cleanly: every file, and a warning naming the
/// external journal. Copied while mounted, after more writes: the tree as it is on disk (what an
/// earlier mount checkpointed is all there), and the scan says it could not replay the journal
/// the volume does not hold.
#[test]
fn ext4_external_journal_is_named_and_the_tree_read_without_it() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let script = format!(
        r#"d={d}; m=$d/m; cd $d
mkdir -p $m
trap 'mountpoint -q $m && umount $m; [ -n "$fl" ] && losetup -d $fl; [ -n "$jl" ] && losetup -d $jl' EXIT
truncate -s 8M j.img && mke2fs -q -O journal_dev -b 4096 j.img
jl=$(losetup -f --show j.img)
truncate -s 96M img && mkfs.ext4 -q -F -b 4096 -J device=$jl img
fl=$(losetup -f --show img)
mount -o journal_path=$jl $fl $m
{FILL}
sync
umount $m
cp --sparse=always img clean.img
mount -o journal_path=$jl $fl $m
echo later > $m/etc/later
sync
cp --sparse=always img live.img
umount $m
find_count=$(mount -o ro,journal_path=$jl $fl $m && find $m -type f | wc -l; umount $m)
echo $find_count
"#,
        d = dir.display()
    );
    let out = run(&mut bash(&script));
    let files: u64 = out.trim().lines().last().unwrap().trim().parse().unwrap();
    // The clean copy: every file but the later one.
    let (code, t) = scan_json(&dir.join("clean.img"), &[]);
    assert_eq!((code, &t["complete"]), (1, &Value::Bool(true)), "{t:#}");
    let v = volume(&t, "disk");
    assert_eq!(v["files_scanned"], files - 1, "{t:#}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("ext4 journal: external (UUID "),
        "{t:#}"
    );
    let want = planted(&t);
    // The live copy: needs recovery, from a journal that is not here.
    let dumpe2fs = sh("dumpe2fs -h live.img 2>/dev/null", dir);
    assert!(dumpe2fs.contains("needs_recovery"), "{dumpe2fs}");
    let (code, t) = scan_json(&dir.join("live.img"), &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    assert_eq!(
        code, 1,
        "findings at or above --fail-on win over incompleteness: {t:#}"
    );
    let v = volume(&t, "disk");
    assert_eq!(v["status"], "scanned", "{t:#}");
    assert!(
        v["errors"]
            .to_string()
            .contains("its journal is external (UUID"),
        "{t:#}"
    );
    assert_eq!(planted(&t), want);
}

/// An ext4 with `fast_commit`, copied while mounted right after files were written and
/// `fsync`ed: their inodes and names are only in the fast-commit area (`debugfs logdump` shows
/// them). amiscan replays the full commits, does not replay the fast ones, and says exactly
/// which: the transaction, the inodes, the names; the fast-commit blocks and the extents they
/// add are scanned raw, so the keys written are still found (without a path). `e2fsck`, which
/// replays fast commits, then gives an image where they are found at their paths.
#[test]
fn ext4_fast_commits_not_replayed_are_named_and_their_blocks_scanned() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let script = format!(
        r#"d={d}; m=$d/m; cd $d
mkdir -p $m
trap 'mountpoint -q $m && umount $m' EXIT
truncate -s 128M img && mkfs.ext4 -q -F -O fast_commit img
mount -o loop img $m
{FILL}
sync
umount $m
mount -o loop img $m
mkdir -p $m/opt/keys
sync
for i in 0 1 2; do ssh-keygen -q -t ed25519 -N '' -C '' -f $d/k$i; done
python3 - "$m/opt/keys" "$d" <<'PY'
import os, sys
for i in range(3):
    data = open(os.path.join(sys.argv[2], f"k{{i}}"), "rb").read()
    with open(os.path.join(sys.argv[1], f"fc-key{{i}}"), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
PY
cp --sparse=always img live.img
umount $m
"#,
        d = dir.display()
    );
    run(&mut bash(&script));
    let logdump = sh("debugfs -R logdump live.img 2>&1", dir);
    assert!(
        logdump.contains("Fast Commit Area") && logdump.contains("name \"fc-key0"),
        "{logdump}"
    );
    let (code, t) = scan_json(&dir.join("live.img"), &[]);
    assert_eq!((code, &t["complete"]), (1, &Value::Bool(false)), "{t:#}");
    let errors = volume(&t, "disk")["errors"].to_string();
    assert!(
        errors.contains("fast commit(s) of transaction")
            && errors.contains("fc-key0")
            && errors.contains("fc-key2"),
        "{errors}"
    );
    planted(&t);
    let raw_keys = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "openssh-private-key" && f["path"].is_null())
        .count();
    assert_eq!(raw_keys, 3, "the fsynced keys, from their extents: {t:#}");
    // e2fsck replays the fast commits: the keys then have paths.
    sh(
        "cp --sparse=always live.img fixed.img && e2fsck -fy fixed.img >/dev/null 2>&1 || true",
        dir,
    );
    let (_, t) = scan_json(&dir.join("fixed.img"), &[]);
    assert_eq!(t["complete"], true, "{t:#}");
    let found = planted(&t);
    for i in 0..3 {
        assert!(
            found.contains(&("openssh-private-key".into(), format!("/opt/keys/fc-key{i}"))),
            "{found:?}"
        );
    }
}
