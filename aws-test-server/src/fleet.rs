//! EC2 state for fleet workflows: regions, images per region (with owners, aliases, launch
//! permissions and a lifecycle), instances, account posture settings, and a log of every EC2
//! call, seeded and inspected through [`TestServer`] methods.
//!
//! Regions are told apart by the SigV4 credential scope of each request, so one endpoint URL
//! serves them all. The caller's account comes from its access key id
//! ([`TestServer::set_account`]; [`DEFAULT_ACCOUNT`] otherwise).

use crate::{AmiSpec, Snapshot, State, TestServer, lock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The account of callers whose access key has no account set.
pub const DEFAULT_ACCOUNT: &str = "111122223333";
/// The region of a request without a readable credential scope.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A region answered by `DescribeRegions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSpec {
    /// `us-west-2`.
    pub name: String,
    /// `opt-in-not-required`, `opted-in` or `not-opted-in` (the last is listed only with
    /// `AllRegions=true`).
    pub opt_in_status: String,
}

/// An image in one region, with what fleet calls need beyond [`AmiSpec`].
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The region it lives in.
    pub region: String,
    /// Id, name, owner, public flag, mappings.
    pub ami: AmiSpec,
    /// `imageOwnerAlias`: `amazon`, `aws-marketplace`, or none.
    pub owner_alias: Option<String>,
    /// `available`, `pending`, `failed`, `deregistered` (invisible to `DescribeImages`, still
    /// known to `DescribeInstanceImageMetadata`).
    pub state: String,
    /// Accounts with a launch permission (`userId`).
    pub shared_with: Vec<String>,
    /// AWS Marketplace product codes (`productCodes`, each of type `marketplace`).
    pub product_codes: Vec<String>,
}

impl ImageSpec {
    /// An available image in `region`.
    pub fn new(region: &str, ami: AmiSpec) -> Self {
        ImageSpec {
            region: region.into(),
            ami,
            owner_alias: None,
            state: "available".into(),
            shared_with: Vec::new(),
            product_codes: Vec::new(),
        }
    }
}

/// A running (or stopped) instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The region.
    pub region: String,
    /// `i-...`.
    pub instance_id: String,
    /// The AMI it was launched from.
    pub image_id: String,
    /// `running`, `stopped`, ...
    pub state: String,
    /// The owning account.
    pub owner_id: String,
}

/// Allowed AMIs settings of a region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedImagesSpec {
    /// `enabled`, `disabled` or `audit-mode`.
    pub state: String,
    /// One criterion per entry: the image providers it allows (`amazon`, `aws-marketplace`,
    /// account ids).
    pub image_providers: Vec<Vec<String>>,
}

/// One EC2 request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Call {
    /// From the credential scope.
    pub region: String,
    /// `Action`.
    pub action: String,
    /// Every form parameter.
    pub params: Vec<(String, String)>,
}

/// What a test sees of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageView {
    /// State (`available`, `pending`, `deregistered`).
    pub state: String,
    /// Launch permission for `all`.
    pub public: bool,
    /// Accounts with a launch permission.
    pub shared_with: Vec<String>,
    /// Snapshot ids of its mappings.
    pub snapshots: Vec<String>,
    /// Owner.
    pub owner_id: String,
}

pub(crate) struct Image {
    pub(crate) spec: ImageSpec,
    /// `DescribeImages` answers left while `pending` (copies).
    pub(crate) pending_polls: u32,
}

pub(crate) struct Fleet {
    pub(crate) regions: Vec<RegionSpec>,
    pub(crate) images: Vec<Image>,
    pub(crate) instances: Vec<InstanceSpec>,
    pub(crate) allowed: HashMap<String, AllowedImagesSpec>,
    pub(crate) block_public_access: HashMap<String, String>,
    pub(crate) accounts: HashMap<String, String>,
    pub(crate) calls: Vec<Ec2Call>,
    pub(crate) next_id: u64,
    pub(crate) copy_pending_polls: u32,
    pub(crate) page_size: Option<usize>,
    /// Snapshot id prefix -> `GetSnapshotBlock` calls allowed before every further one fails.
    pub(crate) fail_gets_after: Vec<(String, u64)>,
    pub(crate) deleted_snapshots: Vec<String>,
}

impl Default for Fleet {
    fn default() -> Self {
        let region = |n: &str, s: &str| RegionSpec {
            name: n.into(),
            opt_in_status: s.into(),
        };
        Fleet {
            regions: vec![
                region("us-east-1", "opt-in-not-required"),
                region("us-west-2", "opt-in-not-required"),
                region("eu-west-1", "opt-in-not-required"),
                region("af-south-1", "not-opted-in"),
            ],
            images: Vec::new(),
            instances: Vec::new(),
            allowed: HashMap::new(),
            block_public_access: HashMap::new(),
            accounts: HashMap::new(),
            calls: Vec::new(),
            next_id: 1,
            copy_pending_polls: 2,
            page_size: None,
            fail_gets_after: Vec::new(),
            deleted_snapshots: Vec::new(),
        }
    }
}

/// The region of a request: its credential scope's, or [`DEFAULT_REGION`] when it has none.
pub(crate) fn region_or_default(region: &str) -> &str {
    if region.is_empty() {
        DEFAULT_REGION
    } else {
        region
    }
}

impl Fleet {
    /// Log a call for `TestServer::ec2_calls` (EC2 actions as they are, other services'
    /// prefixed: `autoscaling:…`, `sns:…`); bounded: a test server keeps at most 100,000.
    pub(crate) fn record(&mut self, region: &str, action: String, params: Vec<(String, String)>) {
        if self.calls.len() < 100_000 {
            self.calls.push(crate::Ec2Call {
                region: region.into(),
                action,
                params,
            });
        }
    }

    pub(crate) fn account_of(&self, akid: &str) -> String {
        self.accounts
            .get(akid)
            .cloned()
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string())
    }

    /// A fresh id with 17 hex digits after `prefix` and a leading `c` (copies).
    pub(crate) fn fresh_id(&mut self, prefix: &str) -> String {
        let n = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        format!("{prefix}c{n:016x}")
    }
}

impl State {
    /// Whether this `GetSnapshotBlock` must fail (`fail_gets_after`), counting it.
    pub(crate) fn get_should_fail(&self, snap_id: &str) -> bool {
        let limit = lock(&self.fleet)
            .fail_gets_after
            .iter()
            .find(|(p, _)| snap_id.starts_with(p.as_str()))
            .map(|(_, n)| *n);
        let Some(limit) = limit else { return false };
        let calls = lock(&self.accounting)
            .get(snap_id)
            .map(crate::Accounting::get_calls)
            .unwrap_or(0);
        calls > limit
    }

    /// Serve `from` again as `to` (a copied snapshot), with no forced errors.
    pub(crate) fn copy_snapshot(&self, from: &str, to: &str) -> bool {
        let Some(src) = self.snapshot(from) else {
            return false;
        };
        let Ok(file) = src.file.try_clone() else {
            return false;
        };
        let mut spec = src.spec.clone();
        spec.id = to.into();
        spec.list_error = None;
        spec.get_error = None;
        let copy = Snapshot {
            spec,
            file,
            file_len: src.file_len,
            volume_gib: src.volume_gib,
            listed: src.listed.clone(),
            checksums: src.checksums.clone(),
        };
        self.snapshots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(to.into(), Arc::new(copy));
        true
    }

    /// Stop serving a snapshot; false if it was not served.
    pub(crate) fn remove_snapshot(&self, id: &str) -> bool {
        self.snapshots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id)
            .is_some()
    }
}

impl TestServer {
    /// Add (or replace, by region and id) an image in a region.
    pub fn add_image(&self, image: ImageSpec) {
        let mut f = lock(&self.state.fleet);
        f.images
            .retain(|i| !(i.spec.region == image.region && i.spec.ami.id == image.ami.id));
        f.images.push(Image {
            spec: image,
            pending_polls: 0,
        });
    }

    /// Add an instance.
    pub fn add_instance(&self, instance: InstanceSpec) {
        lock(&self.state.fleet).instances.push(instance);
    }

    /// Replace the regions `DescribeRegions` knows.
    pub fn set_regions(&self, regions: Vec<RegionSpec>) {
        lock(&self.state.fleet).regions = regions;
    }

    /// Set the Allowed AMIs settings of a region (default: `disabled`, no criteria).
    pub fn set_allowed_images(&self, region: &str, settings: AllowedImagesSpec) {
        lock(&self.state.fleet)
            .allowed
            .insert(region.into(), settings);
    }

    /// Set the image block public access state of a region (default `unblocked`).
    pub fn set_block_public_access(&self, region: &str, state: &str) {
        lock(&self.state.fleet)
            .block_public_access
            .insert(region.into(), state.into());
    }

    /// Calls signed with access key `akid` act as `account`.
    pub fn set_account(&self, akid: &str, account: &str) {
        lock(&self.state.fleet)
            .accounts
            .insert(akid.into(), account.into());
    }

    /// How many `DescribeImages` answers show a copy as `pending` before it is `available`
    /// (default 2).
    pub fn set_copy_pending_polls(&self, n: u32) {
        lock(&self.state.fleet).copy_pending_polls = n;
    }

    /// At most `n` items per page of `DescribeImages`, `DescribeInstances` and
    /// `DescribeInstanceImageMetadata`, whatever `MaxResults` says.
    pub fn set_ec2_page_size(&self, n: Option<usize>) {
        lock(&self.state.fleet).page_size = n;
    }

    /// Every `GetSnapshotBlock` of a snapshot whose id starts with `prefix` fails with
    /// `AccessDeniedException` once `n` calls for that snapshot were answered (a failure in the
    /// middle of a scan). Copies made by `CopyImage` have ids starting with `snap-c`.
    pub fn fail_gets_after(&self, prefix: &str, n: u64) {
        lock(&self.state.fleet)
            .fail_gets_after
            .push((prefix.into(), n));
    }

    /// Every EC2 call so far, in order.
    pub fn ec2_calls(&self) -> Vec<Ec2Call> {
        lock(&self.state.fleet).calls.clone()
    }

    /// How many calls of `action` reached the server.
    pub fn ec2_call_count(&self, action: &str) -> usize {
        lock(&self.state.fleet)
            .calls
            .iter()
            .filter(|c| c.action == action)
            .count()
    }

    /// An image of a region as it stands.
    pub fn image(&self, region: &str, id: &str) -> Option<ImageView> {
        let f = lock(&self.state.fleet);
        f.images
            .iter()
            .find(|i| i.spec.ami.id == id && i.spec.region == region)
            .map(|i| ImageView {
                state: i.spec.state.clone(),
                public: i.spec.ami.public,
                shared_with: i.spec.shared_with.clone(),
                snapshots: i
                    .spec
                    .ami
                    .mappings
                    .iter()
                    .filter_map(|m| m.snapshot_id.clone())
                    .collect(),
                owner_id: i.spec.ami.owner_id.clone(),
            })
    }

    /// Ids of the images of a region made by `CopyImage`, with their state.
    pub fn copies(&self, region: &str) -> BTreeMap<String, String> {
        lock(&self.state.fleet)
            .images
            .iter()
            .filter(|i| i.spec.region == region && i.spec.ami.id.starts_with("ami-c"))
            .map(|i| (i.spec.ami.id.clone(), i.spec.state.clone()))
            .collect()
    }

    /// Whether a snapshot is served.
    pub fn has_snapshot(&self, id: &str) -> bool {
        self.state.snapshot(id).is_some()
    }

    /// Snapshots removed by `DeleteSnapshot`, in order.
    pub fn deleted_snapshots(&self) -> Vec<String> {
        lock(&self.state.fleet).deleted_snapshots.clone()
    }
}
