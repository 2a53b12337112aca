//! The judgements of AMI governance, pure functions over the inventory: last scan result,
//! golden-image lineages and drift, dependencies at risk, and Allowed AMIs — whether criteria
//! allow an image (the EC2 rules: criteria are OR-ed, the fields of one criterion AND-ed), the
//! proposal from what is in use and trusted, the simulation of enforcing it, the diff of
//! settings, and the equivalent Organizations declarative policy.

use super::state::{SweepState, key};
use crate::model::Severity;
use crate::model::governance::{
    AllowedImagesSettings, AtRisk, Blocked, CreationDateCondition, DeprecationTimeCondition, Drift,
    ImageClass, ImageCriterion, InventoryImage, RegionInventory, ScanResult, SettingsChange,
    Workload, WorkloadKind,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const DAY: i64 = 86_400;

/// An image as governance needs it.
#[derive(Debug, Clone)]
pub(crate) struct GovImage {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) owner_id: Option<String>,
    pub(crate) owner_alias: Option<String>,
    pub(crate) public: bool,
    pub(crate) state: Option<String>,
    pub(crate) creation_date: Option<String>,
    pub(crate) deprecation_time: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) snapshot_ids: Vec<String>,
    pub(crate) product_codes: Vec<String>,
}

/// Seconds since the epoch of an RFC 3339 time.
pub(crate) fn epoch(s: &str) -> Option<i64> {
    aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|d| d.secs())
}

/// The last sweep result of an image with these snapshots: under this catalog version, then a
/// quick scan, then any other catalog version.
pub(crate) fn scan_result(
    snapshots: Option<&[String]>,
    state: &SweepState,
    catalog_version: &str,
    fail_on: Severity,
) -> ScanResult {
    let Some(snaps) = snapshots.filter(|s| !s.is_empty()) else {
        return ScanResult {
            status: "unreadable".into(),
            max_severity: None,
            scanned_at: None,
        };
    };
    let hit = state.entries.get(&key(snaps, catalog_version)).or_else(|| {
        state
            .entries
            .get(&key(snaps, &format!("{catalog_version}+quick")))
    });
    match hit {
        Some(c) => {
            let max = c.max_severity();
            ScanResult {
                status: if max.is_some_and(|m| m >= fail_on) {
                    "findings"
                } else {
                    "clean"
                }
                .into(),
                max_severity: max,
                scanned_at: Some(c.scanned_at),
            }
        }
        None => {
            let older = state
                .entries
                .values()
                .filter(|c| c.snapshot_ids == snaps)
                .max_by_key(|c| c.scanned_at);
            ScanResult {
                status: if older.is_some() {
                    "older-catalog"
                } else {
                    "not-scanned"
                }
                .into(),
                max_severity: older.and_then(|c| c.max_severity()),
                scanned_at: older.map(|c| c.scanned_at),
            }
        }
    }
}

/// The name without its trailing version: tokens (split at `-`, `_`, `.`, space) holding a digit
/// are dropped from the end (`golden-web-2026.01.03` and `golden-web-v7` → `golden-web`).
pub fn name_stem(name: &str) -> Option<String> {
    let mut tokens: Vec<&str> = name
        .split(['-', '_', '.', ' '])
        .filter(|t| !t.is_empty())
        .collect();
    while tokens
        .last()
        .is_some_and(|t| t.bytes().any(|b| b.is_ascii_digit()))
    {
        tokens.pop();
    }
    (!tokens.is_empty()).then(|| tokens.join("-"))
}

/// The lineage of an image: `owner/stem`, or `tag:KEY=VALUE` with a lineage tag.
pub(crate) fn lineage_of(img: &GovImage, tag: Option<&str>) -> Option<String> {
    match tag {
        Some(k) => img
            .tags
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| format!("tag:{k}={v}")),
        None => {
            let stem = name_stem(img.name.as_deref()?)?;
            Some(format!("{}/{stem}", img.owner_id.as_deref().unwrap_or("?")))
        }
    }
}

fn fix_text(kind: WorkloadKind, workload: &str, image: &str, region: &str, gone: bool) -> String {
    let point = match kind {
        WorkloadKind::LaunchTemplate => {
            let t = workload.split(':').next().unwrap_or(workload);
            format!(
                "create a version of launch template {t} with that AMI (aws ec2 create-launch-template-version --launch-template-id {t} --source-version $Latest --launch-template-data ImageId=NEW_AMI) and make it the default (aws ec2 modify-launch-template --default-version)"
            )
        }
        WorkloadKind::AutoScalingGroup => format!(
            "point Auto Scaling group {workload} at a launch template version with that AMI (aws autoscaling update-auto-scaling-group --auto-scaling-group-name {workload} --launch-template ...)"
        ),
        WorkloadKind::LaunchConfiguration => format!(
            "launch configurations cannot be changed: create a launch template with that AMI and move the groups using {workload} to it"
        ),
        WorkloadKind::Instance => "relaunch from that AMI".into(),
    };
    if gone {
        format!(
            "{image} is gone and cannot be copied: build or pick an image you own, vet it (amiscan scan AMI), then {point}"
        )
    } else {
        format!(
            "vet it (amiscan scan --copy {image} --region {region}), own a copy (aws ec2 copy-image --source-image-id {image} --source-region {region} --name NAME), then {point}"
        )
    }
}

/// Launch sources (templates, groups, configurations) whose image is gone, deprecated, or public
/// and owned by an unverified other account (its owner can deregister it at any time). Gone
/// first, then deprecated, then public.
pub fn at_risk(images: &[InventoryImage], workloads: &[Workload], region: &str) -> Vec<AtRisk> {
    let mut out = Vec::new();
    for w in workloads.iter().filter(|w| w.kind.launches()) {
        let Some(id) = &w.image_id else { continue };
        let Some(img) = images.iter().find(|i| &i.image_id == id) else {
            continue;
        };
        let mut reasons = Vec::new();
        let mut why = Vec::new();
        if !img.exists {
            reasons.push("gone".to_string());
            why.push(format!(
                "{id} no longer exists: the next launch from {} fails",
                w.id
            ));
        }
        if img.deprecated {
            reasons.push("deprecated".to_string());
            why.push(format!(
                "{id} is deprecated since {}",
                img.deprecation_time.as_deref().unwrap_or("?")
            ));
        }
        let other = !matches!(img.class, ImageClass::SelfOwned | ImageClass::OwnOrg);
        if img.exists
            && other
            && img.public == Some(true)
            && !matches!(img.class, ImageClass::Verified)
        {
            reasons.push("public".to_string());
            why.push(format!(
                "{id} is a public image of account {}: its owner can deregister it at any time",
                img.owner_id.as_deref().unwrap_or("?")
            ));
        }
        if reasons.is_empty() {
            continue;
        }
        out.push(AtRisk {
            kind: w.kind,
            workload: w.id.clone(),
            image_id: id.clone(),
            owner_id: img.owner_id.clone(),
            fix: fix_text(w.kind, &w.id, id, region, !img.exists),
            reasons,
            why,
        });
    }
    let rank = |r: &AtRisk| match r.reasons.first().map(String::as_str) {
        Some("gone") => 0,
        Some("deprecated") => 1,
        _ => 2,
    };
    out.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.workload.cmp(&b.workload))
    });
    out
}

fn created(i: &InventoryImage) -> Option<i64> {
    i.creation_date.as_deref().and_then(epoch)
}

/// Workloads on superseded versions of a lineage (two or more images of it known), oldest
/// version first.
pub fn drift(images: &[InventoryImage], workloads: &[Workload], now: i64) -> Vec<Drift> {
    let mut lineages: BTreeSet<&str> = BTreeSet::new();
    for i in images {
        if let Some(l) = &i.lineage {
            lineages.insert(l);
        }
    }
    let mut out = Vec::new();
    for l in lineages {
        let mut members: Vec<&InventoryImage> = images
            .iter()
            .filter(|i| i.lineage.as_deref() == Some(l))
            .collect();
        if members.len() < 2 {
            continue;
        }
        members.sort_by_key(|i| (created(i), i.image_id.clone()));
        let Some(latest) = members.last().copied() else {
            continue;
        };
        for (n, m) in members.iter().enumerate() {
            if m.image_id == latest.image_id || m.used_by.is_empty() {
                continue;
            }
            out.push(Drift {
                lineage: l.to_string(),
                image_id: m.image_id.clone(),
                name: m.name.clone(),
                creation_date: m.creation_date.clone(),
                age_days: created(m).and_then(|c| u64::try_from(now.saturating_sub(c) / DAY).ok()),
                versions_behind: members.len() - 1 - n,
                latest_image_id: latest.image_id.clone(),
                latest_creation_date: latest.creation_date.clone(),
                workloads: m
                    .used_by
                    .iter()
                    .filter_map(|&k| workloads.get(k).map(|w| w.id.clone()))
                    .collect(),
            });
        }
    }
    out
}

/// The judgements of an organisation-wide inventory, made once every account's regions are in:
/// an image owned by another account of `org` is [`ImageClass::OwnOrg`] (the organisation
/// controls it: it is not at risk for being public or shared), and drift is measured against
/// every version of a lineage any account of the organisation holds in the region (account B's
/// template on version 1 of account A's golden image is behind A's version 3, which B never
/// references). The at-risk list and the drift of every region are made again.
pub fn organisation(regions: &mut [RegionInventory], org: &BTreeSet<String>, now: i64) {
    for r in regions.iter_mut() {
        for i in &mut r.images {
            let owner_in_org = i.owner_id.as_ref().is_some_and(|o| org.contains(o));
            if owner_in_org
                && !matches!(i.class, ImageClass::Verified | ImageClass::SelfOwned)
                && i.owner_id.as_deref() != Some(r.account.as_str())
            {
                i.class = ImageClass::OwnOrg;
            }
        }
    }
    // Every version of every lineage in each region, whoever holds it (used_by is per account).
    let mut versions: BTreeMap<(String, String), InventoryImage> = BTreeMap::new();
    for r in regions.iter() {
        for i in r.images.iter().filter(|i| i.lineage.is_some()) {
            versions
                .entry((r.region.clone(), i.image_id.clone()))
                .or_insert_with(|| InventoryImage {
                    used_by: Vec::new(),
                    ..i.clone()
                });
        }
    }
    for r in regions.iter_mut() {
        let mut pool = r.images.clone();
        let own: BTreeSet<String> = r.images.iter().map(|i| i.image_id.clone()).collect();
        for ((reg, id), v) in &versions {
            if reg == &r.region && !own.contains(id) {
                pool.push(v.clone());
            }
        }
        r.at_risk = at_risk(&r.images, &r.workloads, &r.region);
        r.drift = drift(&pool, &r.workloads, now);
    }
}

// ------------------------------------------------------------------ Allowed AMIs

/// `*` any run, `?` one character, everything else literally (the Allowed AMIs name patterns).
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, never recursive.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Why `img` does not match criterion `c`, or `None` when it does.
fn mismatch(c: &ImageCriterion, img: &InventoryImage, now: i64) -> Option<String> {
    if !c.image_providers.is_empty() {
        let ok = c.image_providers.iter().any(|p| {
            Some(p.as_str()) == img.owner_id.as_deref()
                || Some(p.as_str()) == img.owner_alias.as_deref()
                || (p == "none" && img.class == ImageClass::SelfOwned)
        });
        if !ok {
            return Some(format!(
                "provider {} is not in {:?}",
                img.owner_alias
                    .as_deref()
                    .or(img.owner_id.as_deref())
                    .unwrap_or("?"),
                c.image_providers
            ));
        }
    }
    if !c.image_names.is_empty() {
        let name = img.name.as_deref().unwrap_or("");
        if !c.image_names.iter().any(|p| wildcard(p, name)) {
            return Some(format!("name {name:?} matches none of {:?}", c.image_names));
        }
    }
    if !c.marketplace_product_codes.is_empty()
        && !img
            .product_codes
            .iter()
            .any(|p| c.marketplace_product_codes.contains(p))
    {
        return Some(if img.product_codes.is_empty() {
            "no Marketplace product code".to_string()
        } else {
            format!(
                "Marketplace product codes {:?} are not in {:?}",
                img.product_codes, c.marketplace_product_codes
            )
        });
    }
    if let Some(cd) = &c.creation_date_condition {
        let created = img.creation_date.as_deref().and_then(epoch);
        let limit = i64::from(cd.maximum_days_since_created) * DAY;
        if created.is_none_or(|t| now.saturating_sub(t) > limit) {
            return Some(format!(
                "created {} (more than {} days ago)",
                img.creation_date.as_deref().unwrap_or("?"),
                cd.maximum_days_since_created
            ));
        }
    }
    if let Some(dc) = &c.deprecation_time_condition
        && img.deprecated
    {
        let dep = img.deprecation_time.as_deref().and_then(epoch);
        let limit = i64::from(dc.maximum_days_since_deprecated) * DAY;
        if dep.is_none_or(|t| now.saturating_sub(t) > limit) {
            return Some(format!(
                "deprecated {} (more than {} days ago)",
                img.deprecation_time.as_deref().unwrap_or("?"),
                dc.maximum_days_since_deprecated
            ));
        }
    }
    None
}

/// Why the criteria would block `img`, or `None` when one of them allows it. A gone image is
/// blocked in any case (nothing can launch from it).
pub fn blocked_by(criteria: &[ImageCriterion], img: &InventoryImage, now: i64) -> Option<String> {
    if !img.exists {
        return Some("the image is gone".into());
    }
    if criteria.is_empty() {
        return Some("no criteria: every image is blocked".into());
    }
    let mut why = Vec::new();
    for c in criteria {
        match mismatch(c, img, now) {
            None => return None,
            Some(w) => why.push(w),
        }
    }
    Some(why.join("; "))
}

/// What the proposal may add beyond providers.
#[derive(Debug, Clone, Default)]
pub struct ProposeOptions {
    /// `ImageNames` patterns.
    pub image_names: Vec<String>,
    /// `CreationDateCondition.MaximumDaysSinceCreated`.
    pub max_days_since_created: Option<u32>,
    /// `DeprecationTimeCondition.MaximumDaysSinceDeprecated`.
    pub max_days_since_deprecated: Option<u32>,
    /// More `MarketplaceProductCodes` to allow than those of the Marketplace images in use.
    pub marketplace_product_codes: Vec<String>,
}

/// Criteria allowing the providers of every image in use or owned that is trusted — verified
/// (`amazon`, `aws-marketplace`), the account's own (the organisation's, in an organisation-wide
/// inventory), `--trusted-accounts`, already allowed — and nothing else: public images of
/// unverified owners and privately shared ones are left out.
///
/// AWS Marketplace images are allowed by product rather than by the whole `aws-marketplace`
/// provider (any verified seller): a second criterion holds the `MarketplaceProductCodes` of
/// the Marketplace images in use (and `opts.marketplace_product_codes`), and `aws-marketplace`
/// stays a provider only when a Marketplace image in use has no product code. The name and
/// date conditions of `opts` are in each criterion.
pub fn propose(regions: &[RegionInventory], opts: &ProposeOptions) -> Vec<ImageCriterion> {
    let mut providers = BTreeSet::new();
    let mut codes: BTreeSet<String> = opts.marketplace_product_codes.iter().cloned().collect();
    let mut marketplace_without_code = false;
    for r in regions {
        if r.account != "unknown" {
            providers.insert(r.account.clone());
        }
        for i in &r.images {
            let in_use = !i.used_by.is_empty() || i.class == ImageClass::SelfOwned;
            if in_use
                && i.class == ImageClass::Verified
                && i.owner_alias.as_deref() == Some("aws-marketplace")
            {
                if i.product_codes.is_empty() {
                    marketplace_without_code = true;
                } else {
                    codes.extend(i.product_codes.iter().cloned());
                }
                continue;
            }
            let p = match i.class {
                ImageClass::Verified => i.owner_alias.clone(),
                ImageClass::SelfOwned | ImageClass::OwnOrg | ImageClass::Trusted => {
                    i.owner_id.clone()
                }
                ImageClass::Allowed => i.owner_alias.clone().or_else(|| i.owner_id.clone()),
                _ => None,
            };
            if let Some(p) = p
                && in_use
            {
                providers.insert(p);
            }
        }
    }
    if marketplace_without_code {
        providers.insert("aws-marketplace".into());
    }
    let with_conditions = |c: ImageCriterion| ImageCriterion {
        image_names: opts.image_names.clone(),
        creation_date_condition: opts.max_days_since_created.map(|d| CreationDateCondition {
            maximum_days_since_created: d,
        }),
        deprecation_time_condition: opts.max_days_since_deprecated.map(|d| {
            DeprecationTimeCondition {
                maximum_days_since_deprecated: d,
            }
        }),
        ..c
    };
    let mut out = Vec::new();
    if !providers.is_empty() {
        // Aliases first, then account ids, each sorted.
        let mut list: Vec<String> = providers.into_iter().collect();
        list.sort_by_key(|p| (p.bytes().all(|b| b.is_ascii_digit()), p.clone()));
        out.push(with_conditions(ImageCriterion {
            image_providers: list,
            ..Default::default()
        }));
    }
    if !codes.is_empty() {
        out.push(with_conditions(ImageCriterion {
            marketplace_product_codes: codes.into_iter().collect(),
            ..Default::default()
        }));
    }
    out
}

/// The launch sources (templates, groups, configurations) the criteria would stop at their
/// next launch. Running instances keep running and are not listed.
pub fn simulate(
    regions: &[RegionInventory],
    criteria: &[ImageCriterion],
    now: i64,
) -> Vec<Blocked> {
    let mut out = Vec::new();
    for r in regions {
        for w in r.workloads.iter().filter(|w| w.kind.launches()) {
            let Some(id) = &w.image_id else { continue };
            let Some(img) = r.images.iter().find(|i| &i.image_id == id) else {
                continue;
            };
            if let Some(reason) = blocked_by(criteria, img, now) {
                out.push(Blocked {
                    account: r.account.clone(),
                    region: r.region.clone(),
                    kind: w.kind,
                    workload: w.id.clone(),
                    image_id: id.clone(),
                    owner_id: img.owner_id.clone(),
                    reason,
                });
            }
        }
    }
    out
}

/// The calls that take a region from `current` to `criteria` in `mode`, in the order they are
/// made: criteria first (so that enabling never enforces the old ones), then the state.
pub fn settings_diff(
    account: &str,
    region: &str,
    current: &AllowedImagesSettings,
    criteria: &[ImageCriterion],
    mode: &str,
) -> Vec<SettingsChange> {
    let mut out = Vec::new();
    if current.image_criteria != criteria {
        out.push(SettingsChange {
            account: account.into(),
            region: region.into(),
            action: "ReplaceImageCriteriaInAllowedImagesSettings".into(),
            from: serde_json::to_value(&current.image_criteria).unwrap_or(Value::Null),
            to: serde_json::to_value(criteria).unwrap_or(Value::Null),
        });
    }
    if current.state != mode {
        out.push(SettingsChange {
            account: account.into(),
            region: region.into(),
            action: "EnableAllowedImagesSettings".into(),
            from: json!(current.state),
            to: json!(mode),
        });
    }
    out
}

/// A provider as the declarative policy spells it: the aliases with `_` where the EC2 API has
/// `-` (`aws_marketplace`, `aws_backup_vault`), like its states (`audit_mode`); `amazon` and
/// account ids as they are.
fn policy_provider(p: &str) -> String {
    match p {
        "aws-marketplace" => "aws_marketplace".into(),
        "aws-backup-vault" => "aws_backup_vault".into(),
        p => p.into(),
    }
}

/// The Organizations declarative policy (EC2 `ec2_attributes.allowed_images_settings`) that sets
/// these criteria and `mode` (`enabled` or `audit-mode`) for every account it is attached to.
///
/// The keys follow "Declarative policy syntax and examples", Allowed AMIs settings, AWS
/// Organizations User Guide
/// (<https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_declarative_syntax.html>,
/// since renamed "EC2 policy syntax and examples", `orgs_manage_policies_ec2_syntax.html`):
/// `ec2_attributes` → `allowed_images_settings` → `state` (`enabled` | `audit_mode`) and
/// `image_criteria` → `criteria_1` … `criteria_10`, each with `allowed_image_providers`,
/// `image_names`, `marketplace_product_codes` (lists, `@@append`),
/// `creation_date_condition.maximum_days_since_created` and
/// `deprecation_time_condition.maximum_days_since_deprecated` (numbers, `@@assign`) — the
/// fields of the EC2 API's `ImageCriterionRequest` (`ImageProviders`, `ImageNames`,
/// `MarketplaceProductCodes`, `CreationDateCondition.MaximumDaysSinceCreated`,
/// `DeprecationTimeCondition.MaximumDaysSinceDeprecated`).
pub fn org_policy(criteria: &[ImageCriterion], mode: &str) -> Value {
    let mut image_criteria = serde_json::Map::new();
    for (n, c) in criteria.iter().enumerate() {
        let mut m = serde_json::Map::new();
        if !c.image_providers.is_empty() {
            let providers: Vec<String> = c
                .image_providers
                .iter()
                .map(|p| policy_provider(p))
                .collect();
            m.insert(
                "allowed_image_providers".into(),
                json!({ "@@append": providers }),
            );
        }
        if !c.image_names.is_empty() {
            m.insert("image_names".into(), json!({ "@@append": c.image_names }));
        }
        if !c.marketplace_product_codes.is_empty() {
            m.insert(
                "marketplace_product_codes".into(),
                json!({ "@@append": c.marketplace_product_codes }),
            );
        }
        if let Some(cd) = &c.creation_date_condition {
            m.insert(
                "creation_date_condition".into(),
                json!({ "maximum_days_since_created": { "@@assign": cd.maximum_days_since_created } }),
            );
        }
        if let Some(dc) = &c.deprecation_time_condition {
            m.insert(
                "deprecation_time_condition".into(),
                json!({ "maximum_days_since_deprecated": { "@@assign": dc.maximum_days_since_deprecated } }),
            );
        }
        image_criteria.insert(format!("criteria_{}", n + 1), Value::Object(m));
    }
    let state = if mode == "audit-mode" {
        "audit_mode"
    } else {
        mode
    };
    json!({
        "ec2_attributes": {
            "allowed_images_settings": {
                "state": { "@@assign": state },
                "image_criteria": image_criteria
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, class: ImageClass, owner: &str, alias: Option<&str>) -> InventoryImage {
        InventoryImage {
            image_id: id.into(),
            name: Some(format!("golden-web-{id}")),
            owner_id: Some(owner.into()),
            owner_alias: alias.map(str::to_string),
            class,
            public: Some(false),
            exists: true,
            state: Some("available".into()),
            creation_date: Some("2026-01-01T00:00:00.000Z".into()),
            deprecation_time: None,
            deprecated: false,
            lineage: None,
            product_codes: Vec::new(),
            scan: ScanResult {
                status: "not-scanned".into(),
                max_severity: None,
                scanned_at: None,
            },
            used_by: vec![0],
        }
    }

    #[test]
    fn stems_drop_trailing_version_tokens() {
        assert_eq!(
            name_stem("golden-web-2026.01.03").as_deref(),
            Some("golden-web")
        );
        assert_eq!(name_stem("golden_web v7").as_deref(), Some("golden-web"));
        assert_eq!(name_stem("base").as_deref(), Some("base"));
        assert_eq!(name_stem("2026-01-03"), None);
    }

    #[test]
    fn wildcards_match_like_allowed_amis() {
        assert!(wildcard("al2023-ami-*", "al2023-ami-2023.6-x86_64"));
        assert!(wildcard("web-v?", "web-v7"));
        assert!(!wildcard("web-v?", "web-v10"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "acbx"));
        assert!(wildcard("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn criteria_are_or_ed_and_their_fields_and_ed() {
        let now = epoch("2026-03-01T00:00:00Z").unwrap();
        let amazon = image(
            "ami-a",
            ImageClass::Verified,
            "137112412989",
            Some("amazon"),
        );
        let other = image("ami-b", ImageClass::PublicUnverified, "999988887777", None);
        let c = vec![
            ImageCriterion {
                image_providers: vec!["amazon".into()],
                creation_date_condition: Some(CreationDateCondition {
                    maximum_days_since_created: 30,
                }),
                ..Default::default()
            },
            ImageCriterion {
                image_providers: vec!["111122223333".into()],
                ..Default::default()
            },
        ];
        // Created 59 days before `now`: the only criterion naming amazon fails on age.
        assert!(
            blocked_by(&c, &amazon, now)
                .unwrap()
                .contains("more than 30 days")
        );
        let later = epoch("2026-01-15T00:00:00Z").unwrap();
        assert_eq!(blocked_by(&c, &amazon, later), None);
        assert!(
            blocked_by(&c, &other, now)
                .unwrap()
                .contains("999988887777")
        );
        let mut gone = amazon.clone();
        gone.exists = false;
        assert_eq!(
            blocked_by(&c, &gone, later).as_deref(),
            Some("the image is gone")
        );
    }

    #[test]
    fn the_org_policy_has_every_documented_key() {
        let c = vec![
            ImageCriterion {
                image_providers: vec!["amazon".into(), "aws-backup-vault".into()],
                image_names: vec!["golden-*".into()],
                creation_date_condition: Some(CreationDateCondition {
                    maximum_days_since_created: 300,
                }),
                ..Default::default()
            },
            ImageCriterion {
                marketplace_product_codes: vec!["abc123def456ghi789jkl0mno".into()],
                deprecation_time_condition: Some(DeprecationTimeCondition {
                    maximum_days_since_deprecated: 7,
                }),
                ..Default::default()
            },
        ];
        let p = org_policy(&c, "enabled");
        assert_eq!(
            p,
            json!({"ec2_attributes": {"allowed_images_settings": {
                "state": {"@@assign": "enabled"},
                "image_criteria": {
                    "criteria_1": {
                        "allowed_image_providers": {"@@append": ["amazon", "aws_backup_vault"]},
                        "image_names": {"@@append": ["golden-*"]},
                        "creation_date_condition": {"maximum_days_since_created": {"@@assign": 300}}
                    },
                    "criteria_2": {
                        "marketplace_product_codes": {"@@append": ["abc123def456ghi789jkl0mno"]},
                        "deprecation_time_condition": {"maximum_days_since_deprecated": {"@@assign": 7}}
                    }
                }
            }}})
        );
    }

    #[test]
    fn marketplace_images_are_proposed_and_checked_by_product_code() {
        let now = epoch("2026-01-15T00:00:00Z").unwrap();
        let mut market = image(
            "ami-m",
            ImageClass::Verified,
            "679593333241",
            Some("aws-marketplace"),
        );
        market.product_codes = vec!["prodcode1".into()];
        let own = image("ami-o", ImageClass::SelfOwned, "111122223333", None);
        let mut region = RegionInventory::empty("111122223333", "us-east-1");
        region.images = vec![market.clone(), own.clone()];
        let opts = ProposeOptions {
            marketplace_product_codes: vec!["extra9".into()],
            ..Default::default()
        };
        let c = propose(std::slice::from_ref(&region), &opts);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!([
                {"ImageProviders": ["111122223333"]},
                {"MarketplaceProductCodes": ["extra9", "prodcode1"]}
            ])
        );
        assert_eq!(blocked_by(&c, &market, now), None);
        assert_eq!(blocked_by(&c, &own, now), None);
        let mut other = market.clone();
        other.product_codes = vec!["elsewhere".into()];
        let why = blocked_by(&c, &other, now).unwrap();
        assert!(why.contains("elsewhere"), "{why}");
        // A Marketplace image without a product code keeps the whole provider.
        if let Some(m) = region.images.first_mut() {
            m.product_codes.clear();
        }
        let c = propose(&[region], &ProposeOptions::default());
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!([{"ImageProviders": ["aws-marketplace", "111122223333"]}])
        );
    }

    #[test]
    fn the_org_policy_has_the_declarative_shape() {
        let c = vec![ImageCriterion {
            image_providers: vec!["amazon".into(), "111122223333".into()],
            deprecation_time_condition: Some(DeprecationTimeCondition {
                maximum_days_since_deprecated: 0,
            }),
            ..Default::default()
        }];
        let p = org_policy(&c, "audit-mode");
        let s = &p["ec2_attributes"]["allowed_images_settings"];
        assert_eq!(s["state"]["@@assign"], "audit_mode");
        assert_eq!(
            s["image_criteria"]["criteria_1"]["allowed_image_providers"]["@@append"],
            json!(["amazon", "111122223333"])
        );
        assert_eq!(
            s["image_criteria"]["criteria_1"]["deprecation_time_condition"]["maximum_days_since_deprecated"]
                ["@@assign"],
            0
        );
    }
}
