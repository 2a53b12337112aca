//! Damaged ext4 metadata is caught by its `metadata_csum` checksums: one byte changed in an
//! inode or in a directory block makes that entry (or directory) an error naming it, the scan
//! incomplete (exit 3), and every other file is still scanned.

use crate::common::{rule_paths, scan_json, sh};
use serde_json::Value;
use std::path::Path;

/// An image of a small tree: a leaky history in /root, a sudoers drop-in in /etc/sudoers.d.
fn image(dir: &Path) {
    sh(
        "mkdir -p tree/root tree/etc/sudoers.d tree/srv && \
         printf 'mysql -u root -pHunter2Hunter2\\nexit\\n' > tree/root/.bash_history && \
         printf '@includedir /etc/sudoers.d\\n' > tree/etc/sudoers && \
         printf 'bob ALL=(ALL) NOPASSWD: ALL\\n' > tree/etc/sudoers.d/90-bob && \
         for i in $(seq 1 50); do echo $i > tree/srv/f$i; done && \
         mke2fs -q -t ext4 -b 4096 -O metadata_csum -d tree -F fs.img 16M",
        dir,
    );
}

/// Flip one byte at `block * 4096 + offset`.
fn flip(dir: &Path, block: u64, offset: u64) {
    let img = dir.join("fs.img");
    let mut data = std::fs::read(&img).unwrap();
    let at = usize::try_from(block * 4096 + offset).unwrap();
    data[at] ^= 0x40;
    std::fs::write(&img, data).unwrap();
}

fn scan(dir: &Path) -> (i32, Value) {
    scan_json(&dir.join("fs.img"), &["--fail-on", "critical"])
}

fn rules(t: &Value) -> Vec<(String, String)> {
    rule_paths(t, "").into_iter().collect()
}

fn errors(t: &Value) -> String {
    t["volumes"][0]["errors"].to_string()
}

#[test]
fn intact_image_is_complete() {
    let d = tempfile::tempdir().unwrap();
    image(d.path());
    let (code, t) = scan(d.path());
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["complete"], true);
    assert!(rules(&t).contains(&("sudo-nopasswd".into(), "/etc/sudoers.d/90-bob".into())));
}

#[test]
fn a_damaged_inode_is_an_error_and_the_rest_is_scanned() {
    let d = tempfile::tempdir().unwrap();
    image(d.path());
    // "Inode N is part of block group 0\n\tlocated at block B, offset 0xO"
    let imap = sh(
        "debugfs -R 'imap /etc/sudoers.d/90-bob' fs.img 2>/dev/null",
        d.path(),
    );
    let block: u64 = imap
        .split("located at block ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{imap}"));
    let offset = imap
        .split("offset 0x")
        .nth(1)
        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
        .unwrap_or_else(|| panic!("{imap}"));
    flip(d.path(), block, offset + 2); // the owner's uid
    let (code, t) = scan(d.path());
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["complete"], false);
    let e = errors(&t);
    assert!(
        e.contains("checksum mismatch") && e.contains("ext4 inode"),
        "{e}"
    );
    // The damaged file is not judged; the history next door still is.
    let r = rules(&t);
    assert!(
        !r.iter().any(|(_, p)| p == "/etc/sudoers.d/90-bob"),
        "{r:?}"
    );
    assert!(r.iter().any(|(_, p)| p == "/root/.bash_history"), "{r:?}");
}

#[test]
fn a_damaged_directory_block_is_an_error_and_the_rest_is_scanned() {
    let d = tempfile::tempdir().unwrap();
    image(d.path());
    let blocks = sh("debugfs -R 'blocks /srv' fs.img 2>/dev/null", d.path());
    let block: u64 = blocks
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{blocks}"));
    flip(d.path(), block, 40); // inside an entry's name
    let (code, t) = scan(d.path());
    assert_eq!(code, 3, "{t:#}");
    let e = errors(&t);
    assert!(e.contains("checksum mismatch") && e.contains("/srv"), "{e}");
    let r = rules(&t);
    assert!(
        r.contains(&("sudo-nopasswd".into(), "/etc/sudoers.d/90-bob".into())),
        "{r:?}"
    );
}
