//! Snapshots of running instances, with the kernel as the oracle: a filesystem loop-mounted and
//! written by a workload (creates, appends, renames, deletes, files held open after deletion,
//! some fsynced) is copied at random moments (`testdata/live_snapshots.sh`), as EBS snapshots a
//! running instance: the copies' logs and journals are dirty. Each copy is read through the
//! library (the XFS log or the ext4 journal replayed in memory) and its regular files and their
//! SHA-256 must equal what the kernel shows after mounting a copy of the same snapshot (the
//! kernel replays on mount). Files deleted while open are not compared: the kernel removes
//! them at mount (orphans are another issue). Also: a key whose file's metadata is only in the
//! XFS log is found at its path, and a damaged log record leaves the on-disk tree readable with
//! the log reported.

use crate::common::{bash, run, scan_json_unchecked, workdir, xfs_db};
use amiscan::fs::probe::{Probe, probe};
use amiscan::fs::xfs::XfsFs;
use amiscan::fs::{self, EntryKind, Filesystem};
use amiscan::source::{FileSource, SharedSource};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// The kernel's view: `./path` → SHA-256 (hex).
fn truth(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let (sha, p) = l.split_once("  ").unwrap();
            (p.trim_start_matches('.').to_string(), sha.to_string())
        })
        .collect()
}

fn open(img: &Path) -> Box<dyn Filesystem> {
    let src: SharedSource = Arc::new(FileSource::open(img).unwrap());
    let Probe::Known(kind) = probe(src.as_ref()).unwrap() else {
        panic!("{}: no filesystem", img.display())
    };
    fs::open(kind, src).unwrap_or_else(|e| panic!("{}: {e}", img.display()))
}

/// amiscan's view: path → SHA-256 (hex), and the errors of the open and the walk.
fn amiscan_view(img: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let fs = open(img);
    let mut errors: Vec<String> = fs.open_problems().into_iter().map(|p| p.message).collect();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    errors.extend(
        walk.errors
            .iter()
            .map(|e| format!("{:?}: {}", e.path, e.message)),
    );
    let reader = fs.reader().unwrap();
    let mut out = BTreeMap::new();
    for f in walk.files.iter().filter(|f| f.kind == EntryKind::File) {
        let mut data = Vec::new();
        match reader.open_file(f).and_then(|mut r| {
            r.read_to_end(&mut data).map_err(|e| fs::FsError::Other {
                context: f.display_path(),
                message: e.to_string(),
                at: Default::default(),
            })
        }) {
            Ok(_) => {
                out.insert(f.display_path(), hex(&Sha256::digest(&data)));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    (out, errors)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Make `count` snapshots of `fstype` and compare each with the kernel; returns (snapshots,
/// files compared).
fn campaign(name: &str, fstype: &str, count: u32, mkfs: &[&str]) -> (u32, usize) {
    let dir = workdir("live_snapshots", name);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/live_snapshots.sh");
    run(Command::new(&script)
        .arg(&dir)
        .arg(fstype)
        .arg(count.to_string())
        .args(mkfs));
    let mut files = 0;
    let mut failures = Vec::new();
    for n in 1..=count {
        let img = dir.join(format!("snap{n}.img"));
        let kernel = truth(&dir.join(format!("snap{n}.truth")));
        let (ours, errors) = amiscan_view(&img);
        if fstype == "xfs" {
            // Every snapshot of the running filesystem has a dirty log, and it was replayed.
            let src: SharedSource = Arc::new(FileSource::open(&img).unwrap());
            let x = XfsFs::open(src).unwrap();
            let r = x.log_replay();
            eprintln!("snap{n}: {} files, log replay {r:?}", kernel.len());
            match r {
                Some(r) if r.transactions > 0 && r.buffers + r.inodes > 0 => {}
                _ => failures.push(format!("snap{n}: the log was not replayed: {r:?}")),
            }
        }
        files += kernel.len();
        // A log record torn by the copy (written while it was read) is truncated as the
        // kernel does, and reported; the files must still equal the kernel's.
        let (torn, errors): (Vec<_>, Vec<_>) = errors
            .into_iter()
            .partition(|e| e.contains("torn by the snapshot"));
        if !torn.is_empty() {
            eprintln!("snap{n}: {torn:?}");
        }
        if !errors.is_empty() {
            failures.push(format!("snap{n}: errors {errors:?}"));
        }
        let missing: Vec<_> = kernel.keys().filter(|p| !ours.contains_key(*p)).collect();
        let extra: Vec<_> = ours.keys().filter(|p| !kernel.contains_key(*p)).collect();
        let differ: Vec<_> = kernel
            .iter()
            .filter(|(p, s)| ours.get(*p).is_some_and(|o| o != *s))
            .map(|(p, _)| p)
            .collect();
        if !missing.is_empty() || !extra.is_empty() || !differ.is_empty() {
            failures.push(format!(
                "snap{n}: {} files: missing {missing:?}, extra {extra:?}, content differs {differ:?}",
                kernel.len()
            ));
        }
    }
    eprintln!(
        "{name}: {count} snapshots, {files} files, {} mismatching",
        failures.len()
    );
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    (count, files)
}

#[test]
fn xfs_snapshots_of_a_running_filesystem_equal_the_kernel_after_replay() {
    let (_, files) = campaign("xfs", "xfs", 24, &[]);
    assert!(files > 1000, "{files} files");
}

#[test]
fn ext4_snapshots_of_a_running_filesystem_equal_the_kernel_after_replay() {
    campaign("ext4", "ext4", 10, &[]);
    campaign("ext4-nocsum", "ext4", 10, &["-O", "^metadata_csum"]);
}

/// A fresh XFS (mkfs defaults) with `/etc/hostname` checkpointed to disk (the log quiesced by a
/// freeze), then an SSH key generated into `/root/.ssh` and fsynced: its directory, inode and
/// extents are only in the log when the image is copied, still mounted. Returns the copy.
fn key_only_in_the_log(dir: &Path) -> std::path::PathBuf {
    let script = format!(
        r#"set -e
d={d}; m=$d/mnt-xfs-log
mkdir -p $m
trap 'mountpoint -q $m && umount $m' EXIT
truncate -s 320M $d/img
mkfs.xfs -q -f $d/img
mount -o loop $d/img $m
mkdir -p $m/etc
echo builder > $m/etc/hostname
sync
xfs_freeze -f $m; xfs_freeze -u $m
mkdir -p $m/root/.ssh
ssh-keygen -q -t ed25519 -N '' -C '' -f $m/root/.ssh/id_ed25519
sync $m/root/.ssh/id_ed25519
cp --sparse=always $d/img $d/snap.img
"#,
        d = dir.display()
    );
    run(&mut bash(&script));
    let img = dir.join("snap.img");
    // The on-disk root directory (no log replay) has no /root.
    let ls = xfs_db(&img, false, &["ls /"]);
    assert!(ls.contains(" etc"), "{ls}");
    assert!(!ls.contains(" root"), "/root is on disk already:\n{ls}");
    img
}

fn findings(t: &serde_json::Value) -> Vec<(String, Option<String>)> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn a_key_whose_metadata_is_only_in_the_xfs_log_is_found_at_its_path() {
    let dir = workdir("live_snapshots", "key-in-log");
    let img = key_only_in_the_log(&dir);
    let (code, t) = scan_json_unchecked(&img, &[]);
    let found = findings(&t);
    assert!(
        found.contains(&(
            "openssh-private-key".into(),
            Some("/root/.ssh/id_ed25519".into())
        )),
        "{found:?}"
    );
    let vol = &t["volumes"][0];
    assert_eq!(vol["status"], "scanned", "{vol:#}");
    assert_eq!(vol["errors"].as_array().unwrap().len(), 0, "{vol:#}");
    assert_ne!(code, 0, "a private key is a finding");
}

#[test]
fn a_damaged_xfs_log_leaves_the_on_disk_tree_scanned_and_names_the_log() {
    let dir = workdir("live_snapshots", "damaged-log");
    let img = key_only_in_the_log(&dir);
    // Flip the first op header byte of every log record (after the freeze the log holds a few).
    let start: u64 = xfs_db(&img, false, &["sb 0", "p logstart"])
        .trim()
        .trim_start_matches("logstart = ")
        .parse()
        .unwrap();
    let conv = xfs_db(&img, false, &[&format!("convert fsb {start} byte")]);
    let base = u64::from_str_radix(
        conv.split_whitespace()
            .next()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let blocks: u64 = xfs_db(&img, false, &["sb 0", "p logblocks"])
        .trim()
        .trim_start_matches("logblocks = ")
        .parse()
        .unwrap();
    let mut data = std::fs::read(&img).unwrap();
    let mut flipped = 0;
    for bb in 0..blocks * 8 {
        let at = (base + bb * 512) as usize;
        if data[at..at + 4] == [0xfe, 0xed, 0xba, 0xbe] {
            data[at + 512 + 8] ^= 0x5a;
            flipped += 1;
        }
    }
    assert!(flipped > 0, "no log record found");
    std::fs::write(&img, &data).unwrap();
    let (_, t) = scan_json_unchecked(&img, &[]);
    let vol = &t["volumes"][0];
    assert_eq!(
        vol["status"], "scanned",
        "the tree is walked, not the volume raw: {vol:#}"
    );
    let errors = vol["errors"].to_string();
    assert!(errors.contains("xfs log"), "{errors}");
    assert!(errors.contains("not replayed"), "{errors}");
    // The on-disk tree was read: /etc/hostname has a path; the key is in the log's blocks.
    let src: SharedSource = Arc::new(FileSource::open(&img).unwrap());
    let x = XfsFs::open(src).unwrap();
    let walk = amiscan::scan::walk::walk(&x, 1);
    assert!(walk.files.iter().any(|f| f.path == b"/etc/hostname"));
    // The key's data block is free as far as the on-disk tree knows: `--unallocated` finds it.
    assert!(!findings(&t).iter().any(|(r, _)| r == "openssh-private-key"));
    let (_, t) = scan_json_unchecked(&img, &["--unallocated"]);
    let found = findings(&t);
    assert!(
        found
            .iter()
            .any(|(r, p)| r == "openssh-private-key" && p.is_none()),
        "the key is found raw in the free space: {found:?}"
    );
}
