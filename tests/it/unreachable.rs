//! Files a walk from the root cannot reach (issue 19), on ext4 and XFS images whose files the
//! kernel wrote through a loop mount: an in-use inode that no directory names (its entry removed
//! with `debugfs -w unlink`, or on XFS with `xfs_db -x` editing the directory), a file deleted
//! while a process held it open (on the orphan list of a snapshot copied while mounted, or
//! put there with `debugfs -w`), and an ext4 directory whose extent carries the unwritten flag
//! (`debugfs -w` `replace_node --uninit`). Each holds a freshly generated SSH key that must be
//! reported at the path that says how it was found; a clean image gains nothing from the sweep
//! (files scanned = the kernel's `find -type f`, no `<...>` path).

use crate::common::{bash, rule_paths, run, scan_json, sh, volume};
use serde_json::Value;
use std::path::Path;

const KEY: &str = "openssh-private-key";

/// Make `img` (`mkfs` command `mkfs`, `size`), mount it at `DIR/m`, run `fill` (bash, `$m` the
/// mount point) and unmount. `snapshot`: instead of unmounting first, `sync` and copy the image
/// to `snap.img` while `fill` still holds what it opened (fd 3), then unmount.
fn build(dir: &Path, mkfs: &str, size: &str, fill: &str) {
    let script = format!(
        r#"d={d}; m=$d/m
mkdir -p $m
trap 'mountpoint -q $m && umount $m' EXIT
truncate -s {size} $d/img
{mkfs} $d/img
mount -o loop $d/img $m
{fill}
umount $m
"#,
        d = dir.display()
    );
    run(&mut bash(&script));
}

/// Generate a key with ssh-keygen at `$m/PATH` (fresh, unencrypted).
fn keygen(path: &str) -> String {
    format!("mkdir -p $(dirname $m/{path}); ssh-keygen -q -t ed25519 -N '' -C '' -f $m/{path}")
}

/// Keys `t` reports, by path.
fn key_paths(t: &Value) -> Vec<String> {
    rule_paths(t, "")
        .into_iter()
        .filter(|(r, _)| r == KEY)
        .map(|(_, p)| p)
        .collect()
}

/// The inode number `debugfs` gives for `path` of ext4 image `img`.
fn ext4_ino(dir: &Path, path: &str) -> u64 {
    let out = sh(&format!("debugfs -R 'stat {path}' img 2>/dev/null"), dir);
    out.split("Inode: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

fn warnings(t: &Value) -> String {
    t["volumes"][0]["warnings"].to_string()
}

/// A file and a directory whose entries were removed (`debugfs -w unlink`, as e2fsck would
/// then move them to lost+found): the file's key at `<unlinked inode N>`, the directory's at
/// `<unlinked inode D>/name`; the scan is complete (every in-use inode was read).
#[test]
fn ext4_unlinked_file_and_directory_are_scanned() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(
        dir,
        "mkfs.ext4 -q -F",
        "64M",
        &format!(
            "{}; {}; echo hello > $m/srv/lost/readme; echo hi > $m/srv/keep",
            keygen("srv/keys/id_deploy"),
            keygen("srv/lost/id_other")
        ),
    );
    let file = ext4_ino(dir, "/srv/keys/id_deploy");
    let lost = ext4_ino(dir, "/srv/lost");
    sh(
        "debugfs -w -R 'unlink /srv/keys/id_deploy' img && debugfs -w -R 'unlink /srv/lost' img",
        dir,
    );
    // e2fsck agrees: both are unattached.
    let fsck = sh("e2fsck -fn img 2>&1 || true", dir);
    assert!(
        fsck.contains(&format!("Unattached inode {file}"))
            && fsck.contains(&format!("Unconnected directory inode {lost}")),
        "{fsck}"
    );
    let (code, t) = scan_json(&dir.join("img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(
        key_paths(&t),
        [
            format!("<unlinked inode {file}>"),
            format!("<unlinked inode {lost}>/id_other")
        ],
        "{t:#}"
    );
    // id_deploy.pub, keep, id_other, id_other.pub, readme; id_deploy unreached.
    assert_eq!(volume(&t, "disk")["files_scanned"], 6, "{t:#}");
}

/// A key deleted while a process held it open, in a snapshot copied while mounted: the inode is
/// on the orphan list (`s_last_orphan`), reported as `<orphan inode N>`.
#[test]
fn ext4_orphan_of_a_live_snapshot_is_scanned() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(
        dir,
        "mkfs.ext4 -q -F",
        "64M",
        &format!(
            "{}; echo x > $m/tmp/other; sync
exec 3<$m/tmp/k; rm $m/tmp/k $m/tmp/k.pub; sync
cp --sparse=always $d/img $d/snap.img; exec 3<&-",
            keygen("tmp/k")
        ),
    );
    let stats = sh("debugfs -R stats snap.img 2>/dev/null", dir);
    let orphan: u64 = stats
        .split("First orphan inode:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no orphan in the snapshot: {stats}"));
    let (code, t) = scan_json(&dir.join("snap.img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(key_paths(&t), [format!("<orphan inode {orphan}>")], "{t:#}");
    // The image after a clean unmount has no orphan and no key.
    let (code, t) = scan_json(&dir.join("img"), &[]);
    assert_eq!((code, key_paths(&t).len()), (0, 0), "{t:#}");
}

/// An orphan chain of two inodes written with `debugfs -w` (links_count 0, the next orphan in
/// `i_dtime`, the head in `s_last_orphan`), their entries removed: both keys are reported as
/// orphans, not as unlinked inodes.
#[test]
fn ext4_orphan_chain_set_with_debugfs_is_followed() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(
        dir,
        "mkfs.ext4 -q -F",
        "64M",
        &format!("{}; {}", keygen("var/tmp/a"), keygen("var/tmp/b")),
    );
    let a = ext4_ino(dir, "/var/tmp/a");
    let b = ext4_ino(dir, "/var/tmp/b");
    sh(
        &format!(
            "cat > cmds <<EOF
unlink /var/tmp/a
unlink /var/tmp/b
sif <{a}> links_count 0
sif <{b}> links_count 0
sif <{a}> dtime {b}
sif <{b}> dtime 0
ssv last_orphan {a}
EOF
debugfs -w -f cmds img >/dev/null 2>&1"
        ),
        dir,
    );
    let (code, t) = scan_json(&dir.join("img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(
        key_paths(&t),
        [format!("<orphan inode {a}>"), format!("<orphan inode {b}>")],
        "{t:#}"
    );
}

/// A directory whose only extent is flagged unwritten (`debugfs` extent editing, the same
/// blocks): its key is at its real path, the volume carries a warning naming the directory
/// inode, and the scan is complete (nothing was lost).
#[test]
fn ext4_directory_with_an_unwritten_extent_is_read_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(
        dir,
        "mkfs.ext4 -q -F",
        "64M",
        &keygen("home/alice/.ssh/id_ed25519"),
    );
    let ino = ext4_ino(dir, "/home/alice/.ssh");
    let ex = sh("debugfs -R 'ex /home/alice/.ssh' img 2>/dev/null", dir);
    // " 0/ 0   1/  1     0 -     0  4387 -  4387      1 ": the physical start is field 7
    let fields: Vec<&str> = ex.lines().nth(1).unwrap().split_whitespace().collect();
    let pblk = fields[7];
    sh(
        &format!(
            "cat > cmds <<EOF
extent_open /home/alice/.ssh
root
replace_node --uninit 0 1 {pblk}
extent_close
EOF
debugfs -w -f cmds img >/dev/null 2>&1"
        ),
        dir,
    );
    let ex = sh("debugfs -R 'ex /home/alice/.ssh' img 2>/dev/null", dir);
    assert!(ex.contains("Uninit"), "{ex}");
    let (code, t) = scan_json(&dir.join("img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(key_paths(&t), ["/home/alice/.ssh/id_ed25519"], "{t:#}");
    let w = warnings(&t);
    assert!(
        w.contains(&format!("ext4 directory inode {ino}")) && w.contains("unwritten"),
        "{t:#}"
    );
}

/// XFS: a key whose directory entry `xfs_db -x` removed (the shortform directory's first
/// entry pointed at its second's inode, the count and size cut to one entry); xfs_repair calls
/// the key's inode disconnected, amiscan reports it at `<unlinked inode N>`.
#[test]
fn xfs_unlinked_file_is_scanned() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(dir, "mkfs.xfs -q -f", "300M", &keygen("srv/keys/id_x"));
    let img = dir.join("img");
    let ls = crate::common::xfs_db(&img, false, &["path /srv/keys", "ls"]);
    let ino_of = |name: &str| -> u64 {
        ls.lines()
            .find(|l| l.split_whitespace().nth(5) == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{ls}"))
    };
    let (key, public) = (ino_of("id_x"), ino_of("id_x.pub"));
    let list = crate::common::xfs_db(
        &img,
        false,
        &["path /srv/keys", "print u3.sfdir3.list[0].name"],
    );
    assert!(list.contains("\"id_x\""), "{list}");
    // Header (count, i8count, 4-byte parent) and one entry (namelen, offset, "id_x", ftype, ino).
    crate::common::xfs_db(
        &img,
        true,
        &[
            "path /srv/keys",
            &format!("write u3.sfdir3.list[0].inumber.i4 {public}"),
            "write u3.sfdir3.hdr.count 1",
            "write core.size 18",
        ],
    );
    let repair = sh("xfs_repair -n img 2>&1 || true", dir);
    assert!(
        repair.contains(&format!("disconnected inode {key}")),
        "{repair}"
    );
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(key_paths(&t), [format!("<unlinked inode {key}>")], "{t:#}");
}

/// XFS: a key deleted while held open, in a snapshot copied while mounted (the unlinked list
/// is in the log, replayed in memory): `<orphan inode N>`.
#[test]
fn xfs_orphan_of_a_live_snapshot_is_scanned() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    build(
        dir,
        "mkfs.xfs -q -f",
        "300M",
        &format!(
            "{}; echo x > $m/tmp/other; sync
ls -i $m/tmp/k | cut -d' ' -f1 > $d/ino
exec 3<$m/tmp/k; rm $m/tmp/k $m/tmp/k.pub; sync
cp --sparse=always $d/img $d/snap.img; exec 3<&-",
            keygen("tmp/k")
        ),
    );
    let ino = std::fs::read_to_string(dir.join("ino")).unwrap();
    let (code, t) = scan_json(&dir.join("snap.img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(
        key_paths(&t),
        [format!("<orphan inode {}>", ino.trim())],
        "{t:#}"
    );
}

/// Clean ext4 and XFS images of a tree with nested directories, hard links, symlinks, a FIFO
/// and an empty file: the sweep adds no file, no finding and no warning; files scanned equal
/// the kernel's `find -type f` (a hard-linked file counted once per name, as the walk does).
#[test]
fn a_clean_image_gains_nothing_from_the_sweep() {
    for (mkfs, size) in [("mkfs.ext4 -q -F", "64M"), ("mkfs.xfs -q -f", "300M")] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        build(
            dir,
            mkfs,
            size,
            &format!(
                "{}
for i in $(seq 1 40); do mkdir -p $m/a/b$i/c; echo $i > $m/a/b$i/c/f; echo $i > $m/a/b$i/g; done
ln $m/a/b1/g $m/a/hard; ln -s /etc/passwd $m/a/link; mkfifo $m/a/fifo; : > $m/a/empty
mkdir -p $m/lots; for i in $(seq 1 300); do echo $i > $m/lots/n$i; done; rm $m/lots/n1*
find $m -type f | wc -l > $d/count",
                keygen("root/.ssh/id_ed25519")
            ),
        );
        let count: u64 = std::fs::read_to_string(dir.join("count"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (code, t) = scan_json(&dir.join("img"), &[]);
        assert_eq!(code, 1, "{mkfs}: {t:#}");
        assert_eq!(t["complete"], true, "{mkfs}: {t:#}");
        assert_eq!(volume(&t, "disk")["files_scanned"], count, "{mkfs}: {t:#}");
        assert_eq!(key_paths(&t), ["/root/.ssh/id_ed25519"], "{mkfs}: {t:#}");
        assert!(
            rule_paths(&t, "").iter().all(|(_, p)| !p.starts_with('<')),
            "{mkfs}: {t:#}"
        );
        assert_eq!(warnings(&t), "null", "{mkfs}: {t:#}");
    }
}
