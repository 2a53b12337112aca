//! amiscan's publish guard as an AWS Lambda function (`provided.al2023`): each EventBridge
//! event (CloudTrail `ModifyImageAttribute` / `ModifySnapshotAttribute`) goes to
//! [`amiscan::aws::guard::Guard::handle`], which scans the shared image and reverts the share
//! on findings or an incomplete scan. The outcome is logged as one JSON line and returned; an
//! action that failed fails the invocation, so Lambda retries it (every action is idempotent).
//!
//! Configuration is the environment (see `GuardConfig::from_vars`); region and credentials are
//! the function's own.
#![forbid(unsafe_code)]

use amiscan::aws::AwsOptions;
use amiscan::aws::guard::{Guard, GuardConfig};
use amiscan::detect::Detector;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cfg = GuardConfig::from_vars(|k| std::env::var(k).ok())?;
    let det = Detector::builtin()?;
    // The guard is synchronous (its scan runs on rayon and its own AWS runtime): build and run it
    // on blocking threads, never on this runtime's workers.
    let guard = tokio::task::spawn_blocking(move || Guard::new(&AwsOptions::default(), cfg, det))
        .await??;
    let guard = Arc::new(guard);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let g = guard.clone();
        async move {
            let payload = event.payload;
            let outcome = tokio::task::spawn_blocking(move || g.handle(&payload)).await??;
            let line = serde_json::to_value(&outcome)?;
            println!("{line}");
            if !outcome.errors().is_empty() {
                return Err(Error::from(format!(
                    "publish guard: {} action(s) failed: {}",
                    outcome.errors().len(),
                    outcome.errors().join("; ")
                )));
            }
            Ok::<Value, Error>(line)
        }
    }))
    .await
}
