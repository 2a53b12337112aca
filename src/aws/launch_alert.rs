//! `amiscan allowlist alert`: the handler of an EventBridge "AWS API Call via CloudTrail" event
//! for a launch or a launch source (`RunInstances`, `CreateLaunchTemplate`,
//! `CreateLaunchTemplateVersion`, `CreateAutoScalingGroup`). It finds the AMI(s) the call
//! launches or will launch — from the request, the response, or the launch template or launch
//! configuration it names (resolved through the API) — describes each, and checks it against the
//! image criteria (the Allowed AMIs shape, [`blocked_by`]) and the trusted owner accounts. Each
//! unapproved image is a [`LaunchFinding`], raised as an ASFF finding (Security Hub
//! `BatchImportFindings`) and/or an SNS message (`Publish`).
//!
//! The event is hostile input: it is size-limited, every field is optional and checked, and a
//! field that cannot be read is an error, never a silently approved launch.

use super::AwsError;
use super::audit::classify;
use super::ec2ops::{AllowedImages, allowed_images_settings, api_error};
use super::governance_analysis::{blocked_by, epoch};
use super::inventory::region_clients;
use crate::model::governance::{ImageCriterion, InventoryImage, ScanResult};
use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;
use serde::Serialize;
use serde_json::Value;

/// The largest event accepted (EventBridge events are at most 256 KiB).
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// The most images one event may name (`RunInstances` takes one; templates one each).
const MAX_IMAGES: usize = 100;

/// Why an event cannot be handled.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Not JSON, too large, or not the CloudTrail envelope.
    #[error("not a CloudTrail API call event: {0}")]
    BadEvent(String),
    /// A field the call needs is missing or of the wrong type.
    #[error("{event}: cannot find the image: {why}")]
    NoImage {
        /// The event name.
        event: String,
        /// What is missing.
        why: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Where the image of a launch comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ImageSource {
    /// The image id itself.
    Image {
        /// `ami-...`.
        image_id: String,
    },
    /// A launch template version (`$Default` when the call names none).
    LaunchTemplate {
        /// Its id, when named by id.
        id: Option<String>,
        /// Its name, when named by name.
        name: Option<String>,
        /// Version, `$Default` or `$Latest`.
        version: String,
    },
    /// A launch configuration.
    LaunchConfiguration {
        /// Its name.
        name: String,
    },
}

/// A launch event as the handler needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchEvent {
    /// The account of the call.
    pub account: String,
    /// Its region.
    pub region: String,
    /// `RunInstances`, ...
    pub event_name: String,
    /// CloudTrail `eventID` (or the EventBridge `id`).
    pub event_id: String,
    /// CloudTrail `eventTime`.
    pub event_time: Option<String>,
    /// `userIdentity.arn`.
    pub principal: Option<String>,
    /// What the call names (the launch template or launch configuration, or `ami-...`).
    pub subject: Option<String>,
    /// Where its images come from.
    pub sources: Vec<ImageSource>,
}

/// An unapproved image launched, or to be launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchFinding {
    /// The event.
    pub event_name: String,
    /// CloudTrail event id.
    pub event_id: String,
    /// Account and region of the call.
    pub account: String,
    /// Region.
    pub region: String,
    /// Who made the call.
    pub principal: Option<String>,
    /// What the call named.
    pub subject: Option<String>,
    /// The image.
    pub image_id: String,
    /// Its name.
    pub image_name: Option<String>,
    /// Its owner.
    pub owner_id: Option<String>,
    /// Its owner alias.
    pub owner_alias: Option<String>,
    /// `public-unverified`, `shared-privately`, ...
    pub class: String,
    /// Why it is not approved.
    pub why: String,
}

/// What the handler checks against and where it reports.
#[derive(Debug, Clone, Default)]
pub struct AlertOptions {
    /// Criteria; `None`: the region's Allowed AMIs criteria, or, when it has none,
    /// [`default_criteria`].
    pub criteria: Option<Vec<ImageCriterion>>,
    /// Owner accounts whose images are approved whatever the criteria (the event's own account
    /// is always one).
    pub trusted_accounts: Vec<String>,
    /// Publish each finding to this SNS topic.
    pub sns_topic: Option<String>,
    /// Import each finding into Security Hub (`BatchImportFindings`).
    pub security_hub: bool,
    /// Describe only; send nothing.
    pub dry_run: bool,
}

/// What the handler did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertOutcome {
    /// The event, parsed (`None`: not a launch event; ignored).
    pub event: Option<LaunchEvent>,
    /// Why it was ignored.
    pub ignored: Option<String>,
    /// The images checked.
    pub checked: Vec<String>,
    /// The unapproved ones.
    pub findings: Vec<LaunchFinding>,
    /// Where the criteria came from: `given`, `region`, `default`.
    pub criteria_source: String,
    /// Security Hub findings imported.
    pub imported: usize,
    /// SNS message ids.
    pub published: Vec<String>,
}

/// The criteria when none are given and the region has none: verified providers only (plus
/// the account's own and trusted accounts, approved in any case).
pub fn default_criteria() -> Vec<ImageCriterion> {
    vec![ImageCriterion {
        image_providers: vec!["amazon".into(), "aws-marketplace".into()],
        ..Default::default()
    }]
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn bad(msg: impl Into<String>) -> AlertError {
    AlertError::BadEvent(msg.into())
}

/// A launch template reference (`launchTemplateId`/`launchTemplateName`/`version`, either case).
fn template_ref(v: &Value) -> Option<ImageSource> {
    let id = s(v, "launchTemplateId").or_else(|| s(v, "LaunchTemplateId"));
    let name = s(v, "launchTemplateName").or_else(|| s(v, "LaunchTemplateName"));
    if id.is_none() && name.is_none() {
        return None;
    }
    let version = v
        .get("version")
        .or_else(|| v.get("Version"))
        .and_then(|x| match x {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "$Default".into());
    Some(ImageSource::LaunchTemplate {
        id: id.map(str::to_string),
        name: name.map(str::to_string),
        version,
    })
}

fn image_source(id: &str, event: &str) -> Result<ImageSource, AlertError> {
    let ok = id.len() <= 64
        && id
            .strip_prefix("ami-")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(ImageSource::Image {
            image_id: id.to_string(),
        })
    } else {
        Err(AlertError::NoImage {
            event: event.into(),
            why: format!("image {id:?} is not an AMI id (an SSM parameter is not resolved)"),
        })
    }
}

fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(|x| x.get("items"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Parse an event. `Ok(None)`: a well-formed event this handler does not act on (another call,
/// or a call that failed: nothing was launched or created), with the reason.
pub fn parse_event(text: &[u8]) -> Result<Result<LaunchEvent, String>, AlertError> {
    if text.len() > MAX_EVENT_BYTES {
        return Err(bad(format!(
            "{} bytes (more than {MAX_EVENT_BYTES})",
            text.len()
        )));
    }
    let v: Value = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
    let d = v.get("detail").ok_or_else(|| bad("no detail"))?;
    let name = s(d, "eventName").ok_or_else(|| bad("no detail.eventName"))?;
    let source = s(d, "eventSource").unwrap_or("");
    if let Some(code) = s(d, "errorCode") {
        return Ok(Err(format!("{name} failed ({code}): nothing was launched")));
    }
    let account = s(d, "recipientAccountId")
        .or_else(|| s(&v, "account"))
        .or_else(|| d.get("userIdentity").and_then(|u| s(u, "accountId")))
        .ok_or_else(|| bad("no account"))?;
    let region = s(d, "awsRegion")
        .or_else(|| s(&v, "region"))
        .ok_or_else(|| bad("no region"))?;
    let req = d.get("requestParameters").filter(|r| r.is_object());
    let resp = d.get("responseElements").filter(|r| r.is_object());
    let mut sources = Vec::new();
    let subject;
    let need = |what: &str| AlertError::NoImage {
        event: name.into(),
        why: what.into(),
    };
    match (source, name) {
        ("ec2.amazonaws.com", "RunInstances") => {
            let req = req.ok_or_else(|| need("no requestParameters"))?;
            for it in items(req.get("instancesSet")) {
                if let Some(id) = s(it, "imageId") {
                    sources.push(image_source(id, name)?);
                }
            }
            // Launched from a template: the response says which image each instance got.
            if sources.is_empty() {
                for it in items(resp.and_then(|r| r.get("instancesSet"))) {
                    if let Some(id) = s(it, "imageId") {
                        let src = image_source(id, name)?;
                        if !sources.contains(&src) {
                            sources.push(src);
                        }
                    }
                }
            }
            let lt = req.get("launchTemplate").and_then(template_ref);
            if sources.is_empty()
                && let Some(lt) = &lt
            {
                sources.push(lt.clone());
            }
            subject = match &lt {
                Some(ImageSource::LaunchTemplate { id, name, version }) => Some(format!(
                    "launch template {} version {version}",
                    id.as_deref().or(name.as_deref()).unwrap_or("?")
                )),
                _ => None,
            };
        }
        ("ec2.amazonaws.com", "CreateLaunchTemplate" | "CreateLaunchTemplateVersion") => {
            let key = format!("{name}Request");
            let r = req
                .and_then(|r| r.get(&key))
                .ok_or_else(|| need(&format!("no requestParameters.{key}")))?;
            let data = r
                .get("LaunchTemplateData")
                .ok_or_else(|| need("no LaunchTemplateData"))?;
            subject = s(r, "LaunchTemplateName")
                .or_else(|| s(r, "LaunchTemplateId"))
                .map(|t| format!("launch template {t}"));
            match s(data, "ImageId") {
                Some(id) => sources.push(image_source(id, name)?),
                // A version without ImageId inherits it from its source version.
                None if name == "CreateLaunchTemplateVersion" => {
                    if let Some(t) = template_ref(r) {
                        let (id, tname) = match t {
                            ImageSource::LaunchTemplate { id, name, .. } => (id, name),
                            _ => (None, None),
                        };
                        let version = s(r, "SourceVersion").unwrap_or("$Default").to_string();
                        sources.push(ImageSource::LaunchTemplate {
                            id,
                            name: tname,
                            version,
                        });
                    }
                }
                None => {
                    return Ok(Err(format!(
                        "{name}: the template names no image (the launch must give one)"
                    )));
                }
            }
        }
        ("autoscaling.amazonaws.com", "CreateAutoScalingGroup") => {
            let req = req.ok_or_else(|| need("no requestParameters"))?;
            subject = s(req, "autoScalingGroupName").map(|g| format!("Auto Scaling group {g}"));
            if let Some(lc) = s(req, "launchConfigurationName") {
                sources.push(ImageSource::LaunchConfiguration { name: lc.into() });
            } else if let Some(lt) = req.get("launchTemplate").and_then(template_ref) {
                sources.push(lt);
            } else if let Some(lt) = req
                .get("mixedInstancesPolicy")
                .and_then(|m| m.get("launchTemplate"))
                .and_then(|l| l.get("launchTemplateSpecification"))
                .and_then(template_ref)
            {
                sources.push(lt);
            } else if s(req, "instanceId").is_some() {
                return Ok(Err(
                    "CreateAutoScalingGroup from an instance: its launch was checked then".into(),
                ));
            }
        }
        _ => return Ok(Err(format!("{source} {name} is not a launch event"))),
    }
    if sources.is_empty() {
        return Err(need("the call names no image, template or configuration"));
    }
    if sources.len() > MAX_IMAGES {
        return Err(bad(format!("more than {MAX_IMAGES} images")));
    }
    Ok(Ok(LaunchEvent {
        account: account.into(),
        region: region.into(),
        event_name: name.into(),
        event_id: s(d, "eventID")
            .or_else(|| s(&v, "id"))
            .unwrap_or("unknown")
            .into(),
        event_time: s(d, "eventTime").map(str::to_string),
        principal: d
            .get("userIdentity")
            .and_then(|u| s(u, "arn"))
            .map(str::to_string),
        subject,
        sources,
    }))
}

/// The image of a launch template version.
async fn template_image(
    ec2: &aws_sdk_ec2::Client,
    id: Option<&str>,
    name: Option<&str>,
    version: &str,
) -> Result<Option<String>, AwsError> {
    let out = ec2
        .describe_launch_template_versions()
        .set_launch_template_id(id.map(str::to_string))
        .set_launch_template_name(if id.is_some() {
            None
        } else {
            name.map(str::to_string)
        })
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
    Ok(out
        .launch_template_versions()
        .first()
        .and_then(|v| v.launch_template_data())
        .and_then(|d| d.image_id())
        .map(str::to_string))
}

/// The image of a launch configuration.
async fn configuration_image(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Result<Option<String>, AwsError> {
    let out = asg
        .describe_launch_configurations()
        .launch_configuration_names(name)
        .send()
        .await
        .map_err(|e| {
            api_error(
                "DescribeLaunchConfigurations",
                "autoscaling:DescribeLaunchConfigurations",
                &e,
            )
        })?;
    Ok(out
        .launch_configurations()
        .first()
        .and_then(|c| c.image_id())
        .map(str::to_string))
}

/// The image as the criteria check needs it (`exists: false` when not visible any more).
async fn describe(
    ec2: &aws_sdk_ec2::Client,
    account: &str,
    id: &str,
    trusted: &[String],
    now: i64,
) -> Result<InventoryImage, AwsError> {
    let out = ec2
        .describe_images()
        .include_deprecated(true)
        .filters(Filter::builder().name("image-id").values(id).build())
        .send()
        .await
        .map_err(|e| api_error("DescribeImages", "ec2:DescribeImages", &e))?;
    let img = out.images().iter().find(|i| i.image_id() == Some(id));
    let owner = img.and_then(|i| i.owner_id()).map(str::to_string);
    let alias = img.and_then(|i| i.image_owner_alias()).map(str::to_string);
    let public = img.map(|i| i.public().unwrap_or(false));
    let disabled = AllowedImages {
        state: "disabled".into(),
        image_providers: Vec::new(),
    };
    let deprecation = img.and_then(|i| i.deprecation_time()).map(str::to_string);
    Ok(InventoryImage {
        image_id: id.to_string(),
        name: img.and_then(|i| i.name()).map(str::to_string),
        class: classify(
            Some(account),
            owner.as_deref(),
            alias.as_deref(),
            public,
            &disabled,
            trusted,
        ),
        owner_id: owner,
        owner_alias: alias,
        public,
        exists: img.is_some(),
        state: img.and_then(|i| i.state()).map(|s| s.as_str().to_string()),
        creation_date: img.and_then(|i| i.creation_date()).map(str::to_string),
        deprecated: deprecation
            .as_deref()
            .and_then(epoch)
            .is_some_and(|t| t <= now),
        deprecation_time: deprecation,
        lineage: None,
        product_codes: img
            .map(super::inventory::marketplace_codes)
            .unwrap_or_default(),
        scan: ScanResult {
            status: "not-scanned".into(),
            max_severity: None,
            scanned_at: None,
        },
        used_by: Vec::new(),
    })
}

/// Why `img` is not approved, or `None`: owned by the account or a trusted one, or allowed by
/// one of the criteria.
pub fn unapproved(
    img: &InventoryImage,
    account: &str,
    trusted: &[String],
    criteria: &[ImageCriterion],
    now: i64,
) -> Option<String> {
    let owner = img.owner_id.as_deref();
    if img.exists && owner.is_some_and(|o| o == account || trusted.iter().any(|t| t == o)) {
        return None;
    }
    blocked_by(criteria, img, now)
}

/// The ASFF finding of `f` (Security Hub's own product ARN for the account).
pub fn asff(f: &LaunchFinding, now: &str) -> Value {
    let partition = if f.region.starts_with("cn-") {
        "aws-cn"
    } else if f.region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    serde_json::json!({
        "SchemaVersion": "2018-10-08",
        "Id": format!("amiscan/launch-alert/{}/{}", f.event_id, f.image_id),
        "ProductArn": format!("arn:{partition}:securityhub:{}:{}:product/{}/default", f.region, f.account, f.account),
        "GeneratorId": "amiscan/launch-alert",
        "AwsAccountId": f.account,
        "Types": ["Software and Configuration Checks/AWS Security Best Practices/Unapproved AMI"],
        "CreatedAt": now,
        "UpdatedAt": now,
        "Severity": {"Label": "HIGH"},
        "Title": format!("{} from an unapproved image {}", f.event_name, f.image_id),
        "Description": description(f),
        "Resources": [{
            "Type": "AwsEc2Image",
            "Id": format!("arn:{partition}:ec2:{}::image/{}", f.region, f.image_id),
            "Partition": partition,
            "Region": f.region,
        }],
        "Remediation": {"Recommendation": {"Text": "Launch from an approved image (amiscan allowlist propose/check), or scan this one (amiscan scan --copy) and add its owner to the trusted accounts."}},
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    })
}

fn description(f: &LaunchFinding) -> String {
    let mut d = format!(
        "{} by {} in {} {}",
        f.event_name,
        f.principal.as_deref().unwrap_or("an unknown principal"),
        f.account,
        f.region
    );
    if let Some(s) = &f.subject {
        d.push_str(&format!(" ({s})"));
    }
    d.push_str(&format!(
        " uses image {} ({}, owner {}, {}): {}.",
        f.image_id,
        f.image_name.as_deref().unwrap_or("no name"),
        f.owner_alias
            .as_deref()
            .or(f.owner_id.as_deref())
            .unwrap_or("unknown"),
        f.class,
        f.why
    ));
    d.chars().take(1024).collect()
}

fn sdk_finding(
    v: &Value,
    f: &LaunchFinding,
) -> Result<aws_sdk_securityhub::types::AwsSecurityFinding, AwsError> {
    use aws_sdk_securityhub::types::{
        AwsSecurityFinding, Recommendation, RecordState, Remediation, Resource, Severity,
        SeverityLabel, Workflow, WorkflowStatus,
    };
    let st = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let res = &v["Resources"][0];
    let rs = |k: &str| res.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(AwsSecurityFinding::builder()
        .schema_version(st("SchemaVersion"))
        .id(st("Id"))
        .product_arn(st("ProductArn"))
        .generator_id(st("GeneratorId"))
        .aws_account_id(st("AwsAccountId"))
        .types(v["Types"][0].as_str().unwrap_or(""))
        .created_at(st("CreatedAt"))
        .updated_at(st("UpdatedAt"))
        .severity(Severity::builder().label(SeverityLabel::High).build())
        .title(st("Title"))
        .description(st("Description"))
        .resources(
            Resource::builder()
                .r#type(rs("Type"))
                .id(rs("Id"))
                .partition(aws_sdk_securityhub::types::Partition::from(
                    rs("Partition").as_str(),
                ))
                .region(rs("Region"))
                .build(),
        )
        .remediation(
            Remediation::builder()
                .recommendation(
                    Recommendation::builder()
                        .text(
                            v["Remediation"]["Recommendation"]["Text"]
                                .as_str()
                                .unwrap_or(""),
                        )
                        .build(),
                )
                .build(),
        )
        .product_fields("amiscan/ImageId", &f.image_id)
        .product_fields("amiscan/Event", &f.event_name)
        .product_fields("amiscan/EventId", &f.event_id)
        .record_state(RecordState::Active)
        .workflow(Workflow::builder().status(WorkflowStatus::New).build())
        .build())
}

/// Handle one event: parse, resolve, check, raise. `now`: seconds since the epoch and RFC 3339.
pub async fn handle(
    conf: &SdkConfig,
    event: &[u8],
    opts: &AlertOptions,
    now: (i64, &str),
) -> Result<AlertOutcome, AlertError> {
    let ev = match parse_event(event)? {
        Ok(ev) => ev,
        Err(why) => {
            return Ok(AlertOutcome {
                ignored: Some(why),
                ..Default::default()
            });
        }
    };
    let (ec2, asg) = region_clients(conf, &ev.region);
    let mut outcome = AlertOutcome::default();
    let criteria = match &opts.criteria {
        Some(c) => {
            outcome.criteria_source = "given".into();
            c.clone()
        }
        None => {
            let set = allowed_images_settings(&ec2).await?;
            if set.state != "disabled" && !set.image_criteria.is_empty() {
                outcome.criteria_source = "region".into();
                set.image_criteria
            } else {
                outcome.criteria_source = "default".into();
                default_criteria()
            }
        }
    };
    let mut images: Vec<String> = Vec::new();
    for src in &ev.sources {
        let id = match src {
            ImageSource::Image { image_id } => Some(image_id.clone()),
            ImageSource::LaunchTemplate { id, name, version } => {
                template_image(&ec2, id.as_deref(), name.as_deref(), version).await?
            }
            ImageSource::LaunchConfiguration { name } => configuration_image(&asg, name).await?,
        };
        let id = id.ok_or_else(|| AlertError::NoImage {
            event: ev.event_name.clone(),
            why: format!("{src:?} names no image (or is not visible)"),
        })?;
        if !images.contains(&id) {
            images.push(id);
        }
    }
    for id in &images {
        let img = describe(&ec2, &ev.account, id, &opts.trusted_accounts, now.0).await?;
        if let Some(why) = unapproved(&img, &ev.account, &opts.trusted_accounts, &criteria, now.0) {
            outcome.findings.push(LaunchFinding {
                event_name: ev.event_name.clone(),
                event_id: ev.event_id.clone(),
                account: ev.account.clone(),
                region: ev.region.clone(),
                principal: ev.principal.clone(),
                subject: ev.subject.clone(),
                image_id: id.clone(),
                image_name: img.name.clone(),
                owner_id: img.owner_id.clone(),
                owner_alias: img.owner_alias.clone(),
                class: img.class.as_str().to_string(),
                why,
            });
        }
    }
    outcome.checked = images;
    if !opts.dry_run && !outcome.findings.is_empty() {
        let findings = outcome.findings.clone();
        raise(conf, &ev.region, &findings, opts, now.1, &mut outcome).await?;
    }
    outcome.event = Some(ev);
    Ok(outcome)
}

async fn raise(
    conf: &SdkConfig,
    region: &str,
    findings: &[LaunchFinding],
    opts: &AlertOptions,
    now: &str,
    outcome: &mut AlertOutcome,
) -> Result<(), AwsError> {
    let r = aws_config::Region::new(region.to_string());
    if opts.security_hub {
        let mut b = aws_sdk_securityhub::config::Builder::from(conf).region(r.clone());
        if let Some(u) = conf.endpoint_url() {
            b = b.endpoint_url(u);
        }
        let hub = aws_sdk_securityhub::Client::from_conf(b.build());
        let mut list = Vec::new();
        for f in findings {
            list.push(sdk_finding(&asff(f, now), f)?);
        }
        let out = hub
            .batch_import_findings()
            .set_findings(Some(list))
            .send()
            .await
            .map_err(|e| api_error("BatchImportFindings", "securityhub:BatchImportFindings", &e))?;
        if out.failed_count().unwrap_or(0) > 0 {
            let why: Vec<String> = out
                .failed_findings()
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.id().unwrap_or("?"),
                        f.error_message().unwrap_or("?")
                    )
                })
                .collect();
            return Err(AwsError::Api {
                operation: "BatchImportFindings",
                message: format!("findings refused: {}", why.join("; ")),
            });
        }
        outcome.imported = usize::try_from(out.success_count().unwrap_or(0)).unwrap_or(0);
    }
    if let Some(topic) = &opts.sns_topic {
        let mut b = aws_sdk_sns::config::Builder::from(conf).region(r);
        if let Some(u) = conf.endpoint_url() {
            b = b.endpoint_url(u);
        }
        let sns = aws_sdk_sns::Client::from_conf(b.build());
        for f in findings {
            let subject: String =
                format!("amiscan: {} from unapproved {}", f.event_name, f.image_id)
                    .chars()
                    .take(100)
                    .collect();
            let body = serde_json::json!({"summary": description(f), "finding": f});
            let out = sns
                .publish()
                .topic_arn(topic)
                .subject(subject)
                .message(body.to_string())
                .send()
                .await
                .map_err(|e| api_error("Publish", "sns:Publish", &e))?;
            outcome
                .published
                .push(out.message_id().unwrap_or_default().to_string());
        }
    }
    Ok(())
}
