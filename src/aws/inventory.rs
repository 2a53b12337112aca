//! `amiscan inventory`: every AMI an account uses or owns in a region, and what uses it —
//! instances, launch templates (default and latest versions), Auto Scaling groups (through a
//! launch template, a mixed-instances policy or a launch configuration) and launch
//! configurations — with each image's owner, class (audit's classifier), deprecation, whether it
//! still exists and its last sweep result; then the launch sources at risk and the drift of
//! golden-image lineages ([`super::governance_analysis`]).
//!
//! The per-account work is [`inventory_account`]: one `SdkConfig` (whatever credentials reach the
//! account: the caller's own, or an assumed organisation role) and the account id. Every call
//! that fails is an error of its region (the inventory says it is incomplete), never a stop.

use super::ec2ops::{self, AllowedImages, all_pages, api_error};
use super::governance_analysis::{GovImage, at_risk, drift, epoch, lineage_of, scan_result};
use super::org::{self, AccountSelection};
use super::state::SweepState;
use super::sweep::SweepError;
use super::{AwsError, AwsOptions};
use crate::model::Severity;
use crate::model::governance::{
    ImageClass, InventoryImage, RegionInventory, Workload, WorkloadKind,
};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::types::Filter;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// What to inventory.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    /// Regions; `None` = every enabled region.
    pub regions: Option<Vec<String>>,
    /// Accounts whose AMIs are trusted.
    pub trusted_accounts: Vec<String>,
    /// The sweep state file (last scan results).
    pub state_path: PathBuf,
    /// What counts as clean in the sweep results.
    pub fail_on: Severity,
    /// The catalog version sweep results must have.
    pub catalog_version: String,
    /// Lineages by this image tag instead of owner and name stem.
    pub lineage_tag: Option<String>,
    /// The accounts (`--org-role`, `--accounts`): with more than the caller's, the classes, the
    /// risks and the drift are judged across all of them
    /// ([`super::governance_analysis::organisation`]).
    pub accounts: AccountSelection,
}

/// The AWS Marketplace product codes of an image (`productCodes` of type `marketplace`; the
/// legacy `devpay` ones are not what Allowed AMIs criteria match).
pub(crate) fn marketplace_codes(i: &aws_sdk_ec2::types::Image) -> Vec<String> {
    i.product_codes()
        .iter()
        .filter(|p| {
            p.product_code_type()
                .is_none_or(|t| *t == aws_sdk_ec2::types::ProductCodeValues::Marketplace)
        })
        .filter_map(|p| p.product_code_id())
        .map(str::to_string)
        .collect()
}

/// An image of `DescribeImages` as governance needs it.
fn gov_image(i: &aws_sdk_ec2::types::Image) -> GovImage {
    GovImage {
        id: i.image_id().unwrap_or_default().to_string(),
        name: i.name().map(str::to_string),
        owner_id: i.owner_id().map(str::to_string),
        owner_alias: i.image_owner_alias().map(str::to_string),
        public: i.public().unwrap_or(false),
        state: i.state().map(|s| s.as_str().to_string()),
        creation_date: i.creation_date().map(str::to_string),
        deprecation_time: i.deprecation_time().map(str::to_string),
        tags: i
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        snapshot_ids: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        product_codes: marketplace_codes(i),
    }
}

/// The shared configuration for `aws` (credentials, profile, role, endpoint), without a fixed
/// region: each region's clients are made from it.
pub async fn load_config(aws: &AwsOptions) -> Result<SdkConfig, AwsError> {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(aws_config::Region::new(
            aws.region
                .clone()
                .unwrap_or_else(|| super::sweep::FALLBACK_REGION.to_string()),
        ));
    if let Some(p) = &aws.profile {
        loader = loader.profile_name(p);
    }
    if let Some(c) = &aws.credentials {
        loader = loader.credentials_provider(c.clone());
    }
    if let Some(u) = &aws.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    let mut conf = loader.load().await;
    if let Some(role) = &aws.role_arn {
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("amiscan")
            .configure(&conf)
            .build()
            .await;
        conf = conf
            .into_builder()
            .credentials_provider(aws_sdk_ebs::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build();
    }
    Ok(conf)
}

/// EC2 and Auto Scaling clients of `region`.
pub fn region_clients(
    conf: &SdkConfig,
    region: &str,
) -> (aws_sdk_ec2::Client, aws_sdk_autoscaling::Client) {
    let r = aws_config::Region::new(region.to_string());
    let mut ec2 = aws_sdk_ec2::config::Builder::from(conf).region(r.clone());
    let mut asg = aws_sdk_autoscaling::config::Builder::from(conf).region(r);
    if let Some(u) = conf.endpoint_url() {
        ec2 = ec2.endpoint_url(u);
        asg = asg.endpoint_url(u);
    }
    (
        aws_sdk_ec2::Client::from_conf(ec2.build()),
        aws_sdk_autoscaling::Client::from_conf(asg.build()),
    )
}

/// Every page of a `DescribeImages` request, deprecated images included.
async fn describe_images(
    ec2: &aws_sdk_ec2::Client,
    owners: Option<Vec<String>>,
    ids: Option<Vec<String>>,
) -> Result<Vec<GovImage>, AwsError> {
    all_pages("DescribeImages", |token| {
        let mut req = ec2
            .describe_images()
            .set_owners(owners.clone())
            .include_deprecated(true)
            .set_next_token(token);
        if let Some(ids) = &ids {
            // A filter, so that ids no longer visible are missing instead of failing the call.
            req = req.filters(
                Filter::builder()
                    .name("image-id")
                    .set_values(Some(ids.clone()))
                    .build(),
            );
        } else {
            req = req.max_results(1000);
        }
        async move {
            let page = req
                .send()
                .await
                .map_err(|e| api_error("DescribeImages", "ec2:DescribeImages", &e))?;
            Ok((
                page.images().iter().map(gov_image).collect(),
                page.next_token().map(str::to_string),
            ))
        }
    })
    .await
}

/// A launch template version: `(template id, name, version, is default, image)`.
type TemplateVersion = (String, String, i64, bool, Option<String>);

fn version_of(v: &aws_sdk_ec2::types::LaunchTemplateVersion) -> TemplateVersion {
    (
        v.launch_template_id().unwrap_or_default().to_string(),
        v.launch_template_name().unwrap_or_default().to_string(),
        v.version_number().unwrap_or(0),
        v.default_version().unwrap_or(false),
        v.launch_template_data()
            .and_then(|d| d.image_id())
            .map(str::to_string),
    )
}

/// The `$Default` and `$Latest` versions of every launch template of the region.
async fn template_versions(ec2: &aws_sdk_ec2::Client) -> Result<Vec<TemplateVersion>, AwsError> {
    all_pages("DescribeLaunchTemplateVersions", |token| {
        let req = ec2
            .describe_launch_template_versions()
            .versions("$Latest")
            .versions("$Default")
            .max_results(200)
            .set_next_token(token);
        async move {
            let page = req.send().await.map_err(|e| {
                api_error(
                    "DescribeLaunchTemplateVersions",
                    "ec2:DescribeLaunchTemplateVersions",
                    &e,
                )
            })?;
            Ok((
                page.launch_template_versions()
                    .iter()
                    .map(version_of)
                    .collect(),
                page.next_token().map(str::to_string),
            ))
        }
    })
    .await
}

/// One version of one template (an Auto Scaling group pinned to a version that is neither the
/// default nor the latest).
async fn template_version(
    ec2: &aws_sdk_ec2::Client,
    template_id: &str,
    version: &str,
) -> Result<Option<TemplateVersion>, AwsError> {
    let out = ec2
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .versions(version)
        .send()
        .await
        .map_err(|e| {
            api_error(
                "DescribeLaunchTemplateVersions",
                "ec2:DescribeLaunchTemplateVersions",
                &e,
            )
        })?;
    Ok(out.launch_template_versions().first().map(version_of))
}

/// A launch template reference of an Auto Scaling group: `(id, name, version)`.
type GroupTemplate = (Option<String>, Option<String>, String);

/// `(group name, launch configuration, launch template)` of every Auto Scaling group.
async fn auto_scaling_groups(
    asg: &aws_sdk_autoscaling::Client,
) -> Result<Vec<(String, Option<String>, Option<GroupTemplate>)>, AwsError> {
    all_pages("DescribeAutoScalingGroups", |token| {
        let req = asg
            .describe_auto_scaling_groups()
            .max_records(100)
            .set_next_token(token);
        async move {
            let page = req.send().await.map_err(|e| {
                api_error(
                    "DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingGroups",
                    &e,
                )
            })?;
            let items = page.auto_scaling_groups().iter().map(|g| {
                let spec = g.launch_template().or_else(|| {
                    g.mixed_instances_policy()
                        .and_then(|m| m.launch_template())
                        .and_then(|l| l.launch_template_specification())
                });
                (
                    g.auto_scaling_group_name().unwrap_or_default().to_string(),
                    g.launch_configuration_name().map(str::to_string),
                    spec.map(|s| {
                        (
                            s.launch_template_id().map(str::to_string),
                            s.launch_template_name().map(str::to_string),
                            s.version().unwrap_or("$Default").to_string(),
                        )
                    }),
                )
            });
            Ok((items.collect(), page.next_token().map(str::to_string)))
        }
    })
    .await
}

/// `(name, image)` of every launch configuration.
async fn launch_configurations(
    asg: &aws_sdk_autoscaling::Client,
) -> Result<Vec<(String, Option<String>)>, AwsError> {
    all_pages("DescribeLaunchConfigurations", |token| {
        let req = asg
            .describe_launch_configurations()
            .max_records(100)
            .set_next_token(token);
        async move {
            let page = req.send().await.map_err(|e| {
                api_error(
                    "DescribeLaunchConfigurations",
                    "autoscaling:DescribeLaunchConfigurations",
                    &e,
                )
            })?;
            let items = page.launch_configurations().iter().map(|c| {
                (
                    c.launch_configuration_name()
                        .unwrap_or_default()
                        .to_string(),
                    c.image_id().map(str::to_string),
                )
            });
            Ok((items.collect(), page.next_token().map(str::to_string)))
        }
    })
    .await
}

fn keep<T>(r: Result<T, AwsError>, errors: &mut Vec<String>) -> Option<T> {
    r.map_err(|e| errors.push(e.to_string())).ok()
}

/// Now, in seconds since the epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inventory of one account in one region.
pub async fn inventory_region(
    conf: &SdkConfig,
    account: &str,
    region: &str,
    opts: &InventoryOptions,
    state: &SweepState,
) -> RegionInventory {
    let (ec2, asg) = region_clients(conf, region);
    let mut inv = RegionInventory::empty(account, region);
    let errors = &mut inv.errors;
    inv.allowed_images = keep(ec2ops::allowed_images_settings(&ec2).await, errors);
    let owned = keep(
        describe_images(&ec2, Some(vec!["self".to_string()]), None).await,
        errors,
    )
    .unwrap_or_default();
    let instances = keep(ec2ops::list_instances(&ec2).await, errors).unwrap_or_default();
    let versions = keep(template_versions(&ec2).await, errors).unwrap_or_default();
    let groups = keep(auto_scaling_groups(&asg).await, errors).unwrap_or_default();
    let configs = keep(launch_configurations(&asg).await, errors).unwrap_or_default();

    let mut workloads: Vec<Workload> = Vec::new();
    for i in &instances {
        workloads.push(Workload {
            kind: WorkloadKind::Instance,
            id: i.id.clone(),
            name: None,
            detail: i.state.clone(),
            image_id: Some(i.image_id.clone()).filter(|s| !s.is_empty()),
        });
    }
    // Templates: their default and latest versions (one workload when they are the same).
    let mut by_template: BTreeMap<String, Vec<&TemplateVersion>> = BTreeMap::new();
    for v in &versions {
        by_template.entry(v.0.clone()).or_default().push(v);
    }
    for (id, vs) in &mut by_template {
        vs.sort_by_key(|v| v.2);
        let latest = vs.iter().map(|v| v.2).max().unwrap_or(0);
        let mut seen = BTreeSet::new();
        for v in vs.iter() {
            if !seen.insert(v.2) {
                continue;
            }
            let mut roles = Vec::new();
            if vs.iter().any(|x| x.2 == v.2 && x.3) {
                roles.push("default");
            }
            if v.2 == latest {
                roles.push("latest");
            }
            workloads.push(Workload {
                kind: WorkloadKind::LaunchTemplate,
                id: format!("{id}:{}", v.2),
                name: Some(v.1.clone()),
                detail: format!("{} version {}", roles.join(", "), v.2),
                image_id: v.4.clone(),
            });
        }
    }
    let config_image: BTreeMap<&str, Option<&String>> = configs
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_ref()))
        .collect();
    for (name, image) in &configs {
        workloads.push(Workload {
            kind: WorkloadKind::LaunchConfiguration,
            id: name.clone(),
            name: None,
            detail: "launch configuration".into(),
            image_id: image.clone(),
        });
    }
    for (name, lc, lt) in &groups {
        let (detail, image) = if let Some(lc) = lc {
            (
                format!("launch configuration {lc}"),
                config_image.get(lc.as_str()).copied().flatten().cloned(),
            )
        } else if let Some((tid, tname, version)) = lt {
            let matches = |v: &&TemplateVersion| {
                tid.as_deref() == Some(v.0.as_str()) || tname.as_deref() == Some(v.1.as_str())
            };
            let found = match version.as_str() {
                "$Default" => versions.iter().find(|v| matches(v) && v.3).cloned(),
                "$Latest" => versions.iter().filter(matches).max_by_key(|v| v.2).cloned(),
                n => match versions.iter().find(|v| matches(v) && v.2.to_string() == n) {
                    Some(v) => Some(v.clone()),
                    None => {
                        let id = tid.clone().or_else(|| {
                            versions
                                .iter()
                                .find(|v| tname.as_deref() == Some(v.1.as_str()))
                                .map(|v| v.0.clone())
                        });
                        match id {
                            Some(id) => {
                                keep(template_version(&ec2, &id, n).await, errors).flatten()
                            }
                            None => None,
                        }
                    }
                },
            };
            let label = tname.clone().or_else(|| tid.clone()).unwrap_or_default();
            match found {
                Some(v) => (
                    format!("launch template {label} {version} (version {})", v.2),
                    v.4.clone(),
                ),
                None => {
                    inv.warnings.push(format!(
                        "Auto Scaling group {name}: launch template {label} version {version} not found"
                    ));
                    (format!("launch template {label} {version} (missing)"), None)
                }
            }
        } else {
            ("no launch template or configuration".into(), None)
        };
        workloads.push(Workload {
            kind: WorkloadKind::AutoScalingGroup,
            id: name.clone(),
            name: None,
            detail,
            image_id: image,
        });
    }
    for w in &workloads {
        if let Some(i) = &w.image_id
            && !i.starts_with("ami-")
        {
            inv.warnings.push(format!(
                "{} {} launches {i}: resolved at launch, not inventoried",
                w.kind.as_str(),
                w.id
            ));
        }
    }

    // Every image: owned ones, then the others referenced, looked up by id.
    let owned_ids: BTreeSet<String> = owned.iter().map(|i| i.id.clone()).collect();
    let mut referenced: Vec<String> = workloads
        .iter()
        .filter_map(|w| w.image_id.clone())
        .filter(|i| i.starts_with("ami-") && !owned_ids.contains(i))
        .collect();
    referenced.sort();
    referenced.dedup();
    let mut found: Vec<GovImage> = Vec::new();
    for chunk in referenced.chunks(100) {
        if let Some(v) = keep(
            describe_images(&ec2, None, Some(chunk.to_vec())).await,
            errors,
        ) {
            found.extend(v);
        }
    }
    // What instances say of images that are gone.
    let gone_instances: Vec<String> = instances
        .iter()
        .filter(|i| !owned_ids.contains(&i.image_id) && !found.iter().any(|f| f.id == i.image_id))
        .map(|i| i.id.clone())
        .collect();
    let meta = if gone_instances.is_empty() {
        Vec::new()
    } else {
        keep(
            ec2ops::instance_image_metadata(&ec2, &gone_instances).await,
            errors,
        )
        .unwrap_or_default()
    };
    let allowed = inv
        .allowed_images
        .as_ref()
        .map(AllowedImages::from)
        .unwrap_or_default();
    let now = now();
    let mut images: Vec<InventoryImage> = Vec::new();
    let add = |g: Option<&GovImage>, id: &str, images: &mut Vec<InventoryImage>| {
        let m = meta.iter().find(|m| m.image_id == id);
        let owner = g
            .and_then(|g| g.owner_id.clone())
            .or_else(|| m.and_then(|m| m.owner_id.clone()));
        let alias = g
            .and_then(|g| g.owner_alias.clone())
            .or_else(|| m.and_then(|m| m.owner_alias.clone()));
        let public = g.map(|g| g.public).or_else(|| m.and_then(|m| m.public));
        let class = if owned_ids.contains(id) {
            ImageClass::SelfOwned
        } else {
            super::audit::classify(
                Some(account),
                owner.as_deref(),
                alias.as_deref(),
                public,
                &allowed,
                &opts.trusted_accounts,
            )
        };
        let deprecation = g.and_then(|g| g.deprecation_time.clone());
        images.push(InventoryImage {
            image_id: id.to_string(),
            name: g.and_then(|g| g.name.clone()),
            owner_id: owner,
            owner_alias: alias,
            class,
            public,
            exists: g.is_some(),
            state: g
                .and_then(|g| g.state.clone())
                .or_else(|| m.and_then(|m| m.state.clone()))
                .or_else(|| Some("gone".into()).filter(|_| g.is_none())),
            creation_date: g.and_then(|g| g.creation_date.clone()),
            deprecated: deprecation
                .as_deref()
                .and_then(epoch)
                .is_some_and(|t| t <= now),
            deprecation_time: deprecation,
            lineage: g.and_then(|g| lineage_of(g, opts.lineage_tag.as_deref())),
            product_codes: g.map(|g| g.product_codes.clone()).unwrap_or_default(),
            scan: scan_result(
                g.map(|g| g.snapshot_ids.as_slice()),
                state,
                &opts.catalog_version,
                opts.fail_on,
            ),
            used_by: Vec::new(),
        });
    };
    for g in &owned {
        add(Some(g), &g.id, &mut images);
    }
    for id in &referenced {
        add(found.iter().find(|f| &f.id == id), id, &mut images);
    }
    for (n, w) in workloads.iter().enumerate() {
        if let Some(img) = images
            .iter_mut()
            .find(|i| w.image_id.as_deref() == Some(i.image_id.as_str()))
        {
            img.used_by.push(n);
        }
    }
    inv.at_risk = at_risk(&images, &workloads, region);
    inv.drift = drift(&images, &workloads, now);
    inv.images = images;
    inv.workloads = workloads;
    inv
}

/// The inventory of one account in `regions`, through `conf` (the account's credentials).
pub async fn inventory_account(
    conf: &SdkConfig,
    account: &str,
    regions: &[String],
    opts: &InventoryOptions,
    state: &SweepState,
) -> Vec<RegionInventory> {
    let mut out = Vec::new();
    for r in regions {
        out.push(inventory_region(conf, account, r, opts, state).await);
    }
    out
}

/// The caller's account id, told by its own images or its instances' reservations (no STS
/// call: the inventory needs no other permission); `None` when it owns neither.
pub async fn current_account(conf: &SdkConfig, regions: &[String]) -> Option<String> {
    for r in regions {
        let (ec2, _) = region_clients(conf, r);
        if let Ok(out) = ec2
            .describe_images()
            .owners("self")
            .max_results(5)
            .send()
            .await
            && let Some(o) = out.images().iter().find_map(|i| i.owner_id())
        {
            return Some(o.to_string());
        }
        if let Ok(out) = ec2.describe_instances().max_results(5).send().await
            && let Some(o) = out.reservations().iter().find_map(|r| r.owner_id())
        {
            return Some(o.to_string());
        }
    }
    None
}

/// Regions to work in: the given ones or every enabled region (`DescribeRegions`).
pub async fn regions(conf: &SdkConfig, given: Option<&[String]>) -> Result<Vec<String>, AwsError> {
    if let Some(r) = given {
        return Ok(r.to_vec());
    }
    let region = conf
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| super::sweep::FALLBACK_REGION.to_string());
    let (ec2, _) = region_clients(conf, &region);
    ec2ops::list_regions(&ec2).await
}

/// A runtime for the synchronous binary.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, AwsError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("amiscan-governance")
        .enable_all()
        .build()
        .map_err(|e| AwsError::Runtime(e.to_string()))
}

/// The inventory of every account of `opts.accounts` (the caller's alone by default) in every
/// region asked for. With organisation accounts, an account or region that cannot be reached is
/// an entry with its error (the inventory says it is incomplete), not a stop.
pub fn inventory(
    aws: &AwsOptions,
    opts: &InventoryOptions,
) -> Result<Vec<RegionInventory>, SweepError> {
    let state = SweepState::load(&opts.state_path)?;
    if opts.accounts == AccountSelection::Caller {
        let rt = runtime()?;
        return rt.block_on(async {
            let conf = load_config(aws).await?;
            let regions = regions(&conf, opts.regions.as_deref()).await?;
            let account = current_account(&conf, &regions)
                .await
                .unwrap_or_else(|| "unknown".to_string());
            Ok::<_, SweepError>(inventory_account(&conf, &account, &regions, opts, &state).await)
        });
    }
    let accounts = org::member_accounts(aws, &opts.accounts)?;
    let members: BTreeSet<String> = accounts
        .iter()
        .filter_map(|a| a.account_id.clone())
        .collect();
    let (configs, failed) = org::region_configs(&accounts, opts.regions.as_deref())?;
    let rt = runtime()?;
    let mut out = rt.block_on(async {
        let mut out = Vec::new();
        for c in &configs {
            let account = c.account_id.as_deref().unwrap_or("unknown");
            out.push(inventory_region(&c.config, account, &c.region, opts, &state).await);
        }
        out
    });
    for e in failed {
        let mut inv = RegionInventory::empty(&e.account, e.region.as_deref().unwrap_or("*"));
        inv.errors.push(e.message);
        out.push(inv);
    }
    super::governance_analysis::organisation(&mut out, &members, now());
    Ok(out)
}
