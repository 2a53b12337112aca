//! What the fleet commands (`sweep`, `audit`) produce, as plain data: the report writers format
//! it (`report::fleet`), the AWS layer fills it. Kept on the ground floor so that the writers need
//! not import the AWS layer.

use super::Severity;
use serde::Serialize;
use std::collections::BTreeMap;

/// Allowed AMIs settings of a region.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AllowedImages {
    /// `enabled`, `disabled` or `audit-mode`.
    pub state: String,
    /// Image providers of each criterion.
    pub image_providers: Vec<Vec<String>>,
}

impl AllowedImages {
    /// Whether an image of `owner_id` / `owner_alias` matches a criterion.
    pub fn allows(&self, owner_id: Option<&str>, owner_alias: Option<&str>) -> bool {
        self.image_providers.iter().any(|c| {
            c.iter()
                .any(|p| Some(p.as_str()) == owner_id || Some(p.as_str()) == owner_alias)
        })
    }
}

/// Where an instance's AMI comes from, most trustworthy first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageClass {
    /// Owner alias `amazon` or `aws-marketplace` (verified provider).
    Verified,
    /// Owned by this account.
    #[serde(rename = "self")]
    SelfOwned,
    /// Matches the region's Allowed AMIs criteria.
    Allowed,
    /// Owner in `--trusted-accounts`.
    Trusted,
    /// Shared privately with this account by another one.
    SharedPrivately,
    /// Public, from an unverified owner.
    PublicUnverified,
    /// Nothing is known of the AMI any more.
    Unknown,
}

impl ImageClass {
    /// The name used in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageClass::Verified => "verified",
            ImageClass::SelfOwned => "self",
            ImageClass::Allowed => "allowed",
            ImageClass::Trusted => "trusted",
            ImageClass::SharedPrivately => "shared-privately",
            ImageClass::PublicUnverified => "public-unverified",
            ImageClass::Unknown => "unknown",
        }
    }
}

/// An owned public image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicImage {
    /// `ami-...`.
    pub image_id: String,
    /// Name.
    pub name: Option<String>,
    /// `clean`, `findings` or `not-scanned` (no complete sweep result for its snapshots under
    /// this catalog version).
    pub scan: String,
    /// Most severe finding of the sweep result.
    pub max_severity: Option<Severity>,
}

/// One instance and its AMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceAudit {
    /// `i-...`.
    pub instance_id: String,
    /// State.
    pub state: String,
    /// AMI.
    pub image_id: String,
    /// AMI owner.
    pub image_owner_id: Option<String>,
    /// AMI owner alias.
    pub image_owner_alias: Option<String>,
    /// Whether `DescribeImages` still shows the AMI (else `DescribeInstanceImageMetadata` told).
    pub image_visible: bool,
    /// Classification.
    pub class: ImageClass,
}

/// The audit of one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionAudit {
    /// Region.
    pub region: String,
    /// `block-new-sharing`, `unblocked`, or why it is unknown.
    pub block_public_access: String,
    /// Allowed AMIs settings.
    pub allowed_images: AllowedImages,
    /// Owned public images.
    pub public_images: Vec<PublicImage>,
    /// Instances (not terminated).
    pub instances: Vec<InstanceAudit>,
    /// Things to act on.
    pub warnings: Vec<String>,
    /// Calls that failed.
    pub errors: Vec<String>,
}

/// How one image ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Complete scan, nothing at or above `--fail-on`.
    Clean,
    /// Findings at or above `--fail-on`.
    Findings,
    /// Scanned, but not completely (nothing at or above `--fail-on` in what was read).
    Incomplete,
    /// Could not be scanned at all.
    Failed,
}

/// A finding, briefly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingBrief {
    /// Rule id.
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Volume and path.
    pub location: String,
    /// Base64 of the path's exact bytes when they are not UTF-8 (as [`Finding::path_bytes`](super::Finding::path_bytes)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// `sha256:` fingerprint of the secret.
    pub fingerprint: String,
}

/// The result of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageOutcome {
    /// Region.
    pub region: String,
    /// `ami-...`.
    pub image_id: String,
    /// Image name.
    pub name: Option<String>,
    /// Launch permission for everyone.
    pub public: bool,
    /// Its snapshots.
    pub snapshots: Vec<String>,
    /// Outcome.
    pub status: ImageStatus,
    /// From the state file (not scanned in this run).
    pub cached: bool,
    /// Most severe finding.
    pub max_severity: Option<Severity>,
    /// Findings by severity.
    pub counts: BTreeMap<Severity, usize>,
    /// Findings at or above `--fail-on`.
    pub at_or_above_fail_on: usize,
    /// Every finding, briefly.
    pub findings: Vec<FindingBrief>,
    /// Why the image failed or is incomplete.
    pub error: Option<String>,
}

/// Totals of a sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    /// Regions swept.
    pub regions: Vec<String>,
    /// Images found.
    pub images: usize,
    /// Public images among them.
    pub public_images: usize,
    /// Images scanned in this run.
    pub scanned: usize,
    /// Images answered from the state file.
    pub cached: usize,
    /// Clean images.
    pub clean: usize,
    /// Images with findings at or above `--fail-on`.
    pub with_findings: usize,
    /// Public images with findings at or above `--fail-on`: the worst result.
    pub public_with_findings: usize,
    /// Incomplete images.
    pub incomplete: usize,
    /// Images that failed.
    pub failed: usize,
    /// Images not reached (interrupted).
    pub not_reached: usize,
    /// The sweep stopped before the end.
    pub interrupted: bool,
    /// The catalog version results are keyed by.
    pub catalog_version: String,
    /// Regions that could not be listed, with why.
    pub region_errors: Vec<String>,
}
