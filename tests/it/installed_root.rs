//! An installed system, end to end: Debian bookworm installed by `mmdebstrap` (openssh-server,
//! sudo, cloud-init, python3, git, the cloud kernel), copied with leaks planted in its biggest
//! directories through the kernel into ext4 (4 KiB and 1 KiB blocks), XFS and a GPT cloud-image
//! disk (BIOS boot, ESP, ext4 root) by `testdata/install-debian-root.sh`. For each image:
//!
//! - the scan is complete, and the regular files amiscan walks on each volume are exactly the
//!   ones `find -type f` lists on the mounted filesystem (the kernel is the oracle; for the ESP,
//!   which a container's kernel may not mount, `mdir` of mtools), as many as the report says it
//!   scanned;
//! - every planted leak is found at its path by its rule;
//! - the stock system gives nothing at medium or above but its SSH host keys and sshd's password
//!   authentication left at OpenSSH's default, and the package checks (unowned setid files,
//!   files differing from their package) report nothing.
//!
//! The installation is made once into `$CARGO_TARGET_TMPDIR/installed-root` and reused; the
//! images and plants are made anew each run. Needs root, loop devices, network access to the
//! Debian archive and the tools `.ci/run` installs; a missing one fails the test.

use crate::common::{rule_paths, run, scan_json, testdata};
use amiscan::fs::probe::{Probe, probe};
use amiscan::scan::walk::walk;
use amiscan::source::{FileSource, SharedSource};
use amiscan::volume::{Role, discover};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// The directory holding the images, their file lists and `plants.tsv`, built once per run.
pub(crate) fn images() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let work = tmp.join("installed-root-images");
        let _ = std::fs::remove_dir_all(&work);
        run(Command::new("bash")
            .arg(testdata().join("install-debian-root.sh"))
            .arg(tmp.join("installed-root"))
            .arg(&work));
        work
    })
}

/// The lines of `dir/name`.
fn lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The regular files amiscan's filesystem layer walks on each volume holding a filesystem
/// (volume id -> paths, sorted), and the errors of the walk.
fn walked(img: &Path) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let src: SharedSource = Arc::new(FileSource::open(img).unwrap());
    let found = discover(src);
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    let mut files = BTreeMap::new();
    let mut errors = vec![];
    for v in found.volumes {
        if v.role == Role::BiosBoot {
            continue;
        }
        let Probe::Known(kind) = probe(v.source.as_ref()).unwrap() else {
            continue;
        };
        let fs = amiscan::fs::open(kind, v.source.clone())
            .unwrap_or_else(|e| panic!("{} volume {}: {e}", img.display(), v.id));
        let w = walk(fs.as_ref(), 2);
        errors.extend(w.errors.iter().map(|e| format!("{}: {e:?}", v.id)));
        files.insert(
            v.id.clone(),
            w.files.iter().map(|e| e.display_path()).collect(),
        );
    }
    (files, errors)
}

/// What a publisher of the stock system must act on: the (rule, path) of every finding at
/// medium or above, the planted paths left out.
fn stock_at_least_medium(t: &Value, planted: &BTreeSet<String>) -> BTreeSet<(String, String)> {
    crate::common::serious(t)
        .into_iter()
        .filter(|(_, p)| !planted.contains(p))
        .collect()
}

/// Scan image `name` and check it against the kernel's view: `volumes` pairs each volume id
/// with the file list `install-debian-root.sh` wrote for it; `root` is the root's volume id.
fn check(name: &str, volumes: &[(&str, &str)]) {
    let dir = images();
    let img = dir.join(format!("{name}.img"));

    // The files walked, volume by volume, against `find -type f` on the mounted filesystem.
    let (walked, walk_errors) = walked(&img);
    let ids: BTreeSet<&str> = walked.keys().map(String::as_str).collect();
    let want_ids: BTreeSet<&str> = volumes.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, want_ids, "volumes holding a filesystem");
    for (id, list) in volumes {
        let truth: BTreeSet<String> = lines(dir, list).into_iter().collect();
        let seen = &walked[*id];
        eprintln!(
            "{name} {id}: amiscan walked {} regular files, {list} lists {}",
            seen.len(),
            truth.len()
        );
        let missing: Vec<&String> = truth.difference(seen).collect();
        let extra: Vec<&String> = seen.difference(&truth).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name} {id}: {} files not walked (first: {:?}), {} not on the mounted filesystem \
             (first: {:?}); walk errors: {walk_errors:#?}",
            missing.len(),
            missing.iter().take(10).collect::<Vec<_>>(),
            extra.len(),
            extra.iter().take(10).collect::<Vec<_>>()
        );
    }
    assert!(walk_errors.is_empty(), "{walk_errors:#?}");

    // The scan: complete, every file scanned.
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(t["complete"], true, "{name}: {:#}", t["volumes"]);
    assert_eq!(code, 1, "{name}: findings, so exit 1");
    for (id, list) in volumes {
        let v = crate::common::volume(&t, id);
        assert_eq!(
            v["files_scanned"].as_u64(),
            Some(lines(dir, list).len() as u64),
            "{name} {id}: {v:#}"
        );
    }

    // Every plant at its path, by its rule.
    let plants: Vec<(String, String)> = lines(dir, "plants.tsv")
        .into_iter()
        .map(|l| {
            let (rule, path) = l.split_once('\t').unwrap();
            (rule.to_string(), path.to_string())
        })
        .collect();
    assert_eq!(plants.len(), 4);
    let found = rule_paths(&t, "");
    for p in &plants {
        assert!(found.contains(p), "{name}: plant {p:?} not found");
    }

    // The stock system: its host keys and sshd's default, nothing else a publisher must fix;
    // the package checks find every setid file owned and every verified file as packaged.
    let planted: BTreeSet<String> = plants.into_iter().map(|(_, p)| p).collect();
    let want: BTreeSet<(String, String)> = [
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ecdsa_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ed25519_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_rsa_key"),
        ("sshd-password-authentication", "/etc/ssh/sshd_config"),
    ]
    .into_iter()
    .map(|(r, p)| (r.to_string(), p.to_string()))
    .collect();
    assert_eq!(stock_at_least_medium(&t, &planted), want, "{name}");
    let package: Vec<&(String, String)> = found
        .iter()
        .filter(|(r, _)| {
            matches!(
                r.as_str(),
                "setid-unowned" | "dpkg-modified-file" | "rpm-modified-file"
            )
        })
        .collect();
    assert!(package.is_empty(), "{name}: {package:?}");
}

#[test]
fn installed_root_on_ext4_4k_blocks_is_read_whole() {
    check("ext4-4k", &[("disk", "ext4-4k.files")]);
}

#[test]
fn installed_root_on_ext4_1k_blocks_is_read_whole() {
    check("ext4-1k", &[("disk", "ext4-1k.files")]);
}

#[test]
fn installed_root_on_xfs_is_read_whole() {
    check("xfs", &[("disk", "xfs.files")]);
}

#[test]
fn installed_root_on_a_gpt_cloud_disk_is_read_whole() {
    check("gpt", &[("p1", "gpt.files"), ("p15", "gpt-esp.files")]);
}
