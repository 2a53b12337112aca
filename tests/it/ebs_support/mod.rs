//! Shared helpers for the EBS tests: test images, a server, and a session pointed at it.
#![allow(dead_code)]

use amiscan::aws::{AwsOptions, AwsSession};
use amiscan::source::ebs::{EbsOptions, MemoryBudget};
use aws_test_server::{
    AmiSpec, MappingSpec, OrgAccountSpec, ServerConfig, SnapshotSpec, TestServer,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub const BS: usize = 512 * 1024;

/// Deterministic bytes (xorshift).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An image of `blocks` whole blocks plus `tail` bytes: block i is random unless i % 3 == 1
/// (zero); block 7, when present, is zero except for its last byte; the partial tail is random.
pub fn image(blocks: usize, tail: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
    let mut data = Vec::with_capacity(blocks * BS + tail);
    for i in 0..blocks {
        if i == 7 {
            let mut b = vec![0u8; BS];
            b[BS - 1] = 1;
            data.extend_from_slice(&b);
        } else if i % 3 == 1 {
            data.extend(std::iter::repeat_n(0u8, BS));
        } else {
            data.extend(noise(i as u64 + 1, BS));
        }
    }
    data.extend(noise(999, tail));
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&data).unwrap();
    f.flush().unwrap();
    (f, data)
}

/// A server with one snapshot `snap` served from `path`.
pub fn server_with(snap: SnapshotSpec) -> TestServer {
    TestServer::start(ServerConfig {
        snapshots: vec![snap],
        ..Default::default()
    })
    .unwrap()
}

/// A session against the server with fixed credentials (no default chain, no IMDS).
pub fn session(server: &TestServer) -> AwsSession {
    AwsSession::new(&AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.endpoint_url()),
        credentials: Some(aws_sdk_ebs::config::Credentials::new(
            "AKIDTESTTESTTEST",
            "test-secret",
            None,
            None,
            "amiscan-tests",
        )),
        ..Default::default()
    })
    .unwrap()
}

/// Options with short timeouts and backoffs for tests, and a memory budget of their own (the
/// tests of this binary run in parallel in one process: they would share the process's).
pub fn fast_opts() -> EbsOptions {
    EbsOptions {
        memory: Some(MemoryBudget::new(256 << 20)),
        concurrency: 16,
        attempt_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        body_stall_timeout: Duration::from_millis(300),
        max_attempts: 10,
        backoff_base: Duration::from_millis(2),
        backoff_max: Duration::from_millis(40),
        ..Default::default()
    }
}

/// The fixture GPT disk of `testdata/build-images.sh`, leaky or clean, built once per test
/// binary.
pub fn gpt_disk(leaky: bool) -> PathBuf {
    crate::common::built_images("testimages").join(if leaky {
        "leaky-gpt.img"
    } else {
        "clean-gpt.img"
    })
}

/// An EBS AMI `id` named `name` of `owner` whose volumes are `snaps` (`/dev/xvda`, `/dev/xvdb`,
/// … in order).
pub fn ami_spec(id: &str, name: &str, owner: &str, public: bool, snaps: &[&str]) -> AmiSpec {
    AmiSpec {
        id: id.into(),
        name: name.into(),
        owner_id: owner.into(),
        public,
        root_device_type: "ebs".into(),
        root_device_name: "/dev/xvda".into(),
        mappings: snaps
            .iter()
            .zip(b'a'..=b'z')
            .map(|(s, letter)| MappingSpec {
                device_name: format!("/dev/xvd{}", letter as char),
                snapshot_id: Some(s.to_string()),
                volume_size: None,
                encrypted: false,
                virtual_name: None,
            })
            .collect(),
        description: None,
        tags: vec![],
    }
}

/// The environment of an `amiscan` run against the test server: nothing of the caller's but
/// `HOME` at `home`, the test credentials, and no instance metadata.
pub fn test_env<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env_clear()
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// `amiscan ARGS --region us-east-1 --endpoint-url URL` against `server`, in [`test_env`].
pub fn amiscan_command(server: &TestServer, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amiscan"));
    cmd.args(args)
        .args(["--region", "us-east-1", "--endpoint-url"])
        .arg(server.endpoint_url());
    test_env(&mut cmd, home);
    cmd
}

/// The exit code of a finished run, which must not have panicked, and its stdout followed by its
/// stderr.
pub fn finish(out: Output) -> (i32, String) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &stderr,
    )
}

/// [`amiscan_command`] run to completion: [`finish`]ed.
pub fn amiscan(server: &TestServer, home: &Path, args: &[&str]) -> (i32, String) {
    finish(amiscan_command(server, home, args).output().unwrap())
}

/// The role ARNs the server was asked to assume.
pub fn assumed_roles(server: &TestServer) -> BTreeSet<String> {
    server
        .assume_role_calls()
        .iter()
        .map(|c| c.role_arn.clone())
        .collect()
}

/// The ARNs of role `role` in each of `accounts`.
pub fn role_arns(accounts: &[&str], role: &str) -> BTreeSet<String> {
    accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:role/{role}"))
        .collect()
}

/// The JSON lines of `out` (an `amiscan ... --format jsonl` output) whose `type` is `kind`.
pub fn records(out: &str, kind: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == kind)
        .collect()
}

/// Member account `id` of an organisation, named `account ID`, in `status` (`ACTIVE`,
/// `SUSPENDED`).
pub fn org_account(id: &str, status: &str) -> OrgAccountSpec {
    OrgAccountSpec {
        id: id.into(),
        name: format!("account {id}"),
        status: status.into(),
    }
}

/// Scan the AMI `ami` on `server` through the library with [`fast_opts`] and `det`: the report.
pub fn scan_ami(
    server: &TestServer,
    ami: &str,
    det: &amiscan::detect::Detector,
) -> amiscan::report::TargetReport {
    amiscan::aws::scan::scan_ebs_target(
        &session(server),
        &amiscan::aws::scan::EbsTarget::Ami(ami.into()),
        &fast_opts(),
        det,
        &amiscan::scan::ScanOptions::default(),
    )
    .unwrap()
}
