//! Shared helpers for the EBS tests: test images, a server, and a session pointed at it.
#![allow(dead_code)]

use amiscan::aws::{AwsOptions, AwsSession};
use amiscan::source::ebs::{EbsOptions, MemoryBudget};
use aws_test_server::{AmiSpec, MappingSpec, ServerConfig, SnapshotSpec, TestServer};
use std::io::Write;
use std::path::PathBuf;
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
