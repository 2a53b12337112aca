//! What AMI governance reads and changes, with the element names, parameters and errors of the
//! API references:
//!
//! - EC2 launch templates: `CreateLaunchTemplate`, `CreateLaunchTemplateVersion`,
//!   `ModifyLaunchTemplate` (`SetDefaultVersion`), `DescribeLaunchTemplates`,
//!   `DescribeLaunchTemplateVersions` (numbers, `$Latest`, `$Default`, also across every template);
//! - EC2 image deprecation: `EnableImageDeprecation`, `DisableImageDeprecation` (owner only, a
//!   time in the future), and the `creationDate` / `deprecationTime` of `DescribeImages`
//!   ([`TestServer::set_image_dates`] seeds past times, which the API refuses);
//! - EC2 Allowed AMIs: `GetAllowedImagesSettings` with the full criteria,
//!   `ReplaceImageCriteriaInAllowedImagesSettings` (the limits of the reference, `DryRun`),
//!   `EnableAllowedImagesSettings` (`enabled` | `audit-mode`), `DisableAllowedImagesSettings`;
//! - the Auto Scaling Query API (version 2011-01-01, told apart by the SigV4 service
//!   `autoscaling`): `CreateLaunchConfiguration`, `CreateAutoScalingGroup`,
//!   `DescribeLaunchConfigurations`, `DescribeAutoScalingGroups`, with `member` lists,
//!   `NextToken` pages and the `ErrorResponse` shape.
//!
//! Everything is per region and per caller account, like the rest of the fleet state.

use crate::clock::{format_time, now, parse_time};
use crate::ec2_xml::{error, esc, is_well_formed_ami_id, missing, ok};
use crate::http::{Outcome, get, indexed};
use crate::query_xml::{MISSING_ACTION, QueryService, invalid_action};
use crate::{State, TestServer, lock};
use std::collections::HashMap;
use std::fmt::Write;

/// One Allowed AMIs criterion, as `ImageCriterion` of the EC2 API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCriterionSpec {
    /// `ImageProviders`: `amazon`, `aws-marketplace`, `aws-backup-vault`, `none`, account ids.
    pub image_providers: Vec<String>,
    /// `ImageNames` (with `*` and `?`).
    pub image_names: Vec<String>,
    /// `MarketplaceProductCodes`.
    pub marketplace_product_codes: Vec<String>,
    /// `CreationDateCondition.MaximumDaysSinceCreated`.
    pub maximum_days_since_created: Option<u32>,
    /// `DeprecationTimeCondition.MaximumDaysSinceDeprecated`.
    pub maximum_days_since_deprecated: Option<u32>,
}

/// A launch template version as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersionView {
    /// `versionNumber`.
    pub number: u64,
    /// `launchTemplateData.imageId`.
    pub image_id: Option<String>,
}

#[derive(Debug, Clone)]
struct TemplateVersion {
    number: u64,
    description: Option<String>,
    image_id: Option<String>,
    create_time: String,
}

#[derive(Debug, Clone)]
struct Template {
    region: String,
    account: String,
    id: String,
    name: String,
    default_version: u64,
    versions: Vec<TemplateVersion>,
    create_time: String,
}

impl Template {
    fn latest(&self) -> u64 {
        self.versions.iter().map(|v| v.number).max().unwrap_or(1)
    }
}

#[derive(Debug, Clone)]
struct GroupTemplate {
    id: Option<String>,
    name: Option<String>,
    version: Option<String>,
}

#[derive(Debug, Clone)]
struct Group {
    region: String,
    account: String,
    name: String,
    template: Option<GroupTemplate>,
    mixed: bool,
    launch_configuration: Option<String>,
    min: u32,
    max: u32,
    desired: u32,
    zones: Vec<String>,
    created: String,
}

#[derive(Debug, Clone)]
struct LaunchConfig {
    region: String,
    account: String,
    name: String,
    image_id: String,
    instance_type: String,
    created: String,
}

/// Dates of an image that the seeding types do not carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageDates {
    pub(crate) creation: Option<String>,
    pub(crate) deprecation: Option<String>,
}

/// The governance state, locked after `fleet` when both are needed.
#[derive(Debug, Default)]
pub(crate) struct Gov {
    templates: Vec<Template>,
    groups: Vec<Group>,
    configs: Vec<LaunchConfig>,
    pub(crate) dates: HashMap<(String, String), ImageDates>,
    /// Criteria per region, set by `ReplaceImageCriteriaInAllowedImagesSettings` (else the
    /// providers of `TestServer::set_allowed_images`).
    criteria: HashMap<String, Vec<ImageCriterionSpec>>,
    next: u64,
}

impl Gov {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next = self.next.saturating_add(1);
        format!("{prefix}{:017x}", self.next)
    }
}

// ---------------------------------------------------------------- time

/// Whether a deprecation time has passed.
pub(crate) fn is_deprecated(deprecation: Option<&str>) -> bool {
    deprecation.and_then(parse_time).is_some_and(|t| t <= now())
}

// ---------------------------------------------------------------- form helpers

fn page_bounds(
    token: Option<&str>,
    max: usize,
    len: usize,
) -> Result<(usize, usize, Option<String>), String> {
    let start = match token {
        None | Some("") => 0,
        Some(t) => match t.strip_prefix("gov-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= len => n,
            _ => return Err(format!("The value '{t}' for NextToken is invalid")),
        },
    };
    let end = start.saturating_add(max.max(1)).min(len);
    Ok((start, end, (end < len).then(|| format!("gov-{end}"))))
}

/// The owner alias and owner of a region's image visible to `account`, if any.
fn image_visible(state: &State, region: &str, account: &str, id: &str) -> bool {
    let fleet = lock(&state.fleet);
    fleet.images.iter().any(|i| {
        i.spec.region == region
            && i.spec.ami.id == id
            && i.spec.state != "deregistered"
            && (i.spec.ami.owner_id == account
                || i.spec.ami.public
                || i.spec.shared_with.iter().any(|a| a == account))
    }) || lock(&state.amis).iter().any(|a| a.id == id)
}

fn valid_template_name(n: &str) -> bool {
    (3..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"().-/_".contains(&b))
}

// ---------------------------------------------------------------- EC2: launch templates

fn template_xml(t: &Template) -> String {
    format!(
        "<launchTemplateId>{}</launchTemplateId><launchTemplateName>{}</launchTemplateName><createTime>{}</createTime><createdBy>arn:aws:iam::{}:user/test</createdBy><defaultVersionNumber>{}</defaultVersionNumber><latestVersionNumber>{}</latestVersionNumber>",
        esc(&t.id),
        esc(&t.name),
        esc(&t.create_time),
        esc(&t.account),
        t.default_version,
        t.latest()
    )
}

fn version_xml(t: &Template, v: &TemplateVersion) -> String {
    let mut s = format!(
        "<launchTemplateId>{}</launchTemplateId><launchTemplateName>{}</launchTemplateName><versionNumber>{}</versionNumber>",
        esc(&t.id),
        esc(&t.name),
        v.number
    );
    if let Some(d) = &v.description {
        let _ = write!(s, "<versionDescription>{}</versionDescription>", esc(d));
    }
    let _ = write!(
        s,
        "<createTime>{}</createTime><createdBy>arn:aws:iam::{}:user/test</createdBy><defaultVersion>{}</defaultVersion><launchTemplateData>",
        esc(&v.create_time),
        esc(&t.account),
        v.number == t.default_version
    );
    if let Some(i) = &v.image_id {
        let _ = write!(s, "<imageId>{}</imageId>", esc(i));
    }
    s.push_str("</launchTemplateData>");
    s
}

/// The template named by `LaunchTemplateId` or `LaunchTemplateName`, or the error to answer.
fn find_template(
    gov: &Gov,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Result<usize, Box<Outcome>> {
    let mine = |t: &&Template| t.region == region && t.account == account;
    match (
        get(form, "LaunchTemplateId"),
        get(form, "LaunchTemplateName"),
    ) {
        (Some(_), Some(_)) => Err(Box::new(error(
            400,
            "InvalidParameterCombination",
            "Specify either LaunchTemplateId or LaunchTemplateName, not both",
        ))),
        (Some(id), None) => gov
            .templates
            .iter()
            .position(|t| mine(&t) && t.id == id)
            .ok_or_else(|| {
                Box::new(error(
                    400,
                    "InvalidLaunchTemplateId.NotFound",
                    &format!(
                        "The specified launch template, with template ID {id}, does not exist."
                    ),
                ))
            }),
        (None, Some(name)) => gov
            .templates
            .iter()
            .position(|t| mine(&t) && t.name == name)
            .ok_or_else(|| {
                Box::new(error(
                    400,
                    "InvalidLaunchTemplateName.NotFoundException",
                    &format!(
                        "The specified launch template, with template name {name}, does not exist."
                    ),
                ))
            }),
        (None, None) => Err(Box::new(missing("LaunchTemplateId or LaunchTemplateName"))),
    }
}

fn template_image(form: &[(String, String)]) -> Result<Option<String>, Box<Outcome>> {
    match get(form, "LaunchTemplateData.ImageId") {
        None => Ok(None),
        // An SSM parameter is resolved at launch, not checked here.
        Some(i) if i.starts_with("resolve:ssm:") => Ok(Some(i.to_string())),
        Some(i) if is_well_formed_ami_id(i) => Ok(Some(i.to_string())),
        Some(i) => Err(Box::new(error(
            400,
            "InvalidAMIID.Malformed",
            &format!("Invalid id: \"{i}\" (expecting \"ami-...\")"),
        ))),
    }
}

pub(crate) fn create_launch_template(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let Some(name) = get(form, "LaunchTemplateName") else {
        return missing("LaunchTemplateName");
    };
    if !valid_template_name(name) {
        return error(
            400,
            "InvalidLaunchTemplateName.MalformedException",
            &format!("The launch template name {name} is malformed"),
        );
    }
    let image = match template_image(form) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    let mut gov = lock(&state.gov);
    if gov
        .templates
        .iter()
        .any(|t| t.region == region && t.account == account && t.name == name)
    {
        return error(
            400,
            "InvalidLaunchTemplateName.AlreadyExistsException",
            &format!("Launch template name already in use: {name}"),
        );
    }
    if get(form, "DryRun") == Some("true") {
        return dry_run();
    }
    let created = format_time(now());
    let t = Template {
        region: region.into(),
        account: account.into(),
        id: gov.fresh("lt-"),
        name: name.into(),
        default_version: 1,
        versions: vec![TemplateVersion {
            number: 1,
            description: get(form, "VersionDescription").map(str::to_string),
            image_id: image,
            create_time: created.clone(),
        }],
        create_time: created,
    };
    let body = format!("<launchTemplate>{}</launchTemplate>", template_xml(&t));
    gov.templates.push(t);
    ok("CreateLaunchTemplate", &body)
}

/// A version number, `$Latest` or `$Default` of `t`.
fn resolve_version(t: &Template, v: &str) -> Option<u64> {
    match v {
        "$Latest" => Some(t.latest()),
        "$Default" => Some(t.default_version),
        n => n
            .parse::<u64>()
            .ok()
            .filter(|n| t.versions.iter().any(|v| v.number == *n)),
    }
}

pub(crate) fn create_launch_template_version(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let image = match template_image(form) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    let mut gov = lock(&state.gov);
    let i = match find_template(&gov, form, region, account) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    let Some(t) = gov.templates.get_mut(i) else {
        return error(500, "InternalError", "template vanished");
    };
    let source = match get(form, "SourceVersion") {
        None => None,
        Some(s) => match resolve_version(t, s) {
            Some(n) => t.versions.iter().find(|v| v.number == n).cloned(),
            None => {
                return error(
                    400,
                    "InvalidLaunchTemplateVersion.NotFound",
                    &format!("The source version {s} does not exist"),
                );
            }
        },
    };
    if t.versions.len() >= 10_000 {
        return error(
            400,
            "LaunchTemplateVersionLimitExceeded",
            "A launch template has at most 10,000 versions",
        );
    }
    if get(form, "DryRun") == Some("true") {
        return dry_run();
    }
    let v = TemplateVersion {
        number: t.latest().saturating_add(1),
        description: get(form, "VersionDescription").map(str::to_string),
        image_id: image.or_else(|| source.and_then(|s| s.image_id)),
        create_time: format_time(now()),
    };
    let body = format!(
        "<launchTemplateVersion>{}</launchTemplateVersion>",
        version_xml(t, &v)
    );
    t.versions.push(v);
    ok("CreateLaunchTemplateVersion", &body)
}

pub(crate) fn modify_launch_template(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let mut gov = lock(&state.gov);
    let i = match find_template(&gov, form, region, account) {
        Ok(i) => i,
        Err(e) => return *e,
    };
    let Some(t) = gov.templates.get_mut(i) else {
        return error(500, "InternalError", "template vanished");
    };
    if let Some(v) = get(form, "SetDefaultVersion") {
        match resolve_version(t, v) {
            Some(n) => t.default_version = n,
            None => {
                return error(
                    400,
                    "InvalidLaunchTemplateVersion.NotFound",
                    &format!("Version {v} does not exist"),
                );
            }
        }
    }
    let body = format!("<launchTemplate>{}</launchTemplate>", template_xml(t));
    ok("ModifyLaunchTemplate", &body)
}

fn max_results(form: &[(String, String)], lo: usize, hi: usize) -> Result<usize, Box<Outcome>> {
    match get(form, "MaxResults") {
        None => Ok(hi),
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(Box::new(error(
                400,
                "InvalidParameterValue",
                &format!(
                    "Value ( {m} ) for parameter maxResults is invalid. Expecting a value between {lo} and {hi}."
                ),
            ))),
        },
    }
}

pub(crate) fn describe_launch_templates(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let ids = indexed(form, "LaunchTemplateId");
    let names = indexed(form, "LaunchTemplateName");
    let max = match max_results(form, 1, 200) {
        Ok(m) => m,
        Err(e) => return *e,
    };
    let gov = lock(&state.gov);
    let mine: Vec<&Template> = gov
        .templates
        .iter()
        .filter(|t| t.region == region && t.account == account)
        .filter(|t| ids.is_empty() || ids.contains(&t.id))
        .filter(|t| names.is_empty() || names.contains(&t.name))
        .collect();
    if let Some(missing) = ids.iter().find(|id| !mine.iter().any(|t| &t.id == *id)) {
        return error(
            400,
            "InvalidLaunchTemplateId.NotFound",
            &format!(
                "At least one of the launch templates specified in the request does not exist: {missing}"
            ),
        );
    }
    if let Some(missing) = names.iter().find(|n| !mine.iter().any(|t| &t.name == *n)) {
        return error(
            400,
            "InvalidLaunchTemplateName.NotFoundException",
            &format!(
                "At least one of the launch templates specified in the request does not exist: {missing}"
            ),
        );
    }
    let (start, end, next) = match page_bounds(get(form, "NextToken"), max, mine.len()) {
        Ok(p) => p,
        Err(m) => return error(400, "InvalidParameterValue", &m),
    };
    let mut body = String::from("<launchTemplates>");
    for t in mine.get(start..end).unwrap_or_default() {
        let _ = write!(body, "<item>{}</item>", template_xml(t));
    }
    body.push_str("</launchTemplates>");
    if let Some(n) = next {
        let _ = write!(body, "<nextToken>{}</nextToken>", esc(&n));
    }
    ok("DescribeLaunchTemplates", &body)
}

pub(crate) fn describe_launch_template_versions(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let wanted = indexed(form, "LaunchTemplateVersion");
    let max = match max_results(form, 1, 200) {
        Ok(m) => m,
        Err(e) => return *e,
    };
    let gov = lock(&state.gov);
    let named =
        get(form, "LaunchTemplateId").is_some() || get(form, "LaunchTemplateName").is_some();
    let templates: Vec<&Template> = if named {
        match find_template(&gov, form, region, account) {
            Ok(i) => gov.templates.get(i).into_iter().collect(),
            Err(e) => return *e,
        }
    } else {
        // Across every template: only `$Latest` and `$Default` may be asked for.
        if wanted.is_empty() || wanted.iter().any(|v| v != "$Latest" && v != "$Default") {
            return error(
                400,
                "InvalidParameterCombination",
                "Without a launch template, specify only $Latest and/or $Default versions",
            );
        }
        gov.templates
            .iter()
            .filter(|t| t.region == region && t.account == account)
            .collect()
    };
    let mut rows: Vec<(&Template, &TemplateVersion)> = Vec::new();
    for t in templates {
        let mut numbers: Vec<u64> = if wanted.is_empty() {
            t.versions.iter().map(|v| v.number).collect()
        } else {
            let mut n = Vec::new();
            for w in &wanted {
                match resolve_version(t, w) {
                    Some(x) => n.push(x),
                    None if named => {
                        return error(
                            400,
                            "InvalidLaunchTemplateVersion.NotFound",
                            &format!("Could not find launch template version {w}"),
                        );
                    }
                    None => {}
                }
            }
            n
        };
        numbers.sort_unstable();
        numbers.dedup();
        // Newest first, as EC2 answers.
        for n in numbers.into_iter().rev() {
            if let Some(v) = t.versions.iter().find(|v| v.number == n) {
                rows.push((t, v));
            }
        }
    }
    let (start, end, next) = match page_bounds(get(form, "NextToken"), max, rows.len()) {
        Ok(p) => p,
        Err(m) => return error(400, "InvalidParameterValue", &m),
    };
    let mut body = String::from("<launchTemplateVersionSet>");
    for (t, v) in rows.get(start..end).unwrap_or_default() {
        let _ = write!(body, "<item>{}</item>", version_xml(t, v));
    }
    body.push_str("</launchTemplateVersionSet>");
    if let Some(n) = next {
        let _ = write!(body, "<nextToken>{}</nextToken>", esc(&n));
    }
    ok("DescribeLaunchTemplateVersions", &body)
}

fn dry_run() -> Outcome {
    error(
        412,
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    )
}

// ---------------------------------------------------------------- EC2: image deprecation

fn owned_image(state: &State, region: &str, account: &str, id: &str) -> Result<(), Box<Outcome>> {
    let fleet = lock(&state.fleet);
    match fleet
        .images
        .iter()
        .find(|i| i.spec.region == region && i.spec.ami.id == id && i.spec.state != "deregistered")
    {
        None => Err(Box::new(error(
            400,
            "InvalidAMIID.NotFound",
            &format!("The image id '[{id}]' does not exist"),
        ))),
        Some(i) if i.spec.ami.owner_id != account => Err(Box::new(error(
            403,
            "AuthFailure",
            &format!("Not authorized for image:{id}"),
        ))),
        Some(_) => Ok(()),
    }
}

pub(crate) fn enable_image_deprecation(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let (Some(id), Some(at)) = (get(form, "ImageId"), get(form, "DeprecateAt")) else {
        return error(
            400,
            "MissingParameter",
            "The request must contain the parameters ImageId and DeprecateAt",
        );
    };
    if let Err(e) = owned_image(state, region, account, id) {
        return *e;
    }
    let Some(t) = parse_time(at) else {
        return error(
            400,
            "InvalidParameterValue",
            &format!("Invalid value '{at}' for DeprecateAt"),
        );
    };
    if t <= now() {
        return error(
            400,
            "InvalidParameterValue",
            "The deprecation time can't be in the past",
        );
    }
    if get(form, "DryRun") == Some("true") {
        return dry_run();
    }
    // Rounded up to the minute, as EC2 does.
    let t = if t % 60 == 0 { t } else { t - t % 60 + 60 };
    lock(&state.gov)
        .dates
        .entry((region.into(), id.into()))
        .or_default()
        .deprecation = Some(format_time(t));
    ok("EnableImageDeprecation", "<return>true</return>")
}

pub(crate) fn disable_image_deprecation(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let Some(id) = get(form, "ImageId") else {
        return missing("ImageId");
    };
    if let Err(e) = owned_image(state, region, account, id) {
        return *e;
    }
    if let Some(d) = lock(&state.gov).dates.get_mut(&(region.into(), id.into())) {
        d.deprecation = None;
    }
    ok("DisableImageDeprecation", "<return>true</return>")
}

// ---------------------------------------------------------------- EC2: Allowed AMIs

fn criteria_of(state: &State, region: &str) -> (String, Vec<ImageCriterionSpec>) {
    let fleet = lock(&state.fleet);
    let s = fleet.allowed.get(region).cloned().unwrap_or_default();
    let st = if s.state.is_empty() {
        "disabled".to_string()
    } else {
        s.state
    };
    let gov = lock(&state.gov);
    let criteria = gov.criteria.get(region).cloned().unwrap_or_else(|| {
        s.image_providers
            .into_iter()
            .map(|p| ImageCriterionSpec {
                image_providers: p,
                ..Default::default()
            })
            .collect()
    });
    (st, criteria)
}

fn set_items(body: &mut String, tag: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(body, "<{tag}>");
    for i in items {
        let _ = write!(body, "<item>{}</item>", esc(i));
    }
    let _ = write!(body, "</{tag}>");
}

/// `GetAllowedImagesSettings`: the state and every criterion.
pub(crate) fn get_allowed_images_settings(state: &State, region: &str) -> Outcome {
    let (st, criteria) = criteria_of(state, region);
    let mut body = format!("<state>{}</state><imageCriterionSet>", esc(&st));
    for c in &criteria {
        body.push_str("<item>");
        set_items(&mut body, "imageProviderSet", &c.image_providers);
        set_items(
            &mut body,
            "marketplaceProductCodeSet",
            &c.marketplace_product_codes,
        );
        set_items(&mut body, "imageNameSet", &c.image_names);
        if let Some(d) = c.maximum_days_since_deprecated {
            let _ = write!(
                body,
                "<deprecationTimeCondition><maximumDaysSinceDeprecated>{d}</maximumDaysSinceDeprecated></deprecationTimeCondition>"
            );
        }
        if let Some(d) = c.maximum_days_since_created {
            let _ = write!(
                body,
                "<creationDateCondition><maximumDaysSinceCreated>{d}</maximumDaysSinceCreated></creationDateCondition>"
            );
        }
        body.push_str("</item>");
    }
    body.push_str("</imageCriterionSet><managedBy>account</managedBy>");
    ok("GetAllowedImagesSettings", &body)
}

fn valid_provider(p: &str) -> bool {
    matches!(
        p,
        "amazon" | "aws-marketplace" | "aws-backup-vault" | "none"
    ) || (p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `ReplaceImageCriteriaInAllowedImagesSettings`: `ImageCriterion.N.ImageProvider.M`,
/// `.ImageName.M`, `.MarketplaceProductCode.M`,
/// `.CreationDateCondition.MaximumDaysSinceCreated`,
/// `.DeprecationTimeCondition.MaximumDaysSinceDeprecated`.
pub(crate) fn replace_image_criteria(
    state: &State,
    form: &[(String, String)],
    region: &str,
) -> Outcome {
    let mut numbers: Vec<u32> = form
        .iter()
        .filter_map(|(k, _)| {
            k.strip_prefix("ImageCriterion.")?
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    if numbers.len() > 10 {
        return error(
            400,
            "InvalidParameterValue",
            "You can specify at most 10 image criteria",
        );
    }
    let mut criteria = Vec::new();
    for n in numbers {
        let p = format!("ImageCriterion.{n}");
        let days = |k: &str| -> Result<Option<u32>, Box<Outcome>> {
            match get(form, &format!("{p}.{k}")) {
                None => Ok(None),
                Some(v) => v.parse::<u32>().map(Some).map_err(|_| {
                    Box::new(error(
                        400,
                        "InvalidParameterValue",
                        &format!("Invalid value '{v}' for {k}"),
                    ))
                }),
            }
        };
        let c = ImageCriterionSpec {
            image_providers: indexed(form, &format!("{p}.ImageProvider")),
            image_names: indexed(form, &format!("{p}.ImageName")),
            marketplace_product_codes: indexed(form, &format!("{p}.MarketplaceProductCode")),
            maximum_days_since_created: match days("CreationDateCondition.MaximumDaysSinceCreated")
            {
                Ok(d) => d,
                Err(e) => return *e,
            },
            maximum_days_since_deprecated: match days(
                "DeprecationTimeCondition.MaximumDaysSinceDeprecated",
            ) {
                Ok(d) => d,
                Err(e) => return *e,
            },
        };
        if c == ImageCriterionSpec::default() {
            return error(
                400,
                "InvalidParameterValue",
                "Each image criterion must specify at least one parameter",
            );
        }
        if c.image_providers.len() > 200
            || c.image_names.len() > 50
            || c.marketplace_product_codes.len() > 50
        {
            return error(
                400,
                "InvalidParameterValue",
                "An image criterion has at most 200 image providers, 50 image names and 50 product codes",
            );
        }
        if let Some(bad) = c.image_providers.iter().find(|p| !valid_provider(p)) {
            return error(
                400,
                "InvalidParameterValue",
                &format!("Invalid image provider '{bad}'"),
            );
        }
        if let Some(bad) = c.image_names.iter().find(|n| n.is_empty() || n.len() > 128) {
            return error(
                400,
                "InvalidParameterValue",
                &format!("Invalid image name '{bad}'"),
            );
        }
        criteria.push(c);
    }
    if get(form, "DryRun") == Some("true") {
        return dry_run();
    }
    let mut fleet = lock(&state.fleet);
    let entry = fleet.allowed.entry(region.into()).or_default();
    entry.image_providers = criteria.iter().map(|c| c.image_providers.clone()).collect();
    lock(&state.gov).criteria.insert(region.into(), criteria);
    drop(fleet);
    ok(
        "ReplaceImageCriteriaInAllowedImagesSettings",
        "<returnValue>true</returnValue>",
    )
}

fn set_allowed_state(state: &State, region: &str, st: &str) {
    lock(&state.fleet)
        .allowed
        .entry(region.into())
        .or_default()
        .state = st.into();
}

/// `EnableAllowedImagesSettings` with `AllowedImagesSettingsState` `enabled` or `audit-mode`.
pub(crate) fn enable_allowed_images(
    state: &State,
    form: &[(String, String)],
    region: &str,
) -> Outcome {
    let st = get(form, "AllowedImagesSettingsState").unwrap_or("");
    if !matches!(st, "enabled" | "audit-mode") {
        return error(
            400,
            "InvalidParameterValue",
            &format!("Invalid value '{st}' for AllowedImagesSettingsState: enabled | audit-mode"),
        );
    }
    if get(form, "DryRun") == Some("true") {
        return dry_run();
    }
    set_allowed_state(state, region, st);
    ok(
        "EnableAllowedImagesSettings",
        &format!("<allowedImagesSettingsState>{st}</allowedImagesSettingsState>"),
    )
}

/// `DisableAllowedImagesSettings`.
pub(crate) fn disable_allowed_images(
    state: &State,
    form: &[(String, String)],
    region: &str,
) -> Outcome {
    if get(form, "DryRun") == Some("true") {
        return dry_run();
    }
    set_allowed_state(state, region, "disabled");
    ok(
        "DisableAllowedImagesSettings",
        "<allowedImagesSettingsState>disabled</allowedImagesSettingsState>",
    )
}

// ---------------------------------------------------------------- Auto Scaling (awsquery)

const AUTOSCALING: QueryService = QueryService {
    ns: "http://autoscaling.amazonaws.com/doc/2011-01-01/",
    request_id: "66666666-7777-8888-9999-000000000000",
};

fn as_error(status: u16, code: &str, message: &str) -> Outcome {
    AUTOSCALING.error(status, "Sender", code, message)
}

/// Handle one Auto Scaling Query request.
pub(crate) fn handle_autoscaling(
    state: &State,
    form: &[(String, String)],
    region: &str,
    akid: &str,
) -> Outcome {
    let region = crate::fleet::region_or_default(region);
    let Some(action) = get(form, "Action") else {
        return as_error(400, "MissingAction", MISSING_ACTION);
    };
    let account = {
        let mut f = lock(&state.fleet);
        f.record(region, format!("autoscaling:{action}"), form.to_vec());
        f.account_of(akid)
    };
    match action {
        "CreateLaunchConfiguration" => create_launch_configuration(state, form, region, &account),
        "CreateAutoScalingGroup" => create_auto_scaling_group(state, form, region, &account),
        "DescribeLaunchConfigurations" => {
            describe_launch_configurations(state, form, region, &account)
        }
        "DescribeAutoScalingGroups" => describe_auto_scaling_groups(state, form, region, &account),
        other => as_error(400, "InvalidAction", &invalid_action(other)),
    }
}

/// The resource name in `key`: 1-255 characters, no control characters.
fn as_name<'a>(form: &'a [(String, String)], key: &str) -> Result<&'a str, Box<Outcome>> {
    get(form, key)
        .filter(|n| !n.is_empty() && n.len() <= 255 && !n.chars().any(char::is_control))
        .ok_or_else(|| {
            Box::new(as_error(
                400,
                "ValidationError",
                &format!("{key} is required (1-255 characters)"),
            ))
        })
}

fn create_launch_configuration(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let name = match as_name(form, "LaunchConfigurationName") {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let Some(image) = get(form, "ImageId") else {
        return as_error(400, "ValidationError", "ImageId is required");
    };
    let Some(itype) = get(form, "InstanceType") else {
        return as_error(400, "ValidationError", "InstanceType is required");
    };
    if !image_visible(state, region, account, image) {
        return as_error(
            400,
            "ValidationError",
            &format!("The image id '[{image}]' does not exist"),
        );
    }
    let mut gov = lock(&state.gov);
    if gov
        .configs
        .iter()
        .any(|c| c.region == region && c.account == account && c.name == name)
    {
        return as_error(
            400,
            "AlreadyExists",
            &format!(
                "Launch Configuration by this name already exists - A launch configuration already exists with the name {name}"
            ),
        );
    }
    gov.configs.push(LaunchConfig {
        region: region.into(),
        account: account.into(),
        name: name.into(),
        image_id: image.into(),
        instance_type: itype.into(),
        created: format_time(now()),
    });
    AUTOSCALING.ok("CreateLaunchConfiguration", None)
}

fn template_spec(form: &[(String, String)], prefix: &str) -> Option<GroupTemplate> {
    let id = get(form, &format!("{prefix}.LaunchTemplateId")).map(str::to_string);
    let name = get(form, &format!("{prefix}.LaunchTemplateName")).map(str::to_string);
    if id.is_none() && name.is_none() {
        return None;
    }
    Some(GroupTemplate {
        id,
        name,
        version: get(form, &format!("{prefix}.Version")).map(str::to_string),
    })
}

fn size(form: &[(String, String)], key: &str) -> Result<Option<u32>, Box<Outcome>> {
    match get(form, key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            Box::new(as_error(
                400,
                "ValidationError",
                &format!("Invalid {key}: {v}"),
            ))
        }),
    }
}

fn create_auto_scaling_group(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let name = match as_name(form, "AutoScalingGroupName") {
        Ok(n) => n,
        Err(e) => return *e,
    };
    let (min, max, desired) = match (
        size(form, "MinSize"),
        size(form, "MaxSize"),
        size(form, "DesiredCapacity"),
    ) {
        (Ok(Some(a)), Ok(Some(b)), Ok(c)) => (a, b, c.unwrap_or(a)),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return *e,
        _ => return as_error(400, "ValidationError", "MinSize and MaxSize are required"),
    };
    if min > max || desired < min || desired > max {
        return as_error(
            400,
            "ValidationError",
            "Desired capacity must be between the minimum and maximum size",
        );
    }
    let lt = template_spec(form, "LaunchTemplate");
    let mixed = template_spec(
        form,
        "MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification",
    );
    let lc = get(form, "LaunchConfigurationName").map(str::to_string);
    let sources =
        usize::from(lt.is_some()) + usize::from(mixed.is_some()) + usize::from(lc.is_some());
    if sources != 1 {
        return as_error(
            400,
            "ValidationError",
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        );
    }
    let mut gov = lock(&state.gov);
    if let Some(l) = &lc
        && !gov
            .configs
            .iter()
            .any(|c| c.region == region && c.account == account && &c.name == l)
    {
        return as_error(
            400,
            "ValidationError",
            &format!("Launch configuration name not found - Launch configuration {l} not found"),
        );
    }
    if let Some(t) = lt.as_ref().or(mixed.as_ref()) {
        let found = gov.templates.iter().find(|x| {
            x.region == region
                && x.account == account
                && (t.id.as_deref() == Some(x.id.as_str())
                    || t.name.as_deref() == Some(x.name.as_str()))
        });
        match found {
            None => {
                return as_error(
                    400,
                    "ValidationError",
                    "You must use a valid fully-formed launch template. The specified launch template does not exist.",
                );
            }
            Some(x) => {
                if let Some(v) = &t.version
                    && resolve_version(x, v).is_none()
                {
                    return as_error(
                        400,
                        "ValidationError",
                        &format!(
                            "You must use a valid fully-formed launch template. The specified version {v} does not exist."
                        ),
                    );
                }
            }
        }
    }
    if gov
        .groups
        .iter()
        .any(|g| g.region == region && g.account == account && g.name == name)
    {
        return as_error(
            400,
            "AlreadyExists",
            &format!(
                "AutoScalingGroup by this name already exists - A group with the name {name} already exists"
            ),
        );
    }
    let mut zones: Vec<String> = form
        .iter()
        .filter(|(k, _)| k.starts_with("AvailabilityZones.member."))
        .map(|(_, v)| v.clone())
        .collect();
    if zones.is_empty() {
        zones.push(format!("{region}a"));
    }
    gov.groups.push(Group {
        region: region.into(),
        account: account.into(),
        name: name.into(),
        template: lt.or(mixed.clone()),
        mixed: mixed.is_some(),
        launch_configuration: lc,
        min,
        max,
        desired,
        zones,
        created: format_time(now()),
    });
    AUTOSCALING.ok("CreateAutoScalingGroup", None)
}

fn members(form: &[(String, String)], prefix: &str) -> Vec<String> {
    indexed(form, &format!("{prefix}.member"))
}

fn max_records(form: &[(String, String)]) -> Result<usize, Box<Outcome>> {
    match get(form, "MaxRecords") {
        None => Ok(50),
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(Box::new(as_error(
                400,
                "ValidationError",
                &format!(
                    "1 validation error detected: Value '{m}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"
                ),
            ))),
        },
    }
}

/// An Auto Scaling resource of an account and region, listed by name.
trait Listed {
    fn key(&self) -> (&str, &str, &str);
}

impl Listed for LaunchConfig {
    fn key(&self) -> (&str, &str, &str) {
        (&self.region, &self.account, &self.name)
    }
}

impl Listed for Group {
    fn key(&self) -> (&str, &str, &str) {
        (&self.region, &self.account, &self.name)
    }
}

/// A `Describe…` answer of Auto Scaling: the rows of `rows` in `region` and `account` named by
/// `{names}.member.N` (all when none), one page of `MaxRecords` (default 50, at most 100) from
/// `NextToken`, each row's `<member>` XML (`item`) in `<{list}>`, then the next token.
fn describe_listed<T: Listed>(
    gov: &Gov,
    rows: &[T],
    form: &[(String, String)],
    (region, account): (&str, &str),
    (action, names, list): (&str, &str, &str),
    item: impl Fn(&T, &Gov) -> String,
) -> Outcome {
    let names = members(form, names);
    let max = match max_records(form) {
        Ok(m) => m,
        Err(e) => return *e,
    };
    let rows: Vec<&T> = rows
        .iter()
        .filter(|x| {
            let (r, a, n) = x.key();
            r == region && a == account && (names.is_empty() || names.iter().any(|m| m == n))
        })
        .collect();
    let (start, end, next) = match page_bounds(get(form, "NextToken"), max, rows.len()) {
        Ok(p) => p,
        Err(m) => return as_error(400, "InvalidNextToken", &m),
    };
    let mut r = format!("<{list}>");
    for x in rows.get(start..end).unwrap_or_default() {
        r.push_str(&item(x, gov));
    }
    let _ = write!(r, "</{list}>");
    if let Some(n) = next {
        let _ = write!(r, "<NextToken>{}</NextToken>", esc(&n));
    }
    AUTOSCALING.ok(action, Some(&r))
}

fn describe_launch_configurations(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let gov = lock(&state.gov);
    describe_listed(
        &gov,
        &gov.configs,
        form,
        (region, account),
        (
            "DescribeLaunchConfigurations",
            "LaunchConfigurationNames",
            "LaunchConfigurations",
        ),
        |c, _| {
            format!(
                "<member><LaunchConfigurationName>{n}</LaunchConfigurationName><LaunchConfigurationARN>arn:aws:autoscaling:{reg}:{acc}:launchConfiguration:00000000-0000-0000-0000-000000000000:launchConfigurationName/{n}</LaunchConfigurationARN><ImageId>{img}</ImageId><KeyName></KeyName><SecurityGroups/><UserData></UserData><InstanceType>{it}</InstanceType><KernelId></KernelId><RamdiskId></RamdiskId><BlockDeviceMappings/><InstanceMonitoring><Enabled>true</Enabled></InstanceMonitoring><CreatedTime>{t}</CreatedTime><EbsOptimized>false</EbsOptimized></member>",
                n = esc(&c.name),
                reg = esc(&c.region),
                acc = esc(&c.account),
                img = esc(&c.image_id),
                it = esc(&c.instance_type),
                t = esc(&c.created),
            )
        },
    )
}

fn spec_xml(t: &GroupTemplate, gov: &Gov, g: &Group) -> String {
    // EC2 fills in both the id and the name of the template.
    let x = gov.templates.iter().find(|x| {
        x.region == g.region
            && x.account == g.account
            && (t.id.as_deref() == Some(x.id.as_str())
                || t.name.as_deref() == Some(x.name.as_str()))
    });
    let id = x
        .map(|x| x.id.clone())
        .or_else(|| t.id.clone())
        .unwrap_or_default();
    let name = x
        .map(|x| x.name.clone())
        .or_else(|| t.name.clone())
        .unwrap_or_default();
    format!(
        "<LaunchTemplateId>{}</LaunchTemplateId><LaunchTemplateName>{}</LaunchTemplateName><Version>{}</Version>",
        esc(&id),
        esc(&name),
        esc(t.version.as_deref().unwrap_or("$Default"))
    )
}

fn describe_auto_scaling_groups(
    state: &State,
    form: &[(String, String)],
    region: &str,
    account: &str,
) -> Outcome {
    let gov = lock(&state.gov);
    describe_listed(
        &gov,
        &gov.groups,
        form,
        (region, account),
        (
            "DescribeAutoScalingGroups",
            "AutoScalingGroupNames",
            "AutoScalingGroups",
        ),
        group_xml,
    )
}

/// One `<member>` of `AutoScalingGroups`.
fn group_xml(g: &Group, gov: &Gov) -> String {
    let mut r = String::new();
    let _ = write!(
        r,
        "<member><AutoScalingGroupName>{n}</AutoScalingGroupName><AutoScalingGroupARN>arn:aws:autoscaling:{reg}:{acc}:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/{n}</AutoScalingGroupARN>",
        n = esc(&g.name),
        reg = esc(&g.region),
        acc = esc(&g.account),
    );
    if let Some(l) = &g.launch_configuration {
        let _ = write!(
            r,
            "<LaunchConfigurationName>{}</LaunchConfigurationName>",
            esc(l)
        );
    }
    if let Some(t) = &g.template {
        if g.mixed {
            let _ = write!(
                r,
                "<MixedInstancesPolicy><LaunchTemplate><LaunchTemplateSpecification>{}</LaunchTemplateSpecification><Overrides/></LaunchTemplate><InstancesDistribution><OnDemandBaseCapacity>0</OnDemandBaseCapacity><OnDemandPercentageAboveBaseCapacity>100</OnDemandPercentageAboveBaseCapacity><SpotAllocationStrategy>lowest-price</SpotAllocationStrategy></InstancesDistribution></MixedInstancesPolicy>",
                spec_xml(t, gov, g)
            );
        } else {
            let _ = write!(
                r,
                "<LaunchTemplate>{}</LaunchTemplate>",
                spec_xml(t, gov, g)
            );
        }
    }
    let _ = write!(
        r,
        "<MinSize>{}</MinSize><MaxSize>{}</MaxSize><DesiredCapacity>{}</DesiredCapacity><DefaultCooldown>300</DefaultCooldown><AvailabilityZones>",
        g.min, g.max, g.desired
    );
    for z in &g.zones {
        let _ = write!(r, "<member>{}</member>", esc(z));
    }
    let _ = write!(
        r,
        "</AvailabilityZones><LoadBalancerNames/><TargetGroupARNs/><HealthCheckType>EC2</HealthCheckType><HealthCheckGracePeriod>300</HealthCheckGracePeriod><Instances/><CreatedTime>{}</CreatedTime><SuspendedProcesses/><EnabledMetrics/><Tags/><TerminationPolicies><member>Default</member></TerminationPolicies><NewInstancesProtectedFromScaleIn>false</NewInstancesProtectedFromScaleIn><ServiceLinkedRoleARN>arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling</ServiceLinkedRoleARN></member>",
        esc(&g.created),
        esc(&g.account)
    );
    r
}

// ---------------------------------------------------------------- seeding and inspection

impl TestServer {
    /// Set an image's `creationDate` and `deprecationTime` (RFC 3339, `...Z`), also in the
    /// past, as time passing would (the API accepts only future deprecation times).
    pub fn set_image_dates(
        &self,
        region: &str,
        image_id: &str,
        creation: Option<&str>,
        deprecation: Option<&str>,
    ) {
        let mut gov = lock(&self.state.gov);
        let d = gov
            .dates
            .entry((region.into(), image_id.into()))
            .or_default();
        d.creation = creation.map(str::to_string);
        d.deprecation = deprecation.map(str::to_string);
    }

    /// The deprecation time of an image, if set.
    pub fn image_deprecation(&self, region: &str, image_id: &str) -> Option<String> {
        lock(&self.state.gov)
            .dates
            .get(&(region.to_string(), image_id.to_string()))
            .and_then(|d| d.deprecation.clone())
    }

    /// The Allowed AMIs state and criteria of a region.
    pub fn allowed_images_settings(&self, region: &str) -> (String, Vec<ImageCriterionSpec>) {
        criteria_of(&self.state, region)
    }

    /// The versions of a launch template (by name) of an account and region.
    pub fn launch_template_versions(
        &self,
        region: &str,
        account: &str,
        name: &str,
    ) -> Vec<TemplateVersionView> {
        lock(&self.state.gov)
            .templates
            .iter()
            .filter(|t| t.region == region && t.account == account && t.name == name)
            .flat_map(|t| {
                t.versions.iter().map(|v| TemplateVersionView {
                    number: v.number,
                    image_id: v.image_id.clone(),
                })
            })
            .collect()
    }
}
