//! `aws-test-server SNAPSHOT_ID=IMAGE_PATH... [--latency-ms N] [--ami AMI_ID]
//! [--account-rps N] [--log FILE]`: serve images as EBS snapshots on a loopback port, print the
//! endpoint URL, and stop when standard input closes. `--ami` answers `DescribeImages` for an
//! AMI whose volumes are the snapshots in order; `--account-rps` throttles `GetSnapshotBlock`
//! above N per second across all snapshots (the account quota); `--log` writes the per-second
//! request log (`second received throttled`) to FILE when it stops.
#![forbid(unsafe_code)]

use aws_test_server::{
    AccountQuota, AmiSpec, Faults, MappingSpec, ServerConfig, SnapshotSpec, TestServer,
};
use std::io::Read;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    let mut cfg = ServerConfig::default();
    let mut args = std::env::args().skip(1);
    let (mut ami, mut quota, mut log) = (None, None, None);
    while let Some(a) = args.next() {
        if a == "--ami" {
            ami = args.next();
        } else if a == "--account-rps" {
            quota = args.next().and_then(|v| v.parse::<u32>().ok());
        } else if a == "--log" {
            log = args.next();
        } else if a == "--latency-ms" {
            let ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            cfg.faults = Faults {
                latency: Duration::from_millis(ms),
                ..Faults::default()
            };
        } else if let Some((id, path)) = a.split_once('=') {
            cfg.snapshots
                .push(SnapshotSpec::new(id, std::path::Path::new(path)));
        } else {
            eprintln!(
                "usage: aws-test-server SNAPSHOT_ID=IMAGE_PATH... [--latency-ms N] [--ami AMI_ID] \
                 [--account-rps N] [--log FILE]"
            );
            return std::process::ExitCode::from(2);
        }
    }
    if let Some(id) = ami {
        let mappings = cfg
            .snapshots
            .iter()
            .zip(b'a'..=b'z')
            .map(|(s, letter)| MappingSpec {
                device_name: format!("/dev/xvd{}", letter as char),
                snapshot_id: Some(s.id.clone()),
                volume_size: None,
                encrypted: false,
                virtual_name: None,
            })
            .collect();
        cfg.amis.push(AmiSpec {
            id,
            name: "bench".into(),
            owner_id: "111122223333".into(),
            public: false,
            root_device_type: "ebs".into(),
            root_device_name: "/dev/xvda".into(),
            mappings,
            description: None,
            tags: vec![],
        });
    }
    let server = match TestServer::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aws-test-server: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(rps) = quota {
        server.set_account_quota(Some(AccountQuota {
            get_rps: rps,
            list_rps: 50,
        }));
    }
    println!("{}", server.endpoint_url());
    // Serve until standard input is closed.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    if let Some(path) = log {
        let lines: String = server
            .request_log()
            .iter()
            .map(|s| format!("{} {} {}\n", s.second, s.get_received, s.get_throttled))
            .collect();
        if let Err(e) = std::fs::write(&path, lines) {
            eprintln!("aws-test-server: {path}: {e}");
        }
    }
    drop(server);
    std::process::ExitCode::SUCCESS
}
