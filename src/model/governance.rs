//! What `amiscan inventory` and `amiscan allowlist` produce, as plain data: images in use or
//! owned and the workloads on them (instances, launch templates, Auto Scaling groups, launch
//! configurations), dependencies at risk, golden-image drift, and Allowed AMIs criteria in the
//! exact shape of the EC2 API (`ImageCriteria` of `ReplaceImageCriteriaInAllowedImagesSettings`).
//! The AWS layer fills it (`aws::inventory`, `aws::allowlist`), the writers format it
//! (`report::governance`).

use super::Severity;
pub use super::fleet::ImageClass;
use serde::{Deserialize, Serialize};

/// What uses an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// A running or stopped instance.
    Instance,
    /// A launch template version (its default and latest versions are read).
    LaunchTemplate,
    /// An Auto Scaling group (through a launch template or a launch configuration).
    AutoScalingGroup,
    /// A launch configuration.
    LaunchConfiguration,
}

impl WorkloadKind {
    /// The name used in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Instance => "instance",
            WorkloadKind::LaunchTemplate => "launch-template",
            WorkloadKind::AutoScalingGroup => "auto-scaling-group",
            WorkloadKind::LaunchConfiguration => "launch-configuration",
        }
    }

    /// Whether the next launch comes from it (templates, groups, configurations), as opposed to
    /// an instance already running.
    pub fn launches(self) -> bool {
        self != WorkloadKind::Instance
    }
}

/// One user of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Kind.
    pub kind: WorkloadKind,
    /// `i-...`, `lt-...:VERSION`, the group's or configuration's name.
    pub id: String,
    /// The template's name, when the id is not a name.
    pub name: Option<String>,
    /// How it reaches the image: `default, latest version 3`, `launch template web $Default (v3)`,
    /// `launch configuration web-lc`, the instance state.
    pub detail: String,
    /// The AMI, when the reference resolves to one (`None`: an SSM parameter, a missing template
    /// version).
    pub image_id: Option<String>,
}

/// The sweep result of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanResult {
    /// `clean`, `findings`, `not-scanned`, `older-catalog` (scanned under another catalog
    /// version), or `unreadable` (the image is gone).
    pub status: String,
    /// Most severe finding of the result.
    pub max_severity: Option<Severity>,
    /// When it was scanned (seconds since the epoch).
    pub scanned_at: Option<u64>,
}

/// An image in use or owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryImage {
    /// `ami-...`.
    pub image_id: String,
    /// Name.
    pub name: Option<String>,
    /// Owner account.
    pub owner_id: Option<String>,
    /// `amazon`, `aws-marketplace`, ...
    pub owner_alias: Option<String>,
    /// Where it comes from (audit's classification).
    pub class: ImageClass,
    /// Launch permission for everyone (`None`: unknown, the image is gone).
    pub public: Option<bool>,
    /// Whether `DescribeImages` still shows it.
    pub exists: bool,
    /// `available`, `deregistered`, ...
    pub state: Option<String>,
    /// Creation date (RFC 3339).
    pub creation_date: Option<String>,
    /// Deprecation time (RFC 3339), when set.
    pub deprecation_time: Option<String>,
    /// The deprecation time has passed.
    pub deprecated: bool,
    /// Golden-image lineage (owner and name stem, or the lineage tag's value).
    pub lineage: Option<String>,
    /// AWS Marketplace product codes (what `MarketplaceProductCodes` criteria match).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub product_codes: Vec<String>,
    /// Last sweep result.
    pub scan: ScanResult,
    /// Workloads on it, by index into [`RegionInventory::workloads`].
    pub used_by: Vec<usize>,
}

/// A launch source that depends on an image it does not control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtRisk {
    /// Kind of the workload.
    pub kind: WorkloadKind,
    /// Its id.
    pub workload: String,
    /// The image.
    pub image_id: String,
    /// Its owner, when known.
    pub owner_id: Option<String>,
    /// Why (`public`, `deprecated`, `gone`), each with its explanation in `why`.
    pub reasons: Vec<String>,
    /// The explanation of each reason.
    pub why: Vec<String>,
    /// What to do.
    pub fix: String,
}

/// Workloads on a superseded version of a golden image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The lineage.
    pub lineage: String,
    /// The superseded version.
    pub image_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its creation date.
    pub creation_date: Option<String>,
    /// Its age in whole days.
    pub age_days: Option<u64>,
    /// Newer versions in the lineage.
    pub versions_behind: usize,
    /// The newest version.
    pub latest_image_id: String,
    /// Its creation date.
    pub latest_creation_date: Option<String>,
    /// The workloads on the superseded version (ids).
    pub workloads: Vec<String>,
}

/// `CreationDateCondition` of an image criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreationDateCondition {
    /// Images created at most this many days ago.
    pub maximum_days_since_created: u32,
}

/// `DeprecationTimeCondition` of an image criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeprecationTimeCondition {
    /// Images deprecated at most this many days ago (or not deprecated).
    pub maximum_days_since_deprecated: u32,
}

/// One Allowed AMIs criterion, in the shape of the EC2 API (`ImageCriterionRequest`): an image
/// matches when it satisfies every field given; it is allowed when it matches any criterion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ImageCriterion {
    /// `amazon`, `aws-marketplace`, `aws-backup-vault`, `none`, account ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_providers: Vec<String>,
    /// Image names, `*` and `?` wildcards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_names: Vec<String>,
    /// AWS Marketplace product codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marketplace_product_codes: Vec<String>,
    /// Maximum age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date_condition: Option<CreationDateCondition>,
    /// Maximum time since deprecation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_time_condition: Option<DeprecationTimeCondition>,
}

/// The Allowed AMIs settings of a region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AllowedImagesSettings {
    /// `enabled`, `audit-mode` or `disabled`.
    pub state: String,
    /// The criteria.
    #[serde(default)]
    pub image_criteria: Vec<ImageCriterion>,
}

impl RegionInventory {
    /// Nothing inventoried yet in `account` and `region`.
    pub fn empty(account: &str, region: &str) -> Self {
        RegionInventory {
            account: account.to_string(),
            region: region.to_string(),
            allowed_images: None,
            images: Vec::new(),
            workloads: Vec::new(),
            at_risk: Vec::new(),
            drift: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl From<&AllowedImagesSettings> for super::fleet::AllowedImages {
    /// The providers of each criterion (what audit's classification reads).
    fn from(s: &AllowedImagesSettings) -> Self {
        super::fleet::AllowedImages {
            state: s.state.clone(),
            image_providers: s
                .image_criteria
                .iter()
                .map(|c| c.image_providers.clone())
                .collect(),
        }
    }
}

/// The inventory of one account in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionInventory {
    /// Account id (`unknown` when it could not be told).
    pub account: String,
    /// Region.
    pub region: String,
    /// Allowed AMIs settings now.
    pub allowed_images: Option<AllowedImagesSettings>,
    /// Images in use or owned.
    pub images: Vec<InventoryImage>,
    /// Everything that uses an image.
    pub workloads: Vec<Workload>,
    /// Launch sources on images they do not control, worst first.
    pub at_risk: Vec<AtRisk>,
    /// Workloads on superseded golden-image versions, oldest first.
    pub drift: Vec<Drift>,
    /// Things to act on that are neither risk nor drift (unresolvable references, ...).
    pub warnings: Vec<String>,
    /// Calls that failed: the inventory of this region is incomplete.
    pub errors: Vec<String>,
}

/// Why an image would not be allowed, or `None` when it would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// Account.
    pub account: String,
    /// Region.
    pub region: String,
    /// Kind of the workload.
    pub kind: WorkloadKind,
    /// Workload id.
    pub workload: String,
    /// The image.
    pub image_id: String,
    /// Its owner.
    pub owner_id: Option<String>,
    /// Why it does not match.
    pub reason: String,
}

/// One change `allowlist apply` makes (or would make) in a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsChange {
    /// Account.
    pub account: String,
    /// Region.
    pub region: String,
    /// `ReplaceImageCriteriaInAllowedImagesSettings` or `EnableAllowedImagesSettings`.
    pub action: String,
    /// The value before.
    pub from: serde_json::Value,
    /// The value after.
    pub to: serde_json::Value,
}
