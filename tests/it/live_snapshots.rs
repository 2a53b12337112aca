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

use crate::common::{run, scan_json_unchecked, workdir};
use amiscan::fs::xfs::XfsFs;
use amiscan::fs::probe::{Probe, probe};
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
    errors.extend(walk.errors.iter().map(|e| format!("{:?}: {}", e.path, e.message)));
    let reader = fs.reader().unwrap();
    let mut out = BTreeMap::new();
    for f in walk.files.iter().filter(|f| f.kind == EntryKind::File) {
        let mut data = Vec::new();
        match reader.open_file(f).and_then(|mut r| {
            r.read_to_end(&mut data).map_err(|e| fs::FsError::Other {
                context: f.display_path(),
                message: e.to_string(),
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
    eprintln!("{name}: {count} snapshots, {files} files, {} mismatching", failures.len());
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
