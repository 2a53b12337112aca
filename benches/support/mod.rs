//! Shared by the EBS benches: the loopback test server with a per-request latency, and an AWS
//! session pointed at it with fixed test credentials.

use amiscan::aws::{AwsOptions, AwsSession};
use aws_test_server::{Faults, ServerConfig, SnapshotSpec, TestServer};
use std::time::Duration;

/// Serve `spec` with `latency` added to every request; the session talks to it.
pub fn serve(spec: SnapshotSpec, latency: Duration) -> (TestServer, AwsSession) {
    let server = TestServer::start(ServerConfig {
        snapshots: vec![spec],
        faults: Faults {
            latency,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("server");
    let session = AwsSession::new(&AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.endpoint_url()),
        credentials: Some(aws_sdk_ebs::config::Credentials::new(
            "AKIDBENCH",
            "bench",
            None,
            None,
            "bench",
        )),
        ..Default::default()
    })
    .expect("session");
    (server, session)
}
