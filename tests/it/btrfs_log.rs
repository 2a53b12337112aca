//! btrfs log tree (issue 20): files written and fsynced after the last commit, the image
//! copied while the filesystem is mounted (a snapshot of a running instance). The kernel
//! replays the log when it mounts a copy read-write (the oracle: the fsynced files are there;
//! a read-only loop device refuses the replay); amiscan
//! does not replay it, says so naming the log root (the scan is incomplete), and reads each
//! logged file from the log's own extents, so the fsynced keys are found, inline and not.

use crate::common::{scan_json, sh, workdir};

#[test]
fn btrfs_log_tree_files_fsynced_after_the_commit_are_read_and_the_scan_says_incomplete() {
    let dir = workdir("btrfs", "log");
    let out = sh(
        r#"
ssh-keygen -q -t ed25519 -N '' -C plant1 -f key1
ssh-keygen -q -t ed25519 -N '' -C plant2 -f key2
{ seq 1 60000; cat key1; } > big.src
truncate -s 200M vol.img
mkfs.btrfs -q -f vol.img
mkdir -p m k
mount -o loop,commit=300 vol.img m
trap 'mountpoint -q m && umount m; mountpoint -q k && umount k' EXIT
echo committed > m/base.txt
sync
python3 - <<'PY'
import os
for src, dst in (("big.src", "m/app.conf"), ("key2", "m/small.key")):
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, open(src, "rb").read())
    os.fsync(fd)
    os.close(fd)
PY
cp --sparse=always vol.img snap.img
umount m
echo "log_root $(btrfs inspect-internal dump-super snap.img | awk '$1 == "log_root" {print $2}')"
cp --sparse=always snap.img oracle.img
mount -o loop oracle.img k
cmp k/app.conf big.src && cmp k/small.key key2 && echo "kernel replayed"
"#,
        &dir,
    );
    let root: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("log_root "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(root > 0, "no log tree in the copy: {out}");
    assert!(out.contains("kernel replayed"), "{out}");
    let (code, t) = scan_json(&dir.join("snap.img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], false);
    let text = t.to_string();
    assert!(
        text.contains(&format!("btrfs log tree at logical {root} not replayed")),
        "{text}"
    );
    // The logged extents' checksums are in the log tree: found there, and they pass.
    assert!(!text.contains("no checksum item"), "{text}");
    assert!(!text.contains("checksum mismatch"), "{text}");
    let keys: Vec<&str> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "openssh-private-key")
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for name in ["app.conf", "small.key"] {
        assert!(
            keys.iter()
                .any(|p| p.starts_with("<btrfs log tree, subvolume 5, inode ")
                    && p.ends_with(&format!(">/{name}"))),
            "{name} not found in the log: {keys:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
