//! The layouts real AMIs use, end to end through the binary: XFS roots (v5, v4, 4096-byte
//! sectors), an LVM physical volume with a two-segment linear LV holding XFS, the RHEL cloud
//! layout (BIOS boot, EFI system partition, XFS /boot, LVM root), and an XFS with a dirty log.
//! Each must give the same findings as the tree it was built from (`testdata/expected/leaky-bare.txt`).

use crate::common::{build_images, dirty_xfs_log, run, scan_json, testdata, volume};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn xfs(tree: &Path, img: &Path, size: &str, opts: &[&str]) {
    run(Command::new("python3")
        .arg(testdata().join("mkfs-xfs-tree.py"))
        .arg(tree)
        .arg(img)
        .arg(size)
        .args(opts));
}

/// Build every image once for this test binary.
fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-layouts");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        build_images(&dir);
        let stage = dir.join("staging");
        let leaky = stage.join("leaky");
        xfs(&leaky, &dir.join("leaky-xfs.img"), "64m", &[]);
        xfs(
            &leaky,
            &dir.join("leaky-xfs-4k.img"),
            "64m",
            &["-s", "size=4096"],
        );
        xfs(
            &leaky,
            &dir.join("leaky-xfs-v4.img"),
            "64m",
            &["-m", "crc=0", "-n", "ftype=0"],
        );
        let lvm = testdata().join("build-lvm-image.sh");
        run(Command::new("bash")
            .arg(&lvm)
            .arg(dir.join("lvm-xfs.img"))
            .arg(dir.join("leaky-xfs.img")));
        // RHEL cloud layout: BIOS boot, EFI system partition, XFS /boot, LVM PV with the root.
        let boot = stage.join("boot-clean");
        xfs(&boot, &dir.join("boot-xfs.img"), "64m", &[]);
        run(Command::new("bash").arg("-euc").arg(format!(
            "mkfs.vfat -C -F 32 -i 0badcafe '{esp}' 34000 >/dev/null && \
             MTOOLS_SKIP_CHECK=1 mcopy -s -i '{esp}' '{boot}'/* ::/",
            esp = dir.join("esp.img").display(),
            boot = boot.display()
        )));
        run(Command::new("bash")
            .arg(&lvm)
            .arg(dir.join("rhel.img"))
            .arg(dir.join("leaky-xfs.img"))
            .arg(format!("{}:EF00:EFI", dir.join("esp.img").display()))
            .arg(format!("{}:8300:boot", dir.join("boot-xfs.img").display())));
        dirty_copy(&dir.join("leaky-xfs.img"), &dir.join("leaky-xfs-dirty.img"));
        dir
    })
}

/// Copy an XFS image and clear the unmount flag of the record mkfs left in its log, so the log
/// reads as not cleanly unmounted.
fn dirty_copy(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap();
    dirty_xfs_log(dst);
}

/// (rule, volume, path) -> count.
fn counted(t: &Value) -> BTreeMap<(String, String, String), usize> {
    let mut m = BTreeMap::new();
    for f in t["findings"].as_array().unwrap() {
        let k = (
            f["rule"].as_str().unwrap().to_string(),
            f["volume"].as_str().unwrap().to_string(),
            f["path"].as_str().unwrap_or("-").to_string(),
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// The expected findings of the leaky tree, placed on `volume`.
fn expected_leaky(volume: &str) -> BTreeMap<(String, String, String), usize> {
    let text = std::fs::read_to_string(testdata().join("expected/leaky-bare.txt")).unwrap();
    let mut m = BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut it = line.split_whitespace();
        let (rule, _vol, path) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        *m.entry((rule.into(), volume.into(), path.into()))
            .or_insert(0) += 1;
    }
    m
}

fn assert_leaky_on(img: &str, vol: &str) -> Value {
    let (code, t) = scan_json(&images().join(img), &[]);
    assert_eq!(counted(&t), expected_leaky(vol), "{img}");
    assert_eq!(code, 1, "{img}");
    assert_eq!(t["complete"], true, "{img}: {t:#}");
    t
}

#[test]
fn xfs_v5_root_gives_the_same_findings_as_its_tree() {
    let t = assert_leaky_on("leaky-xfs.img", "disk");
    assert_eq!(volume(&t, "disk")["filesystem"], "xfs");
}

#[test]
fn xfs_with_4096_byte_sectors_gives_the_same_findings() {
    assert_leaky_on("leaky-xfs-4k.img", "disk");
}

#[test]
fn xfs_v4_gives_the_same_findings() {
    assert_leaky_on("leaky-xfs-v4.img", "disk");
}

#[test]
fn lvm_linear_volume_with_xfs_gives_the_same_findings() {
    let t = assert_leaky_on("lvm-xfs.img", "rootvg/root");
    assert_eq!(volume(&t, "p2")["status"], "container");
    assert_eq!(volume(&t, "rootvg/root")["filesystem"], "xfs");
}

#[test]
fn rhel_layout_gives_the_same_findings() {
    let t = assert_leaky_on("rhel.img", "rootvg/root");
    assert_eq!(volume(&t, "p1")["status"], "no_filesystem");
    assert_eq!(volume(&t, "p2")["filesystem"], "vfat");
    assert_eq!(volume(&t, "p3")["filesystem"], "xfs");
    assert_eq!(volume(&t, "p4")["status"], "container");
    for id in ["p2", "p3", "rootvg/root"] {
        assert_eq!(volume(&t, id)["status"], "scanned", "{id}");
        assert!(
            volume(&t, id)["files_scanned"].as_u64().unwrap() > 0,
            "{id}"
        );
    }
}

/// A log left dirty (mkfs's record no longer an unmount record) is replayed: it holds no
/// transaction, and the scan is complete, with paths.
#[test]
fn xfs_with_a_dirty_log_is_replayed_and_complete() {
    assert_leaky_on("leaky-xfs-dirty.img", "disk");
}
