//! EC2 Query actions over the fleet state: `DescribeImages` (owners, ids, filters, pages),
//! `DescribeRegions`, `DescribeInstances`, `DescribeInstanceImageMetadata`,
//! `GetAllowedImagesSettings`, `GetImageBlockPublicAccessState`, `CopyImage`,
//! `DescribeImageAttribute`, `ModifyImageAttribute`, `DeregisterImage` and `DeleteSnapshot`,
//! with the element names of the EC2 API reference.

use crate::ec2_xml::{error, esc, image_xml_dated, is_well_formed_ami_id, ok};
use crate::fleet::{Image, ImageSpec};
use crate::http::{Outcome, get, indexed};
use crate::{AmiSpec, State, lock};
use std::fmt::Write;

/// Most items on one page when the request gives no `MaxResults`.
const DEFAULT_PAGE: usize = 1000;

/// One request: its state, form, region and caller account.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a State,
    pub(crate) form: &'a [(String, String)],
    pub(crate) region: &'a str,
    pub(crate) account: &'a str,
}

/// `Filter.N.Name` with its `Filter.N.Value.M`.
fn filters(form: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for n in 1..=50u32 {
        let Some(name) = get(form, &format!("Filter.{n}.Name")) else {
            continue;
        };
        out.push((
            name.to_string(),
            indexed(form, &format!("Filter.{n}.Value")),
        ));
    }
    out
}

/// The page of `items` the request asks for and the token of the next one.
fn page<T: Clone>(
    ctx: &Ctx<'_>,
    items: &[T],
    forced: Option<usize>,
) -> Result<(Vec<T>, Option<String>), Box<Outcome>> {
    let start = match get(ctx.form, "NextToken") {
        None => 0,
        Some(t) => match t.strip_prefix("tok-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => {
                return Err(Box::new(error(
                    400,
                    "InvalidParameterValue",
                    &format!("The value '{t}' for NextToken is invalid"),
                )));
            }
        },
    };
    let max = get(ctx.form, "MaxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, DEFAULT_PAGE);
    let max = forced.map_or(max, |f| max.min(f.max(1)));
    let end = start.saturating_add(max).min(items.len());
    let slice = items.get(start..end).unwrap_or_default().to_vec();
    let next = (end < items.len()).then(|| format!("tok-{end}"));
    Ok((slice, next))
}

fn next_token_xml(next: Option<String>) -> String {
    next.map(|t| format!("<nextToken>{}</nextToken>", esc(&t)))
        .unwrap_or_default()
}

fn visible(img: &ImageSpec, account: &str) -> bool {
    img.state != "deregistered"
        && (img.ami.owner_id == account
            || img.ami.public
            || img.shared_with.iter().any(|a| a == account))
}

fn matches_owner(img: &ImageSpec, owner: &str, account: &str) -> bool {
    match owner {
        "self" => img.ami.owner_id == account,
        "amazon" | "aws-marketplace" | "aws-backup-vault" => {
            img.owner_alias.as_deref() == Some(owner)
        }
        id => img.ami.owner_id == id,
    }
}

fn matches_filter(img: &ImageSpec, name: &str, values: &[String]) -> Option<bool> {
    let any = |v: &str| values.iter().any(|x| x == v);
    Some(match name {
        "is-public" => any(if img.ami.public { "true" } else { "false" }),
        "state" => any(&img.state),
        "image-id" => any(&img.ami.id),
        "owner-id" => any(&img.ami.owner_id),
        "owner-alias" => img.owner_alias.as_deref().is_some_and(any),
        "name" => any(&img.ami.name),
        _ => return None,
    })
}

/// `DescribeImages`: images seeded with `ServerConfig::amis` are visible in every region;
/// region images follow ownership, public and shared launch permissions.
pub(crate) fn describe_images(ctx: &Ctx<'_>) -> Outcome {
    let ids = indexed(ctx.form, "ImageId");
    if let Some(bad) = ids.iter().find(|id| !is_well_formed_ami_id(id)) {
        return error(
            400,
            "InvalidAMIID.Malformed",
            &format!("Invalid id: \"{bad}\" (expecting \"ami-...\")"),
        );
    }
    let owners = indexed(ctx.form, "Owner");
    let filters = filters(ctx.form);
    let legacy: Vec<ImageSpec> = lock(&ctx.state.amis)
        .iter()
        .map(|a| {
            let mut s = ImageSpec::new(ctx.region, a.clone());
            // Visible to everyone, as before regions existed.
            s.ami.public = a.public;
            s.shared_with.push(ctx.account.to_string());
            s
        })
        .collect();
    let mut fleet = lock(&ctx.state.fleet);
    let mut candidates: Vec<ImageSpec> = legacy;
    candidates.extend(
        fleet
            .images
            .iter()
            .filter(|i| i.spec.region == ctx.region)
            .map(|i| i.spec.clone()),
    );
    let mut found = Vec::new();
    let dates = lock(&ctx.state.gov).dates.clone();
    let include_deprecated = get(ctx.form, "IncludeDeprecated") == Some("true");
    for img in candidates.iter().filter(|i| visible(i, ctx.account)) {
        if !ids.is_empty() && !ids.contains(&img.ami.id) {
            continue;
        }
        // Deprecated images of others are left out unless asked for by id or with
        // `IncludeDeprecated`; an owner always sees its own.
        let deprecation = dates
            .get(&(img.region.clone(), img.ami.id.clone()))
            .and_then(|d| d.deprecation.as_deref());
        if crate::governance::is_deprecated(deprecation)
            && ids.is_empty()
            && !include_deprecated
            && img.ami.owner_id != ctx.account
        {
            continue;
        }
        if !owners.is_empty() && !owners.iter().any(|o| matches_owner(img, o, ctx.account)) {
            continue;
        }
        let mut keep = true;
        for (name, values) in &filters {
            match matches_filter(img, name, values) {
                Some(m) => keep &= m,
                None => {
                    return error(
                        400,
                        "InvalidParameterValue",
                        &format!("The filter '{name}' is invalid"),
                    );
                }
            }
        }
        if keep {
            found.push(img.clone());
        }
    }
    if let Some(missing) = ids
        .iter()
        .find(|id| !found.iter().any(|f| &f.ami.id == *id))
    {
        return error(
            400,
            "InvalidAMIID.NotFound",
            &format!("The image id '[{missing}]' does not exist"),
        );
    }
    let (items, next) = match page(ctx, &found, fleet.page_size) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let mut body = String::from("<imagesSet>");
    for img in &items {
        let d = dates
            .get(&(img.region.clone(), img.ami.id.clone()))
            .cloned()
            .unwrap_or_default();
        image_xml_dated(
            &mut body,
            &img.ami,
            &img.state,
            img.owner_alias.as_deref(),
            (d.creation.as_deref(), d.deprecation.as_deref()),
            &img.product_codes,
        );
        // A pending copy becomes available after a few answers.
        if let Some(rec) = fleet
            .images
            .iter_mut()
            .find(|i| i.spec.region == ctx.region && i.spec.ami.id == img.ami.id)
            && rec.spec.state == "pending"
        {
            rec.pending_polls = rec.pending_polls.saturating_sub(1);
            if rec.pending_polls == 0 {
                rec.spec.state = "available".into();
            }
        }
    }
    body.push_str("</imagesSet>");
    body.push_str(&next_token_xml(next));
    drop(fleet);
    ok("DescribeImages", &body)
}

/// `DescribeRegions`: enabled regions, or all with `AllRegions=true`; `RegionName.N` narrows.
pub(crate) fn describe_regions(ctx: &Ctx<'_>) -> Outcome {
    let all = get(ctx.form, "AllRegions") == Some("true");
    let names = indexed(ctx.form, "RegionName");
    let regions = lock(&ctx.state.fleet).regions.clone();
    let mut body = String::from("<regionInfo>");
    for r in regions {
        if !all && !names.contains(&r.name) && r.opt_in_status == "not-opted-in" {
            continue;
        }
        if !names.is_empty() && !names.contains(&r.name) {
            continue;
        }
        let _ = write!(
            body,
            "<item><regionName>{n}</regionName><regionEndpoint>ec2.{n}.amazonaws.com</regionEndpoint><optInStatus>{s}</optInStatus></item>",
            n = esc(&r.name),
            s = esc(&r.opt_in_status)
        );
    }
    body.push_str("</regionInfo>");
    ok("DescribeRegions", &body)
}

fn state_code(state: &str) -> u16 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        _ => 80,
    }
}

fn instances_of(ctx: &Ctx<'_>) -> Result<Vec<crate::InstanceSpec>, Box<Outcome>> {
    let ids = indexed(ctx.form, "InstanceId");
    let mut out = Vec::new();
    let all = lock(&ctx.state.fleet).instances.clone();
    for i in all
        .into_iter()
        .filter(|i| i.region == ctx.region && i.owner_id == ctx.account)
    {
        if !ids.is_empty() && !ids.contains(&i.instance_id) {
            continue;
        }
        let mut keep = true;
        for (name, values) in filters(ctx.form) {
            match name.as_str() {
                "instance-state-name" => keep &= values.contains(&i.state),
                "image-id" => keep &= values.contains(&i.image_id),
                _ => {
                    return Err(Box::new(error(
                        400,
                        "InvalidParameterValue",
                        &format!("The filter '{name}' is invalid"),
                    )));
                }
            }
        }
        if keep {
            out.push(i);
        }
    }
    if let Some(missing) = ids
        .iter()
        .find(|id| !out.iter().any(|i| &i.instance_id == *id))
    {
        return Err(Box::new(error(
            400,
            "InvalidInstanceID.NotFound",
            &format!("The instance ID '{missing}' does not exist"),
        )));
    }
    Ok(out)
}

fn instance_state_xml(state: &str) -> String {
    format!(
        "<instanceState><code>{}</code><name>{}</name></instanceState>",
        state_code(state),
        esc(state)
    )
}

/// `DescribeInstances`: one reservation per instance.
pub(crate) fn describe_instances(ctx: &Ctx<'_>) -> Outcome {
    let all = match instances_of(ctx) {
        Ok(v) => v,
        Err(e) => return *e,
    };
    let forced = lock(&ctx.state.fleet).page_size;
    let (items, next) = match page(ctx, &all, forced) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let mut body = String::from("<reservationSet>");
    for i in &items {
        let _ = write!(
            body,
            "<item><reservationId>r-{rid}</reservationId><ownerId>{owner}</ownerId><groupSet/><instancesSet><item><instanceId>{id}</instanceId><imageId>{image}</imageId>{st}<instanceType>t3.micro</instanceType><launchTime>2026-01-01T00:00:00.000Z</launchTime><placement><availabilityZone>{region}a</availabilityZone></placement></item></instancesSet></item>",
            rid = esc(i.instance_id.trim_start_matches("i-")),
            owner = esc(&i.owner_id),
            id = esc(&i.instance_id),
            image = esc(&i.image_id),
            st = instance_state_xml(&i.state),
            region = esc(&i.region),
        );
    }
    body.push_str("</reservationSet>");
    body.push_str(&next_token_xml(next));
    ok("DescribeInstances", &body)
}

/// `DescribeInstanceImageMetadata`: what each instance's AMI was, also once it is deregistered
/// or no longer shared.
pub(crate) fn describe_instance_image_metadata(ctx: &Ctx<'_>) -> Outcome {
    let all = match instances_of(ctx) {
        Ok(v) => v,
        Err(e) => return *e,
    };
    let fleet = lock(&ctx.state.fleet);
    let legacy = lock(&ctx.state.amis).clone();
    let (items, next) = match page(ctx, &all, fleet.page_size) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let mut body = String::from("<instanceImageMetadataSet>");
    for i in &items {
        let img: Option<ImageSpec> = fleet
            .images
            .iter()
            .map(|r: &Image| &r.spec)
            .find(|s| s.region == i.region && s.ami.id == i.image_id)
            .cloned()
            .or_else(|| {
                legacy
                    .iter()
                    .find(|a: &&AmiSpec| a.id == i.image_id)
                    .map(|a| ImageSpec::new(&i.region, a.clone()))
            });
        let meta = match &img {
            Some(s) => format!(
                "<imageMetadata><imageId>{id}</imageId><name>{name}</name><imageOwnerId>{owner}</imageOwnerId><imageState>{st}</imageState>{alias}<creationDate>2024-01-01T00:00:00.000Z</creationDate><isPublic>{public}</isPublic></imageMetadata>",
                id = esc(&s.ami.id),
                name = esc(&s.ami.name),
                owner = esc(&s.ami.owner_id),
                st = esc(&s.state),
                alias = s
                    .owner_alias
                    .as_deref()
                    .map(|a| format!("<imageOwnerAlias>{}</imageOwnerAlias>", esc(a)))
                    .unwrap_or_default(),
                public = s.ami.public,
            ),
            None => format!(
                "<imageMetadata><imageId>{}</imageId></imageMetadata>",
                esc(&i.image_id)
            ),
        };
        let _ = write!(
            body,
            "<item><instanceId>{id}</instanceId><instanceType>t3.micro</instanceType><launchTime>2026-01-01T00:00:00.000Z</launchTime><availabilityZone>{region}a</availabilityZone>{st}<instanceOwnerId>{owner}</instanceOwnerId>{meta}</item>",
            id = esc(&i.instance_id),
            region = esc(&i.region),
            st = instance_state_xml(&i.state),
            owner = esc(&i.owner_id),
        );
    }
    drop(fleet);
    body.push_str("</instanceImageMetadataSet>");
    body.push_str(&next_token_xml(next));
    ok("DescribeInstanceImageMetadata", &body)
}

/// `GetAllowedImagesSettings`: `disabled` with no criteria unless set (every criterion field:
/// `governance.rs`).
pub(crate) fn get_allowed_images_settings(ctx: &Ctx<'_>) -> Outcome {
    crate::governance::get_allowed_images_settings(ctx.state, ctx.region)
}

/// `GetImageBlockPublicAccessState`: `unblocked` unless set.
pub(crate) fn get_image_block_public_access_state(ctx: &Ctx<'_>) -> Outcome {
    let s = lock(&ctx.state.fleet)
        .block_public_access
        .get(ctx.region)
        .cloned()
        .unwrap_or_else(|| "unblocked".into());
    ok(
        "GetImageBlockPublicAccessState",
        &format!(
            "<imageBlockPublicAccessState>{}</imageBlockPublicAccessState><managedBy>account</managedBy>",
            esc(&s)
        ),
    )
}

fn not_found(id: &str) -> Outcome {
    error(
        400,
        "InvalidAMIID.NotFound",
        &format!("The image id '[{id}]' does not exist"),
    )
}

/// `CopyImage` (same or another region into the request's region): a new image, `pending` for a
/// few `DescribeImages` answers, whose snapshots are served copies of the source's.
pub(crate) fn copy_image(ctx: &Ctx<'_>) -> Outcome {
    let (Some(src_id), Some(src_region), Some(name)) = (
        get(ctx.form, "SourceImageId"),
        get(ctx.form, "SourceRegion"),
        get(ctx.form, "Name"),
    ) else {
        return error(
            400,
            "MissingParameter",
            "SourceImageId, SourceRegion and Name are required",
        );
    };
    let legacy = lock(&ctx.state.amis)
        .iter()
        .find(|a| a.id == src_id)
        .cloned();
    let mut fleet = lock(&ctx.state.fleet);
    let src = fleet
        .images
        .iter()
        .map(|i| &i.spec)
        .find(|s| s.region == src_region && s.ami.id == src_id && visible(s, ctx.account))
        .map(|s| s.ami.clone())
        .or(legacy);
    let Some(src) = src else {
        drop(fleet);
        return not_found(src_id);
    };
    let mut ami = src.clone();
    ami.id = fleet.fresh_id("ami-");
    ami.name = name.into();
    ami.owner_id = ctx.account.into();
    ami.public = false;
    let mut copies = Vec::new();
    for m in &mut ami.mappings {
        if let Some(s) = &m.snapshot_id {
            let new = fleet.fresh_id("snap-");
            copies.push((s.clone(), new.clone()));
            m.snapshot_id = Some(new);
        }
    }
    let polls = fleet.copy_pending_polls;
    let id = ami.id.clone();
    let mut spec = ImageSpec::new(ctx.region, ami);
    spec.state = if polls == 0 { "available" } else { "pending" }.into();
    fleet.images.push(Image {
        spec,
        pending_polls: polls,
    });
    drop(fleet);
    for (from, to) in copies {
        ctx.state.copy_snapshot(&from, &to);
    }
    ok("CopyImage", &format!("<imageId>{}</imageId>", esc(&id)))
}

/// The index of an image of the region that the caller owns, or the error to answer.
fn owned(ctx: &Ctx<'_>, fleet: &crate::fleet::Fleet, id: &str) -> Result<usize, Box<Outcome>> {
    let Some(i) = fleet.images.iter().position(|i| {
        i.spec.region == ctx.region && i.spec.ami.id == id && i.spec.state != "deregistered"
    }) else {
        return Err(Box::new(not_found(id)));
    };
    if fleet.images.get(i).map(|i| i.spec.ami.owner_id.as_str()) != Some(ctx.account) {
        return Err(Box::new(error(
            403,
            "AuthFailure",
            &format!("Not authorized for image:{id}"),
        )));
    }
    Ok(i)
}

/// `DescribeImageAttribute` with `Attribute=launchPermission`.
pub(crate) fn describe_image_attribute(ctx: &Ctx<'_>) -> Outcome {
    let id = get(ctx.form, "ImageId").unwrap_or("");
    if get(ctx.form, "Attribute") != Some("launchPermission") {
        return error(
            400,
            "InvalidParameterValue",
            "This server answers only Attribute=launchPermission",
        );
    }
    let fleet = lock(&ctx.state.fleet);
    let i = match owned(ctx, &fleet, id) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    let mut body = format!("<imageId>{}</imageId><launchPermission>", esc(id));
    if let Some(img) = fleet.images.get(i) {
        if img.spec.ami.public {
            body.push_str("<item><group>all</group></item>");
        }
        for a in &img.spec.shared_with {
            let _ = write!(body, "<item><userId>{}</userId></item>", esc(a));
        }
    }
    drop(fleet);
    body.push_str("</launchPermission>");
    ok("DescribeImageAttribute", &body)
}

/// `ModifyImageAttribute`: `LaunchPermission.Add.N.Group|UserId`,
/// `LaunchPermission.Remove.N.*`, or `OperationType` with `UserGroup.N` / `UserId.N`.
pub(crate) fn modify_image_attribute(ctx: &Ctx<'_>) -> Outcome {
    let id = get(ctx.form, "ImageId").unwrap_or("");
    let mut fleet = lock(&ctx.state.fleet);
    let i = match owned(ctx, &fleet, id) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    let mut add_groups = Vec::new();
    let mut add_users = Vec::new();
    let mut rm_groups = Vec::new();
    let mut rm_users = Vec::new();
    for (k, v) in ctx.form {
        let Some(rest) = k.strip_prefix("LaunchPermission.") else {
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
    match get(ctx.form, "OperationType") {
        Some("add") => {
            add_groups.extend(indexed(ctx.form, "UserGroup"));
            add_users.extend(indexed(ctx.form, "UserId"));
        }
        Some("remove") => {
            rm_groups.extend(indexed(ctx.form, "UserGroup"));
            rm_users.extend(indexed(ctx.form, "UserId"));
        }
        _ => {}
    }
    if add_groups.iter().chain(&rm_groups).any(|g| g != "all")
        || add_users
            .iter()
            .chain(&rm_users)
            .any(|u| u.len() != 12 || !u.bytes().all(|b| b.is_ascii_digit()))
    {
        return error(
            400,
            "InvalidParameterValue",
            "Launch permissions take the group 'all' or 12-digit account ids",
        );
    }
    if add_groups.is_empty() && add_users.is_empty() && rm_groups.is_empty() && rm_users.is_empty()
    {
        return error(400, "MissingParameter", "No launch permission change given");
    }
    if let Some(img) = fleet.images.get_mut(i) {
        if !add_groups.is_empty() {
            img.spec.ami.public = true;
        }
        if !rm_groups.is_empty() {
            img.spec.ami.public = false;
        }
        for u in add_users {
            if !img.spec.shared_with.contains(&u) {
                img.spec.shared_with.push(u);
            }
        }
        img.spec.shared_with.retain(|u| !rm_users.contains(u));
    }
    drop(fleet);
    ok("ModifyImageAttribute", "<return>true</return>")
}

/// `DeregisterImage`: the image stays known (state `deregistered`) but is no longer described.
pub(crate) fn deregister_image(ctx: &Ctx<'_>) -> Outcome {
    let id = get(ctx.form, "ImageId").unwrap_or("");
    let mut fleet = lock(&ctx.state.fleet);
    let i = match owned(ctx, &fleet, id) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    if let Some(img) = fleet.images.get_mut(i) {
        img.spec.state = "deregistered".into();
    }
    drop(fleet);
    ok("DeregisterImage", "<return>true</return>")
}

/// `DeleteSnapshot`: refused while a registered image of the region uses it.
pub(crate) fn delete_snapshot(ctx: &Ctx<'_>) -> Outcome {
    let id = get(ctx.form, "SnapshotId").unwrap_or("");
    let mut fleet = lock(&ctx.state.fleet);
    let in_use = fleet.images.iter().find(|i| {
        i.spec.state != "deregistered"
            && i.spec
                .ami
                .mappings
                .iter()
                .any(|m| m.snapshot_id.as_deref() == Some(id))
    });
    if let Some(img) = in_use {
        let msg = format!(
            "The snapshot {id} is currently in use by {}",
            img.spec.ami.id
        );
        drop(fleet);
        return error(400, "InvalidSnapshot.InUse", &msg);
    }
    if !ctx.state.remove_snapshot(id) {
        drop(fleet);
        return error(
            400,
            "InvalidSnapshot.NotFound",
            &format!("The snapshot '{id}' does not exist."),
        );
    }
    fleet.deleted_snapshots.push(id.to_string());
    drop(fleet);
    ok("DeleteSnapshot", "<return>true</return>")
}
