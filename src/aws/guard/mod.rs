//! The publish guard: the handler behind `deploy/publish-guard/` (an AWS Lambda function fed by
//! an EventBridge rule on CloudTrail `ModifyImageAttribute` / `ModifySnapshotAttribute`).
//!
//! For each share event ([`event::parse`]):
//!
//! 1. grantees in the allow list (accounts, organization or OU ARNs) are trusted: a share that
//!    adds only those is **allowed and not scanned** (the allow list is the organisation's own
//!    accounts; the pipeline's `amiscan publish` gate covers what goes there);
//! 2. otherwise the image (every EBS volume) or the snapshot is scanned with the library's EBS
//!    scan, as `amiscan scan` would;
//! 3. a complete scan without findings at or above the threshold (vendor content excluded) is
//!    **kept** (tagged `amiscan:scanned=clean` if configured);
//! 4. findings at or above the threshold, an incomplete scan, or a scan that could not run at
//!    all **block** the share: the new permissions outside the allow list are removed
//!    (`ModifyImageAttribute` / `ModifySnapshotAttribute` Remove), for an image the public
//!    create-volume permission of each of its snapshots too, the resource is tagged
//!    `amiscan:blocked=<reason>`, the findings and the guard's own finding go to Security Hub
//!    (`BatchImportFindings`, ASFF) and a notice to the SNS topic.
//!
//! Every action is attempted even when an earlier one failed; failures are listed in the
//! outcome (`errors`) so the Lambda can fail the invocation and be retried (each action is
//! idempotent). Synchronous like the rest of the library: the Lambda runs it on a blocking thread.

pub mod event;
pub mod hub;

use super::ec2ops::api_error;
use super::scan::{EbsTarget, scan_ebs_target};
use super::{AwsError, AwsOptions, AwsSession};
use crate::detect::Detector;
use crate::report::asff::AsffOptions;
use crate::report::{Severity, TargetReport};
use crate::scan::ScanOptions;
use crate::source::ebs::EbsOptions;
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, LaunchPermission,
    LaunchPermissionModifications, PermissionGroup, Tag,
};
use event::{Grantee, Parsed, ShareEvent, Shared};
use serde::Serialize;

/// The tag put on a resource whose share was reverted; the value is the reason.
pub const BLOCKED_TAG: &str = "amiscan:blocked";
/// The tag put on a resource found clean, when [`GuardConfig::tag_clean`] is set.
pub const SCANNED_TAG: &str = "amiscan:scanned";

/// How the guard judges and whom it tells.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Grantees trusted without a scan: 12-digit account ids, organization and OU ARNs.
    pub allowed: Vec<String>,
    /// Block on a finding at or above this (default high).
    pub fail_on: Severity,
    /// SNS topic for the notice of a block (none: no notice).
    pub sns_topic_arn: Option<String>,
    /// Send findings to Security Hub.
    pub security_hub: bool,
    /// Tag a clean resource `amiscan:scanned=clean`.
    pub tag_clean: bool,
    /// Scan only the well-known places (`--quick`): for images too large to scan within the
    /// Lambda's 15 minutes.
    pub quick: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            allowed: Vec::new(),
            fail_on: Severity::High,
            sns_topic_arn: None,
            security_hub: true,
            tag_clean: false,
            quick: false,
        }
    }
}

/// Why the guard could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A configuration value is invalid.
    #[error("invalid guard configuration: {0}")]
    Config(String),
    /// The event could not be read.
    #[error(transparent)]
    Event(#[from] event::EventError),
    /// The event is from another region than the guard's clients.
    #[error(
        "the event is from region {event} but the guard runs in {guard}: deploy one guard per region"
    )]
    WrongRegion {
        /// The event's region.
        event: String,
        /// The guard's.
        guard: String,
    },
    /// Setting up the AWS clients failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl GuardConfig {
    /// Read the configuration from variables (the Lambda's environment):
    /// `AMISCAN_GUARD_ALLOWED` (accounts and organization/OU ARNs, separated by commas or
    /// spaces), `AMISCAN_GUARD_FAIL_ON` (`critical`, `high`, `medium`, `low`, `info`),
    /// `AMISCAN_GUARD_SNS_TOPIC_ARN`, `AMISCAN_GUARD_SECURITY_HUB` (`true`/`false`),
    /// `AMISCAN_GUARD_TAG_CLEAN`, `AMISCAN_GUARD_QUICK`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<GuardConfig, GuardError> {
        let mut c = GuardConfig::default();
        let flag = |name: &str, default: bool| -> Result<bool, GuardError> {
            match var(name).as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some("true" | "1" | "yes") => Ok(true),
                Some("false" | "0" | "no") => Ok(false),
                Some(v) => Err(GuardError::Config(format!(
                    "{name}={v}: expected true or false"
                ))),
            }
        };
        if let Some(list) = var("AMISCAN_GUARD_ALLOWED") {
            for a in list.split([',', ' ', '\n']).filter(|a| !a.is_empty()) {
                let account = a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
                let org = a.starts_with("arn:") && a.contains(":organizations::");
                if !account && !org {
                    return Err(GuardError::Config(format!(
                        "AMISCAN_GUARD_ALLOWED: `{a}` is neither a 12-digit account id nor an organization or OU ARN"
                    )));
                }
                c.allowed.push(a.to_string());
            }
        }
        if let Some(v) = var("AMISCAN_GUARD_FAIL_ON").filter(|v| !v.trim().is_empty()) {
            c.fail_on = v.trim().parse().map_err(|_| {
                GuardError::Config(format!("AMISCAN_GUARD_FAIL_ON={v}: not a severity"))
            })?;
        }
        c.sns_topic_arn = var("AMISCAN_GUARD_SNS_TOPIC_ARN").filter(|v| !v.trim().is_empty());
        c.security_hub = flag("AMISCAN_GUARD_SECURITY_HUB", true)?;
        c.tag_clean = flag("AMISCAN_GUARD_TAG_CLEAN", false)?;
        c.quick = flag("AMISCAN_GUARD_QUICK", false)?;
        Ok(c)
    }

    fn trusts(&self, g: &Grantee) -> bool {
        match g {
            Grantee::All => false,
            Grantee::Account(a) | Grantee::Organization(a) | Grantee::OrganizationalUnit(a) => {
                self.allowed.iter().any(|x| x == a)
            }
        }
    }
}

/// What the guard did with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Outcome {
    /// Not a share (another event, a removal, a failed call).
    Ignored {
        /// Why.
        reason: String,
    },
    /// Only allow-listed grantees: kept without a scan.
    Allowed {
        /// The resource.
        resource: Shared,
        /// The grantees added.
        grantees: Vec<Grantee>,
    },
    /// Scanned complete and clean: kept.
    Kept {
        /// The resource.
        resource: Shared,
        /// The grantees outside the allow list that stay.
        grantees: Vec<Grantee>,
        /// Findings below the threshold or in vendor content.
        findings_below_threshold: usize,
        /// Actions that failed (the clean tag).
        errors: Vec<String>,
    },
    /// Reverted.
    Blocked {
        /// The resource.
        resource: Shared,
        /// Why (also the tag value).
        reason: String,
        /// Permissions removed.
        removed: Vec<Grantee>,
        /// Snapshots of the image whose public create-volume permission was removed.
        snapshots_made_private: Vec<String>,
        /// Findings at or above the threshold.
        findings: usize,
        /// Findings Security Hub accepted (the guard's own included).
        imported: usize,
        /// The SNS message id.
        sns_message_id: Option<String>,
        /// Actions that failed; non-empty means the invocation should fail and be retried.
        errors: Vec<String>,
    },
}

impl Outcome {
    /// Actions that failed.
    pub fn errors(&self) -> &[String] {
        match self {
            Outcome::Kept { errors, .. } | Outcome::Blocked { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// The guard: AWS clients, the detector and the configuration.
pub struct Guard {
    session: AwsSession,
    sns: aws_sdk_sns::Client,
    hub: aws_sdk_securityhub::Client,
    region: String,
    cfg: GuardConfig,
    det: Detector,
    ebs: EbsOptions,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("region", &self.region)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// A tag value: letters, digits, spaces and `_ . : / = + - @` (what every service accepts), at
/// most 256 characters.
fn tag_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(256)
        .collect()
}

impl Guard {
    /// Build the clients (region, credentials and endpoint from `aws`) for `cfg`.
    pub fn new(aws: &AwsOptions, cfg: GuardConfig, det: Detector) -> Result<Guard, GuardError> {
        let session = AwsSession::new(aws)?;
        let o = aws.clone();
        let (sns, hub, region) = session.run(async move {
            let conf = super::sdk_config(&o).await?;
            let region = conf.region().map(|r| r.to_string()).unwrap_or_default();
            let mut sns = aws_sdk_sns::config::Builder::from(&conf);
            let mut hub = aws_sdk_securityhub::config::Builder::from(&conf);
            if let Some(u) = &o.endpoint_url {
                sns = sns.endpoint_url(u);
                hub = hub.endpoint_url(u);
            }
            Ok((
                aws_sdk_sns::Client::from_conf(sns.build()),
                aws_sdk_securityhub::Client::from_conf(hub.build()),
                region,
            ))
        })?;
        if let Some(t) = &cfg.sns_topic_arn
            && !t.starts_with("arn:")
        {
            return Err(GuardError::Config(format!("SNS topic `{t}` is not an ARN")));
        }
        Ok(Guard {
            session,
            sns,
            hub,
            region,
            cfg,
            det,
            ebs: EbsOptions::default(),
        })
    }

    /// Use these EBS read options (tests shorten the retry budget).
    pub fn with_ebs_options(mut self, ebs: EbsOptions) -> Guard {
        self.ebs = ebs;
        self
    }

    /// Judge one EventBridge event and act on it.
    pub fn handle(&self, event: &serde_json::Value) -> Result<Outcome, GuardError> {
        let ev = match event::parse(event)? {
            Parsed::Ignored(reason) => return Ok(Outcome::Ignored { reason }),
            Parsed::Share(ev) => ev,
        };
        if ev.region != self.region {
            return Err(GuardError::WrongRegion {
                event: ev.region,
                guard: self.region.clone(),
            });
        }
        let risky: Vec<Grantee> = ev
            .added
            .iter()
            .filter(|g| !self.cfg.trusts(g))
            .cloned()
            .collect();
        if risky.is_empty() {
            return Ok(Outcome::Allowed {
                resource: ev.shared,
                grantees: ev.added,
            });
        }
        let target = match &ev.shared {
            Shared::Image(id) => EbsTarget::Ami(id.clone()),
            Shared::Snapshot(id) => EbsTarget::Snapshot(id.clone()),
        };
        let scan = ScanOptions {
            quick: self.cfg.quick,
            ..ScanOptions::default()
        };
        let report = scan_ebs_target(&self.session, &target, &self.ebs, &self.det, &scan);
        let (report, reason) = match report {
            Err(e) => (None, format!("scan failed: {e}")),
            Ok(r) => {
                let at = r
                    .findings
                    .iter()
                    .filter(|f| f.severity >= self.cfg.fail_on && !f.is_vendor())
                    .count();
                let reason = if at > 0 {
                    Some(format!(
                        "{at} findings at or above {} - most severe {}",
                        self.cfg.fail_on,
                        r.max_severity().unwrap_or(self.cfg.fail_on)
                    ))
                } else if !r.complete {
                    Some(format!(
                        "incomplete scan - {} errors - an image that could not be read is never shared",
                        r.errors.len()
                    ))
                } else {
                    None
                };
                match reason {
                    None => return Ok(self.keep(&ev, risky, &r)),
                    Some(reason) => (Some(r), reason),
                }
            }
        };
        Ok(self.block(&ev, risky, report.as_ref(), &reason))
    }

    fn keep(&self, ev: &ShareEvent, risky: Vec<Grantee>, r: &TargetReport) -> Outcome {
        let mut errors = Vec::new();
        if self.cfg.tag_clean
            && let Err(e) = self.tag(ev.shared.id(), SCANNED_TAG, "clean")
        {
            errors.push(e.to_string());
        }
        Outcome::Kept {
            resource: ev.shared.clone(),
            grantees: risky,
            findings_below_threshold: r.findings.len(),
            errors,
        }
    }

    fn block(
        &self,
        ev: &ShareEvent,
        risky: Vec<Grantee>,
        report: Option<&TargetReport>,
        reason: &str,
    ) -> Outcome {
        let mut errors = Vec::new();
        let mut made_private = Vec::new();
        let ec2 = self.session.ec2_client().clone();
        // 1. Revert: the new permissions outside the allow list.
        let id = ev.shared.id().to_string();
        let revert = match &ev.shared {
            Shared::Image(_) => {
                let mut m = LaunchPermissionModifications::builder();
                for g in &risky {
                    m = m.remove(match g {
                        Grantee::All => LaunchPermission::builder()
                            .group(PermissionGroup::All)
                            .build(),
                        Grantee::Account(a) => LaunchPermission::builder().user_id(a).build(),
                        Grantee::Organization(a) => {
                            LaunchPermission::builder().organization_arn(a).build()
                        }
                        Grantee::OrganizationalUnit(a) => LaunchPermission::builder()
                            .organizational_unit_arn(a)
                            .build(),
                    });
                }
                let req = ec2
                    .modify_image_attribute()
                    .image_id(&id)
                    .launch_permission(m.build());
                self.session.run(async move {
                    req.send()
                        .await
                        .map_err(|e| {
                            api_error("ModifyImageAttribute", "ec2:ModifyImageAttribute", &e)
                        })
                        .map(|_| ())
                })
            }
            Shared::Snapshot(_) => self.remove_volume_permission(&id, &risky),
        };
        if let Err(e) = revert {
            errors.push(e.to_string());
        }
        // 2. An image's snapshots must not stay public either.
        if let Shared::Image(_) = &ev.shared {
            let region = self.region.clone();
            let (ec2c, idc) = (ec2.clone(), id.clone());
            match self
                .session
                .run(async move { super::ec2ops::image(&ec2c, &region, &idc).await })
            {
                Ok(Some(img)) => {
                    for snap in img.snapshot_ids {
                        match self.remove_volume_permission(&snap, &[Grantee::All]) {
                            Ok(()) => made_private.push(snap),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                }
                Ok(None) => errors.push(format!("{id}: not found when listing its snapshots")),
                Err(e) => errors.push(e.to_string()),
            }
        }
        // 3. Mark it.
        if let Err(e) = self.tag(&id, BLOCKED_TAG, &tag_value(reason)) {
            errors.push(e.to_string());
        }
        // 4. Security Hub.
        let at = report.map_or(0, |r| {
            r.findings
                .iter()
                .filter(|f| f.severity >= self.cfg.fail_on && !f.is_vendor())
                .count()
        });
        let mut imported = 0;
        if self.cfg.security_hub {
            match self.import(ev, &risky, report, reason) {
                Ok(n) => imported = n,
                Err(e) => errors.push(e),
            }
        }
        // 5. SNS.
        let mut sns_message_id = None;
        if let Some(topic) = &self.cfg.sns_topic_arn {
            let (subject, message) = hub::notice(ev, reason, &risky, report, self.cfg.fail_on);
            let req = self
                .sns
                .publish()
                .topic_arn(topic)
                .subject(subject)
                .message(message);
            match self.session.run(async move {
                req.send()
                    .await
                    .map_err(|e| api_error("Publish", "sns:Publish", &e))
            }) {
                Ok(out) => sns_message_id = out.message_id().map(str::to_string),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Outcome::Blocked {
            resource: ev.shared.clone(),
            reason: reason.to_string(),
            removed: risky,
            snapshots_made_private: made_private,
            findings: at,
            imported,
            sns_message_id,
            errors,
        }
    }

    fn remove_volume_permission(&self, snap: &str, grantees: &[Grantee]) -> Result<(), AwsError> {
        let mut m = CreateVolumePermissionModifications::builder();
        let mut any = false;
        for g in grantees {
            match g {
                Grantee::All => {
                    m = m.remove(
                        CreateVolumePermission::builder()
                            .group(PermissionGroup::All)
                            .build(),
                    );
                    any = true;
                }
                Grantee::Account(a) => {
                    m = m.remove(CreateVolumePermission::builder().user_id(a).build());
                    any = true;
                }
                // Snapshots are not shared with organizations.
                Grantee::Organization(_) | Grantee::OrganizationalUnit(_) => {}
            }
        }
        if !any {
            return Ok(());
        }
        let req = self
            .session
            .ec2_client()
            .modify_snapshot_attribute()
            .snapshot_id(snap)
            .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
            .create_volume_permission(m.build());
        self.session.run(async move {
            req.send()
                .await
                .map_err(|e| {
                    api_error("ModifySnapshotAttribute", "ec2:ModifySnapshotAttribute", &e)
                })
                .map(|_| ())
        })
    }

    fn tag(&self, id: &str, key: &str, value: &str) -> Result<(), AwsError> {
        let req = self
            .session
            .ec2_client()
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(key).value(value).build());
        self.session.run(async move {
            req.send()
                .await
                .map_err(|e| api_error("CreateTags", "ec2:CreateTags", &e))
                .map(|_| ())
        })
    }

    /// Send the guard's finding and the scan's to Security Hub; the number accepted.
    fn import(
        &self,
        ev: &ShareEvent,
        removed: &[Grantee],
        report: Option<&TargetReport>,
        reason: &str,
    ) -> Result<usize, String> {
        let now = crate::report::time::now_rfc3339();
        let opts =
            AsffOptions::new(&ev.account, &ev.region, now.clone()).map_err(|e| e.to_string())?;
        let severity = report
            .and_then(TargetReport::max_severity)
            .filter(|s| *s >= self.cfg.fail_on)
            .unwrap_or(Severity::High);
        let mut all = vec![hub::guard_finding(
            ev, reason, removed, severity, &opts, &now,
        )];
        if let Some(r) = report {
            all.extend(hub::scan_findings(r, self.cfg.fail_on, &opts));
        }
        let mut imported = 0;
        let mut failed = Vec::new();
        for chunk in all.chunks(hub::IMPORT_BATCH) {
            let mut req = self.hub.batch_import_findings();
            for f in chunk {
                req = req.findings(hub::to_sdk(f));
            }
            let out = self
                .session
                .run(async move {
                    req.send().await.map_err(|e| {
                        api_error("BatchImportFindings", "securityhub:BatchImportFindings", &e)
                    })
                })
                .map_err(|e| e.to_string())?;
            imported += usize::try_from(out.success_count().unwrap_or(0)).unwrap_or(0);
            for f in out.failed_findings() {
                failed.push(format!(
                    "{}: {} {}",
                    f.id().unwrap_or(""),
                    f.error_code().unwrap_or(""),
                    f.error_message().unwrap_or("")
                ));
            }
        }
        if failed.is_empty() {
            Ok(imported)
        } else {
            Err(format!(
                "Security Hub refused {} finding(s): {}",
                failed.len(),
                failed.join("; ")
            ))
        }
    }
}
