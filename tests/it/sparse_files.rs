//! Files whose size runs far past their data (issue 19): a 1 TiB sparse file the kernel wrote on
//! ext4, XFS and btrfs (and ntfs-3g on NTFS, and GNU tar in a sparse member) with a fresh private
//! key in its middle, and a one-block ext4 file whose
//! size `debugfs -w` set to 4 TiB (a damaged or hostile inode). Each key is found at its path,
//! the scan is complete, and the bytes given to the matchers are the data plus a few runs of
//! zeros, not terabytes: long holes are skipped, not read. The scan runs under `timeout`, so
//! reading the holes would fail the test rather than hang it.

use crate::common::{sh, workdir};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const TIB: u64 = 1 << 40;

/// `timeout 300 amiscan scan --format json IMG`: exit code and report target.
fn scan_bounded(img: &Path) -> (i32, Value) {
    let out = Command::new("timeout")
        .arg("300")
        .arg(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--format", "json", "--no-progress"])
        .arg(img)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code,
        124,
        "the scan of {} did not end in 300 s",
        img.display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}); stderr: {stderr}"));
    (code, v["targets"][0].clone())
}

/// The key is found at `path`, the scan is complete, and fewer than 64 MiB were scanned.
fn key_found_without_reading_holes(img: &Path, path: &str) {
    let (code, t) = scan_bounded(img);
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(code, 1, "{t:#}");
    let found = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "openssh-private-key" && f["path"] == path);
    assert!(found, "no key at {path}: {:#}", t["findings"]);
    let bytes = t["volumes"][0]["bytes_scanned"].as_u64().unwrap();
    assert!(bytes < 64 << 20, "{bytes} bytes scanned");
}

/// A `mkfs_cmd` filesystem (mounted with `mount_cmd`) of `mb` MiB of `mb` MiB in `dir`/vol.img whose /srv/huge.bin is a
/// 1 TiB sparse file with a fresh OpenSSH key at 512 GiB, written by the kernel (by ntfs-3g
/// for NTFS).
fn sparse_volume(dir: &Path, mkfs_cmd: &str, mb: u64) {
    sparse_volume_with(dir, mkfs_cmd, "mount -o loop", mb)
}

fn sparse_volume_with(dir: &Path, mkfs_cmd: &str, mount_cmd: &str, mb: u64) {
    sh(
        &format!(
            r#"truncate -s {mb}M vol.img
{mkfs_cmd} vol.img >/dev/null 2>&1
ssh-keygen -q -t ed25519 -N '' -C sparse@test -f key
mkdir -p m
{mount_cmd} vol.img m
trap 'umount m' EXIT
mkdir -p m/srv
dd if=key of=m/srv/huge.bin bs=1M seek=$((512 * 1024)) conv=notrunc status=none
truncate -s {TIB} m/srv/huge.bin
sync
test "$(stat -c %s m/srv/huge.bin)" = {TIB}
"#
        ),
        dir,
    );
}

#[test]
fn a_terabyte_sparse_file_on_ext4_is_read_without_its_holes() {
    let dir = workdir("sparse", "ext4");
    sparse_volume(&dir, "mkfs.ext4 -q -F -b 4096", 64);
    key_found_without_reading_holes(&dir.join("vol.img"), "/srv/huge.bin");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_terabyte_sparse_file_on_xfs_is_read_without_its_holes() {
    let dir = workdir("sparse", "xfs");
    sparse_volume(&dir, "mkfs.xfs -q -f", 320);
    key_found_without_reading_holes(&dir.join("vol.img"), "/srv/huge.bin");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_terabyte_sparse_file_on_btrfs_is_read_without_its_holes() {
    let dir = workdir("sparse", "btrfs");
    sparse_volume(&dir, "mkfs.btrfs -q -f", 256);
    key_found_without_reading_holes(&dir.join("vol.img"), "/srv/huge.bin");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_terabyte_sparse_file_on_ntfs_is_read_without_its_holes() {
    let dir = workdir("sparse", "ntfs");
    sparse_volume_with(&dir, "mkntfs -q -F -f", "mount -t ntfs-3g", 64);
    key_found_without_reading_holes(&dir.join("vol.img"), "/srv/huge.bin");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tarball (`tar --sparse`, pax format) whose member is a 1 TiB sparse file with a key at
/// 512 GiB: the member's sparse map says where its data is.
#[test]
fn a_terabyte_sparse_member_of_a_tarball_is_read_without_its_holes() {
    let dir = workdir("sparse", "tar");
    sh(
        &format!(
            r#"ssh-keygen -q -t ed25519 -N '' -C tar@test -f key
mkdir -p root/srv
dd if=key of=root/srv/huge.bin bs=1M seek=$((512 * 1024)) conv=notrunc status=none
truncate -s {TIB} root/srv/huge.bin
tar --sparse --format=pax -C root -cf root.tar .
rm -rf root
"#
        ),
        &dir,
    );
    key_found_without_reading_holes(&dir.join("root.tar"), "/srv/huge.bin");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One block of data under an inode whose size field says 4 TiB: the damage the ext4 campaign
/// (tests/it/ext4_damage.rs) makes with `set_inode_field`, which took minutes to read as zeros.
#[test]
fn an_ext4_inode_whose_size_was_set_to_terabytes_is_read_as_its_one_block() {
    let dir = workdir("sparse", "ext4-size");
    sh(
        &format!(
            r#"truncate -s 64M vol.img
mkfs.ext4 -q -F -b 4096 vol.img
ssh-keygen -q -t ed25519 -N '' -C size@test -f key
mkdir -p m
mount -o loop vol.img m
trap 'umount m' EXIT
mkdir -p m/srv
cp key m/srv/small.key
sync
umount m
trap - EXIT
debugfs -w -R "set_inode_field /srv/small.key size {size}" vol.img 2>/dev/null
test "$(debugfs -R 'stat /srv/small.key' vol.img 2>/dev/null | grep -o 'Size: [0-9]*' | head -n 1)" = "Size: {size}"
"#,
            size = 4 * TIB
        ),
        &dir,
    );
    key_found_without_reading_holes(&dir.join("vol.img"), "/srv/small.key");
    let _ = std::fs::remove_dir_all(&dir);
}
