//! AMIs and snapshots scanned end to end through the EBS direct APIs: the test server serves
//! local images exactly as the AWS API reference defines them, the unmodified AWS SDK clients talk
//! to it, and the findings must equal those of the same images scanned locally — also when the
//! server injects faults, with no block fetched twice and no unlisted block requested.
#![cfg(feature = "aws")]

use crate::common::run;
use crate::ebs_support::{amiscan_command, scan_ami};
use amiscan::detect::Detector;
use amiscan::scan::{ScanOptions, scan_image};
use aws_test_server::{
    AmiSpec, FaultKind, Faults, MappingSpec, ServerConfig, SnapshotSpec, TestServer,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const AMI: &str = "ami-0123456789abcdef0";
const ROOT: &str = "snap-0000000000000000a";
const DATA: &str = "snap-0000000000000000b";

struct Images {
    root: PathBuf,
    data: PathBuf,
    /// Byte offset of a block 1.5 MiB into `/backups/big.bin`: an EBS block that holds
    /// nothing but that file's data.
    big_offset: u64,
}

/// root = the leaky GPT image (BIOS boot + ext4); data = a bare ext4 with the data tree plus a
/// 3 MiB file.
fn images() -> &'static Images {
    static I: OnceLock<Images> = OnceLock::new();
    I.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ebs-scan");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let td = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        run(Command::new("bash")
            .arg(td.join("build-images.sh"))
            .arg(dir.join("img")));
        let tree = dir.join("data-tree");
        run(Command::new("cp")
            .arg("-r")
            .arg(dir.join("img/staging/data"))
            .arg(&tree));
        let big: Vec<u8> = (0..3 * 1024 * 1024u32)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        std::fs::write(tree.join("backups/big.bin"), big).unwrap();
        let data = dir.join("data.img");
        run(Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-b", "4096", "-d"])
            .arg(&tree)
            .arg("-F")
            .arg(&data)
            .arg("16M"));
        let bmap = run(Command::new("debugfs")
            .arg("-R")
            .arg("bmap /backups/big.bin 384")
            .arg(&data));
        let block: u64 = bmap
            .trim()
            .parse()
            .expect("debugfs bmap prints a block number");
        Images {
            root: dir.join("img/leaky-gpt.img"),
            data,
            big_offset: block * 4096,
        }
    })
}

fn server(faults: Faults) -> TestServer {
    let i = images();
    let map = |dev: &str, snap: &str| MappingSpec {
        device_name: dev.into(),
        snapshot_id: Some(snap.into()),
        volume_size: Some(1),
        encrypted: false,
        virtual_name: None,
    };
    TestServer::start(ServerConfig {
        snapshots: vec![
            SnapshotSpec::new(ROOT, &i.root),
            SnapshotSpec::new(DATA, &i.data),
        ],
        amis: vec![
            AmiSpec {
                id: AMI.into(),
                name: "leaky-test-image".into(),
                owner_id: "111122223333".into(),
                public: false,
                root_device_type: "ebs".into(),
                root_device_name: "/dev/xvda".into(),
                mappings: vec![map("/dev/xvda", ROOT), map("/dev/sdf", DATA)],
                description: None,
                tags: vec![],
            },
            AmiSpec {
                id: "ami-00000000000000bbb".into(),
                name: "data-only".into(),
                owner_id: "111122223333".into(),
                public: false,
                root_device_type: "ebs".into(),
                root_device_name: "/dev/xvda".into(),
                mappings: vec![map("/dev/xvda", DATA)],
                description: None,
                tags: vec![],
            },
        ],
        faults,
    })
    .unwrap()
}

type Key = (String, String, String);

fn keys(findings: &[amiscan::report::Finding], prefix: &str) -> BTreeSet<Key> {
    findings
        .iter()
        .map(|f| {
            (
                f.rule.clone(),
                format!("{prefix}{}", f.volume),
                f.path.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// What the two images give when scanned locally, with the AMI's volume ids.
fn local_findings() -> BTreeSet<Key> {
    let det = Detector::builtin().unwrap();
    let opts = ScanOptions::default();
    let i = images();
    let root = scan_image(&i.root, &det, &opts).unwrap();
    let data = scan_image(&i.data, &det, &opts).unwrap();
    assert!(root.complete && data.complete);
    let mut all = keys(&root.findings, "xvda:");
    all.extend(keys(&data.findings, "sdf:"));
    all
}

#[test]
fn an_ami_with_two_volumes_gives_the_local_findings_fetching_each_block_once() {
    let server = server(Faults::default());
    let r = scan_ami(&server, AMI, &Detector::builtin().unwrap());
    assert!(r.complete, "{:?}", r.errors);
    let want = local_findings();
    assert!(want.len() > 20);
    assert_eq!(keys(&r.findings, ""), want);
    // Both volumes are listed with their device names and request accounting.
    assert_eq!(r.snapshots.len(), 2);
    for s in &r.snapshots {
        let acc = server.accounting(&s.snapshot_id);
        assert_eq!(acc.unlisted_requests, 0, "{}", s.snapshot_id);
        assert!(
            acc.get_counts.values().all(|&n| n == 1),
            "a block was fetched twice: {:?}",
            acc.get_counts
        );
        assert_eq!(s.blocks_fetched, acc.get_calls());
        assert!(s.blocks_fetched <= s.blocks_listed);
        assert!(s.bytes_fetched > 0);
    }
    let ids: BTreeSet<_> = r.volumes.iter().map(|v| v.id.as_str()).collect();
    assert!(
        ids.contains("xvda:p2") && ids.contains("sdf:disk"),
        "{ids:?}"
    );
}

#[test]
fn every_fault_kind_on_15_percent_of_requests_leaves_the_findings_unchanged() {
    let want = local_findings();
    let det = Detector::builtin().unwrap();
    for kind in FaultKind::ALL {
        let server = server(Faults {
            seed: 7,
            random: vec![(kind, 0.15)],
            stall_for: std::time::Duration::from_secs(2),
            ..Default::default()
        });
        let r = scan_ami(&server, AMI, &det);
        assert!(r.complete, "{kind:?}: {:?} {:?}", r.errors, r.volumes);
        assert_eq!(keys(&r.findings, ""), want, "{kind:?}");
        let injected: u64 = [ROOT, DATA]
            .iter()
            .map(|s| server.accounting(s).faults.get(&kind).copied().unwrap_or(0))
            .sum();
        assert!(injected > 0, "{kind:?} was never injected");
        let retries: u64 = r.snapshots.iter().map(|s| s.retries).sum();
        assert!(
            retries > 0 || kind == FaultKind::ExpiredToken,
            "{kind:?}: no retries counted"
        );
    }
}

fn binary(server: &TestServer, args: &[&str]) -> (i32, Value) {
    let home = tempfile::tempdir().unwrap();
    let mut all = vec!["scan", "--format", "json", "--no-progress"];
    all.extend(args);
    let out = amiscan_command(server, home.path(), &all).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn the_binary_scans_an_ami_through_the_credential_chain_and_endpoint_flag() {
    let server = server(Faults::default());
    let (code, v) = binary(&server, &[AMI]);
    assert_eq!(code, 1, "{v:#}");
    let t = &v["targets"][0];
    assert_eq!(t["target"], AMI);
    assert_eq!(t["complete"], true);
    let snaps = t["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["device_name"], "/dev/xvda");
    assert_eq!(snaps[0]["snapshot_id"], ROOT);
    for field in [
        "blocks_listed",
        "blocks_fetched",
        "bytes_fetched",
        "requests",
        "retries",
        "throttles",
        "elapsed_secs",
    ] {
        assert!(snaps[0].get(field).is_some(), "{field}");
    }
    let found: BTreeSet<Key> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().into(),
                f["volume"].as_str().unwrap().into(),
                f["path"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(found, local_findings());
}

#[test]
fn a_snapshot_target_scans_one_volume() {
    let server = server(Faults::default());
    let (code, v) = binary(&server, &["--fail-on", "medium", DATA]);
    let t = &v["targets"][0];
    assert_eq!(t["complete"], true, "{v:#}");
    assert_eq!(t["volumes"][0]["id"], "disk");
    assert_eq!(t["findings"][0]["path"], "/secrets/id_rsa");
    assert_eq!(code, 1);
}

#[test]
fn a_block_that_always_fails_names_the_file_not_scanned_and_exits_3() {
    let block = images().big_offset / (512 * 1024);
    let server = server(Faults {
        always: vec![(block, FaultKind::InternalError)],
        ..Default::default()
    });
    let (code, v) = binary(&server, &["ami-00000000000000bbb"]);
    let t = &v["targets"][0];
    assert_eq!(t["complete"], false, "{v:#}");
    assert_eq!(code, 3, "{v:#}");
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    let big = errors
        .iter()
        .find(|e| e["path"] == "/backups/big.bin")
        .unwrap_or_else(|| panic!("big.bin not named: {errors:#?}"));
    let msg = big["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("block {block}")) && msg.contains(DATA),
        "{msg}"
    );
    assert!(t["snapshots"][0]["failed_blocks"].as_u64().unwrap() >= 1);
}

#[test]
fn an_unknown_ami_is_a_clear_error_and_exit_2() {
    let server = server(Faults::default());
    let home = tempfile::tempdir().unwrap();
    let out = amiscan_command(&server, home.path(), &["scan", "ami-0fffffffffffffff0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ami-0fffffffffffffff0") && err.to_lowercase().contains("not found"),
        "{err}"
    );
}
