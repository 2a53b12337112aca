//! EC2 Query actions a publish guard calls to undo a share and mark what it did: `CreateTags`
//! (on images and snapshots) and `ModifySnapshotAttribute` (`createVolumePermission` add and
//! remove, in both the `CreateVolumePermission.Add|Remove.N.Group|UserId` form the SDKs send and
//! the older `OperationType` + `UserId.N` / `UserGroup.N` form), with the parameter names, answers
//! and error codes of the EC2 API reference. Snapshot permissions and tags live here, seeded and
//! inspected through [`TestServer`] methods; image tags are the image's `tagSet`.

use crate::ec2_xml::{error, missing, ok};
use crate::http::{Outcome, get, indexed_pairs};
use crate::{TestServer, lock};
use std::collections::HashMap;

/// Who may create volumes from a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotPermissions {
    /// Group `all`: the snapshot is public.
    pub public: bool,
    /// Accounts (`userId`) with a create-volume permission.
    pub accounts: Vec<String>,
}

/// Snapshot attributes and tags, by snapshot id.
#[derive(Debug, Default)]
pub(crate) struct Sharing {
    pub(crate) permissions: HashMap<String, SnapshotPermissions>,
    pub(crate) snapshot_tags: HashMap<String, Vec<(String, String)>>,
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `CreateTags`: `ResourceId.N` with `Tag.N.Key` / `Tag.N.Value`. Images must be images of the
/// request's region owned by the caller; snapshots must be served. A tag key is 1-128 characters
/// and may not start with `aws:`; a value is at most 256.
pub(crate) fn create_tags(ctx: &crate::ec2_fleet::Ctx<'_>) -> Outcome {
    let ids: Vec<String> = indexed_pairs(ctx.form, "ResourceId")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    if ids.is_empty() {
        return missing("resourceIdSet");
    }
    let mut tags = Vec::new();
    for n in 1..=50u32 {
        let Some(key) = get(ctx.form, &format!("Tag.{n}.Key")) else {
            continue;
        };
        let value = get(ctx.form, &format!("Tag.{n}.Value")).unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return error(
                400,
                "InvalidParameterValue",
                &format!("Tag key must be 1-128 characters and value at most 256 (key '{key}')"),
            );
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return error(
                400,
                "InvalidParameterValue",
                "Tag keys starting with 'aws:' are reserved for internal use",
            );
        }
        tags.push((key.to_string(), value.to_string()));
    }
    if tags.is_empty() {
        return missing("tagSet");
    }
    // Check every resource before changing any (the call is all or nothing).
    let mut fleet = lock(&ctx.state.fleet);
    let mut images = Vec::new();
    for id in &ids {
        if id.starts_with("ami-") {
            let Some(i) = fleet.images.iter().position(|i| {
                i.spec.region == ctx.region
                    && i.spec.ami.id == *id
                    && i.spec.state != "deregistered"
            }) else {
                drop(fleet);
                return error(
                    400,
                    "InvalidAMIID.NotFound",
                    &format!("The image id '[{id}]' does not exist"),
                );
            };
            if fleet.images.get(i).map(|i| i.spec.ami.owner_id.as_str()) != Some(ctx.account) {
                drop(fleet);
                return error(
                    403,
                    "UnauthorizedOperation",
                    &format!("You are not authorized to tag {id}"),
                );
            }
            images.push(i);
        } else if id.starts_with("snap-") {
            if ctx.state.snapshot(id).is_none() {
                drop(fleet);
                return error(
                    400,
                    "InvalidSnapshot.NotFound",
                    &format!("The snapshot '{id}' does not exist."),
                );
            }
        } else {
            drop(fleet);
            return error(400, "InvalidID", &format!("The ID '{id}' is not valid"));
        }
    }
    for i in images {
        if let Some(img) = fleet.images.get_mut(i) {
            set_tags(&mut img.spec.ami.tags, &tags);
        }
    }
    drop(fleet);
    let mut sharing = lock(&ctx.state.sharing);
    for id in ids.iter().filter(|i| i.starts_with("snap-")) {
        set_tags(sharing.snapshot_tags.entry(id.clone()).or_default(), &tags);
    }
    drop(sharing);
    ok("CreateTags", "<return>true</return>")
}

/// Add or overwrite each tag, keeping the order of first appearance.
fn set_tags(on: &mut Vec<(String, String)>, tags: &[(String, String)]) {
    for (k, v) in tags {
        match on.iter_mut().find(|(key, _)| key == k) {
            Some(t) => t.1 = v.clone(),
            None => on.push((k.clone(), v.clone())),
        }
    }
}

/// `ModifySnapshotAttribute` for `createVolumePermission`. Removing a permission the snapshot does
/// not have is not an error; adding `all` to an encrypted snapshot is not modelled (the server's
/// snapshots carry no encryption flag).
pub(crate) fn modify_snapshot_attribute(ctx: &crate::ec2_fleet::Ctx<'_>) -> Outcome {
    let id = get(ctx.form, "SnapshotId").unwrap_or("");
    if ctx.state.snapshot(id).is_none() {
        return error(
            400,
            "InvalidSnapshot.NotFound",
            &format!("The snapshot '{id}' does not exist."),
        );
    }
    if let Some(a) = get(ctx.form, "Attribute")
        && a != "createVolumePermission"
    {
        return error(
            400,
            "InvalidParameterValue",
            &format!(
                "Value ({a}) for parameter attribute is invalid. Only createVolumePermission can be modified"
            ),
        );
    }
    let (mut add_groups, mut add_users, mut rm_groups, mut rm_users) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, v) in ctx.form {
        let Some(rest) = k.strip_prefix("CreateVolumePermission.") else {
            continue;
        };
        let (op, rest) = rest.split_once('.').unwrap_or((rest, ""));
        let field = rest.rsplit('.').next().unwrap_or("");
        match (op, field) {
            ("Add", "Group") => add_groups.push(v.clone()),
            ("Add", "UserId") => add_users.push(v.clone()),
            ("Remove", "Group") => rm_groups.push(v.clone()),
            ("Remove", "UserId") => rm_users.push(v.clone()),
            _ => {}
        }
    }
    let groups = || {
        indexed_pairs(ctx.form, "UserGroup")
            .into_iter()
            .chain(indexed_pairs(ctx.form, "GroupName"))
            .map(|(_, v)| v)
    };
    let users = || {
        indexed_pairs(ctx.form, "UserId")
            .into_iter()
            .map(|(_, v)| v)
    };
    match get(ctx.form, "OperationType") {
        Some("add") => {
            add_groups.extend(groups());
            add_users.extend(users());
        }
        Some("remove") => {
            rm_groups.extend(groups());
            rm_users.extend(users());
        }
        Some(other) => {
            return error(
                400,
                "InvalidParameterValue",
                &format!("Value ({other}) for parameter operationType is invalid"),
            );
        }
        None => {}
    }
    if add_groups.iter().chain(&rm_groups).any(|g| g != "all")
        || add_users.iter().chain(&rm_users).any(|u| !is_account(u))
    {
        return error(
            400,
            "InvalidParameterValue",
            "Create volume permissions take the group 'all' or 12-digit account ids",
        );
    }
    if add_groups.is_empty() && add_users.is_empty() && rm_groups.is_empty() && rm_users.is_empty()
    {
        return error(
            400,
            "MissingParameter",
            "No create volume permission change given",
        );
    }
    if (!add_groups.is_empty() || !add_users.is_empty())
        && (!rm_groups.is_empty() || !rm_users.is_empty())
    {
        return error(
            400,
            "InvalidParameterCombination",
            "You cannot both add and remove create volume permissions in one request",
        );
    }
    let mut sharing = lock(&ctx.state.sharing);
    let p = sharing.permissions.entry(id.to_string()).or_default();
    if !add_groups.is_empty() {
        p.public = true;
    }
    if !rm_groups.is_empty() {
        p.public = false;
    }
    for u in add_users {
        if !p.accounts.contains(&u) {
            p.accounts.push(u);
        }
    }
    p.accounts.retain(|u| !rm_users.contains(u));
    drop(sharing);
    ok("ModifySnapshotAttribute", "<return>true</return>")
}

impl TestServer {
    /// Set who may create volumes from `snapshot` (as a `ModifySnapshotAttribute` add did).
    pub fn set_snapshot_permissions(&self, snapshot: &str, p: SnapshotPermissions) {
        lock(&self.state.sharing)
            .permissions
            .insert(snapshot.into(), p);
    }

    /// Who may create volumes from `snapshot` now.
    pub fn snapshot_permissions(&self, snapshot: &str) -> SnapshotPermissions {
        lock(&self.state.sharing)
            .permissions
            .get(snapshot)
            .cloned()
            .unwrap_or_default()
    }

    /// The tags of a snapshot, in order.
    pub fn snapshot_tags(&self, snapshot: &str) -> Vec<(String, String)> {
        lock(&self.state.sharing)
            .snapshot_tags
            .get(snapshot)
            .cloned()
            .unwrap_or_default()
    }

    /// The tags of an image of a region, in order.
    pub fn image_tags(&self, region: &str, id: &str) -> Vec<(String, String)> {
        lock(&self.state.fleet)
            .images
            .iter()
            .find(|i| i.spec.region == region && i.spec.ami.id == id)
            .map(|i| i.spec.ami.tags.clone())
            .unwrap_or_default()
    }
}
