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
    /// Owned by another account of the organisation (an organisation-wide inventory).
    OwnOrg,
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
            ImageClass::OwnOrg => "own-org",
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
    /// The account audited (`--org-role`/`--accounts`); `None` for the caller's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
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
    /// `sweep --report`: the state holds no complete result for its snapshots (a shard that has
    /// not run or not finished, or an image that failed or was incomplete).
    NotScanned,
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
    /// The account it was listed in (`--org-role`/`--accounts`); `None` for the caller's own.
    pub account: Option<String>,
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
    /// The shard swept (`K/N`), when `--shard`/`--shards` chose one.
    pub shard: Option<String>,
    /// Accounts swept (`--org-role`/`--accounts`); empty for the caller's own account.
    pub accounts: Vec<String>,
    /// State objects that could not be read (their images are scanned again), with why.
    pub state_errors: Vec<String>,
    /// `sweep --report`: results read from the state, nothing scanned.
    pub report_only: bool,
}

/// One shard of a sweep (`--shard K/N`): the images whose snapshot set hashes to `index`
/// modulo `count`.
///
/// The hash is 64-bit FNV-1a over the image's snapshot ids, sorted and each followed by a
/// newline byte. It depends on nothing but the ids (not the catalog version, the region, the
/// account or the listing order), so every worker of a sweep puts an image in the same shard,
/// and images with the same snapshots (which share one state entry) land in the same shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// `K`, from 0.
    pub index: u32,
    /// `N`, at least 1.
    pub count: u32,
}

/// Why a shard specification is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shard {0:?}: expected K/N with N >= 1 and 0 <= K < N")]
pub struct ShardError(pub String);

impl Shard {
    /// A shard, checked: `count >= 1` and `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError(format!("{index}/{count}")));
        }
        Ok(Shard { index, count })
    }

    /// [`Shard::hash`] of `snapshot_ids` modulo the count equals the index.
    pub fn contains(&self, snapshot_ids: &[String]) -> bool {
        Shard::hash(snapshot_ids) % u64::from(self.count) == u64::from(self.index)
    }

    /// 64-bit FNV-1a of the sorted snapshot ids, each followed by `\n`.
    pub fn hash(snapshot_ids: &[String]) -> u64 {
        let mut ids: Vec<&str> = snapshot_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for id in ids {
            for b in id.bytes().chain(std::iter::once(b'\n')) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_parse_and_hash_stably() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "0/0", "1", "a/2", "-1/2", "1/4/5"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // FNV-1a 64 of "snap-1\n": a fixed value, so shards never move between versions.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in b"snap-1\n" {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
        assert_eq!(Shard::hash(&ids(&["snap-1"])), h);
        // Order of the mappings does not matter.
        assert_eq!(
            Shard::hash(&ids(&["snap-b", "snap-a"])),
            Shard::hash(&ids(&["snap-a", "snap-b"]))
        );
        // Each image falls in exactly one shard.
        for n in 1..6u32 {
            let set = ids(&["snap-0123", "snap-4567"]);
            let hits = (0..n)
                .filter(|k| Shard::new(*k, n).unwrap().contains(&set))
                .count();
            assert_eq!(hits, 1);
        }
    }
}
