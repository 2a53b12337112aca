//! LVM2, FAT (EFI system partition) and the raw fallback, on images built with the real tools:
//! `pvcreate`/`vgcreate`/`lvcreate` (activation disabled, on a loop device), `mkfs.vfat` + `mcopy`,
//! `mke2fs -O inline_data` (a feature ext4-view refuses).

use crate::common::{scan_json, sh, testdata, volume, workdir};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn findings(t: &Value) -> Vec<(String, String, Option<String>)> {
    let mut v: Vec<_> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["volume"].as_str().unwrap().to_string(),
                f["path"].as_str().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

/// A data tree with one passphrase-protected PEM key (`pem-encrypted-private-key`, medium), as an
/// ext4 image of `size`.
fn data_ext4(dir: &Path, size: &str) -> PathBuf {
    let tree = testdata().join("trees/data");
    sh(
        &format!(
            "cp -r '{}' tree && chmod -R u+rwX tree && E2FSPROGS_FAKE_TIME=1704067200 \
             mke2fs -q -t ext4 -d tree -F fs.img {size}",
            tree.display()
        ),
        dir,
    );
    dir.join("fs.img")
}

#[test]
fn lvm_linear_volume_in_two_segments_is_assembled_and_scanned() {
    let dir = workdir("volumes", "lvm");
    let fs = data_ext4(&dir, "20M");
    sh(
        &format!(
            "bash '{}' lvm.img '{}'",
            testdata().join("build-lvm-image.sh").display(),
            fs.display()
        ),
        &dir,
    );
    let (code, t) = scan_json(&dir.join("lvm.img"), &["--fail-on", "medium"]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(volume(&t, "p2")["status"], "container");
    assert_eq!(volume(&t, "p2")["filesystem"], "LVM2_member");
    let root = volume(&t, "rootvg/root");
    assert_eq!(root["filesystem"], "ext4");
    assert_eq!(root["status"], "scanned");
    assert_eq!(root["size"], 20 * 1024 * 1024);
    assert_eq!(
        findings(&t),
        vec![(
            "pem-encrypted-private-key".into(),
            "rootvg/root".into(),
            Some("/secrets/id_rsa".into())
        )]
    );
    // Nothing at or above the default --fail-on high, and the scan was complete: exit 0.
    assert_eq!(scan_json(&dir.join("lvm.img"), &[]).0, 0);
}

#[test]
fn efi_system_partition_fat_is_scanned() {
    let dir = workdir("volumes", "esp");
    let fs = data_ext4(&dir, "8M");
    let tree = testdata().join("trees/data");
    sh(
        &format!(
            "mkfs.vfat -C -F 32 -i 12345678 esp.img 34000 >/dev/null
             MTOOLS_SKIP_CHECK=1 mcopy -s -i esp.img '{tree}'/* ::/
             truncate -s 64M disk.img
             sgdisk -n1:2048:+1M -t1:EF02 -n2:0:+34000K -t2:EF00 -n3:0:0 -t3:8300 disk.img >/dev/null
             s2=$(sgdisk -i2 disk.img | awk '/First sector/ {{print $3}}')
             s3=$(sgdisk -i3 disk.img | awk '/First sector/ {{print $3}}')
             dd if=esp.img of=disk.img bs=512 seek=$s2 conv=notrunc status=none
             dd if='{fs}' of=disk.img bs=512 seek=$s3 conv=notrunc status=none",
            tree = tree.display(),
            fs = fs.display()
        ),
        &dir,
    );
    let (code, t) = scan_json(&dir.join("disk.img"), &[]);
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let esp = volume(&t, "p2");
    assert_eq!(esp["filesystem"], "vfat");
    assert_eq!(esp["status"], "scanned");
    assert!(esp["files_scanned"].as_u64().unwrap() >= 3, "{esp:#}");
    assert_eq!(volume(&t, "p1")["status"], "no_filesystem");
    assert_eq!(
        findings(&t),
        vec![
            (
                "pem-encrypted-private-key".into(),
                "p2".into(),
                Some("/secrets/id_rsa".into())
            ),
            (
                "pem-encrypted-private-key".into(),
                "p3".into(),
                Some("/secrets/id_rsa".into())
            ),
        ]
    );
}

#[test]
fn ext4_with_inline_data_is_read_natively() {
    let dir = workdir("volumes", "inline");
    let tree = testdata().join("trees/data");
    // Small files and directories live inside their inodes: a 28-byte sudoers drop-in fits
    // i_block, a ~100-byte history spills into the inode's system.data attribute, and the
    // directories holding them are inline too.
    sh(
        &format!(
            "cp -r '{}' tree && mkdir -p tree/etc/sudoers.d tree/root && \
             printf '@includedir /etc/sudoers.d\\n' > tree/etc/sudoers && \
             printf 'bob ALL=(ALL) NOPASSWD: ALL\\n' > tree/etc/sudoers.d/90-bob && \
             printf 'ls\\ncd /srv\\nsudo systemctl restart app\\nvi /etc/app.conf\\nexit\\nhistory\\nexit\\n' > tree/root/.bash_history && \
             mke2fs -q -t ext4 -O inline_data -I 256 -d tree -F fs.img 8M && \
             debugfs -R 'stat /etc/sudoers.d/90-bob' fs.img 2>/dev/null | grep 'Size of inline data' >/dev/null && \
             debugfs -R 'stat /root/.bash_history' fs.img 2>/dev/null | grep 'Size of inline data' >/dev/null",
            tree.display()
        ),
        &dir,
    );
    let (code, t) = scan_json(&dir.join("fs.img"), &["--fail-on", "critical"]);
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let v = volume(&t, "disk");
    assert_eq!(v["status"], "scanned", "{v:#}");
    assert_eq!(v["filesystem"], "ext4");
    let f = findings(&t);
    for want in [
        ("pem-encrypted-private-key", "/secrets/id_rsa"),
        ("sudo-nopasswd", "/etc/sudoers.d/90-bob"),
        ("shell-history", "/root/.bash_history"),
    ] {
        assert!(
            f.contains(&(want.0.into(), "disk".into(), Some(want.1.into()))),
            "{want:?} missing from {f:?}"
        );
    }
}

#[test]
fn an_unknown_format_is_scanned_raw_and_incomplete() {
    let dir = workdir("volumes", "unknown");
    // A partition full of non-filesystem data with a key in the middle.
    let key = std::fs::read(testdata().join("trees/data/secrets/id_rsa")).unwrap();
    let mut img = vec![0x5au8; 3 * 1024 * 1024];
    let at = 2 * 1024 * 1024 - 100; // straddles a 4 KiB granule and the 2 MiB mark
    img[at..at + key.len()].copy_from_slice(&key);
    std::fs::write(dir.join("blob.img"), &img).unwrap();
    let (code, t) = scan_json(&dir.join("blob.img"), &["--fail-on", "info"]);
    assert_eq!(code, 1);
    assert_eq!(t["complete"], false);
    assert_eq!(volume(&t, "disk")["status"], "scanned_raw");
    assert_eq!(t["findings"][0]["rule"], "pem-encrypted-private-key");
    assert_eq!(t["findings"][0]["offset"], at as u64);
    assert!(t["findings"][0]["path"].is_null());
}
