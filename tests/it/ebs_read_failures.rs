//! Issue 19 through the EBS direct APIs: the loopback test server injects a permanent fault on
//! one block of a snapshot of an ext4 written by the kernel, and the real binary scans it.
//! - The block holding `/etc/ssh/sshd_config` (which says `PasswordAuthentication no`): exit 3,
//!   the file named, and no sshd finding (an unreadable file used to read as an unset keyword:
//!   "PasswordAuthentication not set: OpenSSH's default is yes").
//! - The block holding the `/etc` directory (metadata): the scan ends, incomplete, and the block
//!   is fetched with its attempts once and counted once as failed (it used to be fetched again,
//!   with every attempt, by every read that touched it).
#![cfg(feature = "aws")]

use crate::common::{bash, json_target, run};
use crate::ebs_support::{amiscan_command, server_with};
use aws_test_server::{FaultKind, Faults, SnapshotSpec, TestServer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SNAP: &str = "snap-0000000000019019a";
const EBS_BLOCK: u64 = 512 * 1024;
/// The binary's default attempts per block.
const ATTEMPTS: u64 = 8;

/// A 64 MiB ext4 (4 KiB blocks) written through a loop mount: sshd_config's data between two
/// runs of 70 small files (ext4 packs small files one after another, right after the
/// directories' blocks), so its EBS block holds file data only.
fn image() -> &'static Path {
    static IMG: OnceLock<PathBuf> = OnceLock::new();
    IMG.get_or_init(|| {
        let dir = crate::common::workdir("ebs-read-failures", "img");
        run(bash(
            r#"
cd "$0"
truncate -s 64M fs.img && mkfs.ext4 -q -F -b 4096 fs.img
mkdir -p m
# One CPU and no delayed allocation: the small files are placed in the order they are
# written, from one locality group.
taskset -c 0 bash -euo pipefail -c '
mount -o loop,nodelalloc fs.img m
trap "umount m 2>/dev/null || true" EXIT
mkdir -p m/etc/ssh
printf "NAME=Test\nID=test\n" > m/etc/os-release
printf "root:!:19700:0:99999:7:::\n" > m/etc/shadow
pad() { for i in $(seq "$1" "$2"); do head -c 16K /dev/zero | tr "\0" p > "m/etc/ssh/pad-$i"; done; }
pad 100 169
printf "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" > m/etc/ssh/sshd_config
pad 200 269
'
e2fsck -fn fs.img >/dev/null
"#,
        )
        .arg(&dir));
        dir.join("fs.img")
    })
}

/// The EBS block holding the first data block of `path`.
fn ebs_block_of(path: &str) -> u64 {
    let out = run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("bmap {path} 0"))
        .arg(image()));
    let block: u64 = out.trim().parse().unwrap();
    block * 4096 / EBS_BLOCK
}

fn server(always: Option<u64>) -> TestServer {
    let server = server_with(SnapshotSpec::new(SNAP, image()));
    server.set_faults(Faults {
        always: always
            .map(|b| vec![(b, FaultKind::InternalError)])
            .unwrap_or_default(),
        ..Default::default()
    });
    server
}

/// `amiscan scan --format json SNAP` against the server: (exit code, target 0).
fn scan(server: &TestServer) -> (i32, Value) {
    let home = tempfile::tempdir().unwrap();
    let out = amiscan_command(
        server,
        home.path(),
        &[
            "scan",
            "--format",
            "json",
            "--no-progress",
            "--fail-on",
            "medium",
            SNAP,
        ],
    )
    .output()
    .unwrap();
    json_target(&out)
}

fn rules(t: &Value) -> Vec<String> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_unreadable_sshd_config_on_ebs_is_exit_3_and_no_sshd_finding() {
    let (code, t) = scan(&server(None));
    assert_eq!((code, &t["complete"]), (0, &Value::Bool(true)), "{t:#}");
    let block = ebs_block_of("/etc/ssh/sshd_config");
    // The fault must hit sshd_config alone, not the directories on the way to it.
    for other in ["/", "/etc", "/etc/ssh", "/etc/shadow"] {
        assert_ne!(ebs_block_of(other), block, "{other} shares the EBS block");
    }
    let server = server(Some(block));
    let (code, t) = scan(&server);
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["complete"], false);
    assert!(
        !rules(&t).iter().any(|r| r.starts_with("sshd-")),
        "a verdict from a failed read: {t:#}"
    );
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["path"] == "/etc/ssh/sshd_config"
            && e["message"].as_str().unwrap().contains("sshd")),
        "the sshd check does not say why it made no verdict: {errors:#?}"
    );
    // Fetched with its attempts once, though the content scan and the check both read it.
    let asked = server.accounting(SNAP).get_counts[&block];
    assert_eq!(asked, ATTEMPTS, "{asked} requests");
    assert_eq!(t["snapshots"][0]["failed_blocks"], 1, "{t:#}");
}

#[test]
fn a_failing_directory_block_ends_the_scan_and_is_counted_once() {
    let block = ebs_block_of("/etc");
    assert_ne!(block, 0, "/etc in the first EBS block, with the superblock");
    let server = server(Some(block));
    let (code, t) = scan(&server);
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["complete"], false);
    let asked = server.accounting(SNAP).get_counts[&block];
    assert_eq!(
        asked, ATTEMPTS,
        "fetched again after it failed: {asked} requests"
    );
    assert_eq!(t["snapshots"][0]["failed_blocks"], 1, "{t:#}");
}
