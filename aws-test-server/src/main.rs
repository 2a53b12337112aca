//! `aws-test-server SNAPSHOT_ID=IMAGE_PATH... [--latency-ms N]`: serve images as EBS snapshots on
//! a loopback port, print the endpoint URL, and stop when standard input closes.
#![forbid(unsafe_code)]

use aws_test_server::{Faults, ServerConfig, SnapshotSpec, TestServer};
use std::io::Read;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    let mut cfg = ServerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--latency-ms" {
            let ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            cfg.faults = Faults {
                latency: Duration::from_millis(ms),
                ..Faults::default()
            };
        } else if let Some((id, path)) = a.split_once('=') {
            cfg.snapshots
                .push(SnapshotSpec::new(id, std::path::Path::new(path)));
        } else {
            eprintln!("usage: aws-test-server SNAPSHOT_ID=IMAGE_PATH... [--latency-ms N]");
            return std::process::ExitCode::from(2);
        }
    }
    let server = match TestServer::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aws-test-server: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", server.endpoint_url());
    // Serve until standard input is closed.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(server);
    std::process::ExitCode::SUCCESS
}
