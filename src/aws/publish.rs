//! `amiscan publish`: the last gate before an AMI is shared. Scan it; only when the scan is
//! complete and nothing is at or above `--fail-on` add the launch permission (everyone, or some
//! accounts) with `ModifyImageAttribute`. Otherwise nothing is modified.

use super::ec2ops;
use super::scan::{EbsTarget, ScanTargetError, scan_ebs_target};
use super::{AwsError, AwsSession};
use crate::detect::Detector;
use crate::report::{Severity, TargetReport};
use crate::scan::ScanOptions;
use crate::source::ebs::EbsOptions;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whom to share with and when to refuse.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Launch permission for everyone.
    pub public: bool,
    /// Launch permission for these accounts.
    pub accounts: Vec<String>,
    /// Refuse when a finding is at or above this.
    pub fail_on: Severity,
}

/// What publish decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Shared: the launch permissions now in place.
    Published {
        /// Public now.
        public: bool,
        /// Accounts with a launch permission now.
        accounts: Vec<String>,
    },
    /// Not shared, and why.
    Refused {
        /// The reason, for humans.
        reason: String,
        /// Findings at or above `--fail-on` (else the scan was incomplete or interrupted).
        findings: bool,
    },
}

/// Why publish could not decide.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The scan could not run.
    #[error(transparent)]
    Scan(#[from] ScanTargetError),
    /// Sharing failed after a clean scan.
    #[error("the scan was clean but sharing failed: {0}")]
    Share(#[from] AwsError),
}

/// Scan `ami`, then share it or refuse.
pub fn publish(
    session: &AwsSession,
    ami: &str,
    opts: &PublishOptions,
    ebs: &EbsOptions,
    det: &Detector,
    scan: &ScanOptions,
    stop: &AtomicBool,
) -> Result<(TargetReport, Decision), PublishError> {
    let report = scan_ebs_target(session, &EbsTarget::Ami(ami.to_string()), ebs, det, scan)?;
    let at = report
        .findings
        .iter()
        .filter(|f| f.severity >= opts.fail_on && !f.is_vendor())
        .count();
    let refuse = |reason: String, findings: bool| Decision::Refused { reason, findings };
    let decision = if at > 0 {
        refuse(
            format!(
                "{at} finding(s) at or above {} (most severe: {}): not shared",
                opts.fail_on,
                report.max_severity().unwrap_or(opts.fail_on)
            ),
            true,
        )
    } else if !report.complete {
        refuse(
            "the scan was incomplete (see the errors): an image that could not be read is never shared"
                .into(),
            false,
        )
    } else if stop.load(Ordering::SeqCst) {
        refuse("interrupted: not shared".into(), false)
    } else {
        let ec2 = session.ec2_client().clone();
        let (id, public, accounts) = (ami.to_string(), opts.public, opts.accounts.clone());
        session
            .run(async move {
                ec2ops::add_launch_permission(&ec2, &id, public, &accounts).await?;
                ec2ops::launch_permissions(&ec2, &id).await
            })
            .map(|(public, accounts)| Decision::Published { public, accounts })?
    };
    Ok((report, decision))
}
