//! The EC2 calls of the fleet workflows (sweep, audit, publish, copy), each a small async function
//! over an injected client with bounded pagination and a typed error naming the IAM action.

use super::AwsError;
pub use crate::model::fleet::AllowedImages;
use crate::model::governance::{
    AllowedImagesSettings, CreationDateCondition, DeprecationTimeCondition, ImageCriterion,
};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    Filter, LaunchPermission, LaunchPermissionModifications, PermissionGroup,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Pages read from one paginated call before giving up (a server that never stops paging).
pub const MAX_PAGES: usize = 1000;

/// An image as the fleet workflows need it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageInfo {
    /// `ami-...`.
    pub id: String,
    /// The region it was listed in.
    pub region: String,
    /// Image name.
    pub name: Option<String>,
    /// Owner account.
    pub owner_id: Option<String>,
    /// `amazon`, `aws-marketplace`, ... for images of those owners.
    pub owner_alias: Option<String>,
    /// Launch permission for everyone.
    pub public: bool,
    /// `available`, `pending`, ...
    pub state: Option<String>,
    /// EBS snapshots of its mappings, in mapping order.
    pub snapshot_ids: Vec<String>,
}

impl ImageInfo {
    fn from_sdk(region: &str, i: &aws_sdk_ec2::types::Image) -> ImageInfo {
        ImageInfo {
            id: i.image_id().unwrap_or_default().to_string(),
            region: region.to_string(),
            name: i.name().map(str::to_string),
            owner_id: i.owner_id().map(str::to_string),
            owner_alias: i.image_owner_alias().map(str::to_string),
            public: i.public().unwrap_or(false),
            state: i.state().map(|s| s.as_str().to_string()),
            snapshot_ids: i
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// An instance and the AMI it was launched from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceInfo {
    /// `i-...`.
    pub id: String,
    /// `ami-...`.
    pub image_id: String,
    /// `running`, `stopped`, ...
    pub state: String,
    /// The reservation's owner: the caller's account.
    pub owner_id: Option<String>,
}

/// What `DescribeInstanceImageMetadata` says about an instance's AMI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageMetadata {
    /// The instance.
    pub instance_id: String,
    /// Its AMI.
    pub image_id: String,
    /// AMI owner, when known.
    pub owner_id: Option<String>,
    /// AMI owner alias.
    pub owner_alias: Option<String>,
    /// Whether the AMI is public.
    pub public: Option<bool>,
    /// AMI state (`deregistered`, ...).
    pub state: Option<String>,
}

/// Map an SDK error to [`AwsError`], naming the operation and the IAM action.
pub fn api_error<E>(operation: &'static str, action: &'static str, err: &SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(ctx) = err {
        let e = ctx.err();
        let message = e.message().unwrap_or("").to_string();
        return match e.code() {
            Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => {
                AwsError::AccessDenied { action, message }
            }
            code => AwsError::Api {
                operation,
                message: format!(
                    "{} (HTTP {}): {message}",
                    code.unwrap_or("unknown error"),
                    ctx.raw().status().as_u16()
                ),
            },
        };
    }
    AwsError::Api {
        operation,
        message: crate::source::ebs::error_chain(err),
    }
}

fn too_many_pages(operation: &'static str) -> AwsError {
    AwsError::Api {
        operation,
        message: format!("more than {MAX_PAGES} pages: giving up"),
    }
}

/// Every page of a paged call: `fetch` gets the previous page's token and returns that page's
/// items and its next token. At most [`MAX_PAGES`] pages, then an error rather than a loop.
pub(crate) async fn all_pages<T, F, Fut>(
    operation: &'static str,
    mut fetch: F,
) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), AwsError>>,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (items, next) = fetch(token.take()).await?;
        out.extend(items);
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
    Err(too_many_pages(operation))
}

/// Every enabled region (`DescribeRegions`), sorted.
pub async fn list_regions(ec2: &aws_sdk_ec2::Client) -> Result<Vec<String>, AwsError> {
    let out = ec2
        .describe_regions()
        .send()
        .await
        .map_err(|e| api_error("DescribeRegions", "ec2:DescribeRegions", &e))?;
    let mut v: Vec<String> = out
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// Images of `owners` (`self`, account ids, `amazon`) with optional filters, every page.
pub async fn list_images(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    owners: &[String],
    filters: &[(&str, &str)],
) -> Result<Vec<ImageInfo>, AwsError> {
    describe_images(region, || {
        let mut req = ec2
            .describe_images()
            .set_owners(Some(owners.to_vec()))
            .max_results(1000);
        for (name, value) in filters {
            req = req.filters(Filter::builder().name(*name).values(*value).build());
        }
        req
    })
    .await
}

/// Every page of `DescribeImages` for the request `request` makes.
async fn describe_images(
    region: &str,
    request: impl Fn() -> aws_sdk_ec2::operation::describe_images::builders::DescribeImagesFluentBuilder,
) -> Result<Vec<ImageInfo>, AwsError> {
    all_pages("DescribeImages", |token| {
        let req = request().set_next_token(token);
        async move {
            let page = req
                .send()
                .await
                .map_err(|e| api_error("DescribeImages", "ec2:DescribeImages", &e))?;
            let items = page.images().iter().map(|i| ImageInfo::from_sdk(region, i));
            Ok((items.collect(), page.next_token().map(str::to_string)))
        }
    })
    .await
}

/// The visible images among `ids` (an `image-id` filter, so ids no longer visible are simply
/// missing instead of failing the call).
pub async fn images_by_id(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    ids: &[String],
) -> Result<Vec<ImageInfo>, AwsError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(100) {
        let page_items = describe_images(region, || {
            ec2.describe_images().filters(
                Filter::builder()
                    .name("image-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
        })
        .await?;
        out.extend(page_items);
    }
    Ok(out)
}

/// One image by id, `None` when it is not (or no longer) visible.
pub async fn image(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    id: &str,
) -> Result<Option<ImageInfo>, AwsError> {
    Ok(images_by_id(ec2, region, &[id.to_string()])
        .await?
        .into_iter()
        .find(|i| i.id == id))
}

/// Every instance of the region (not terminated), every page.
pub async fn list_instances(ec2: &aws_sdk_ec2::Client) -> Result<Vec<InstanceInfo>, AwsError> {
    all_pages("DescribeInstances", |token| {
        let req = ec2
            .describe_instances()
            .max_results(1000)
            .set_next_token(token);
        async move {
            let page = req
                .send()
                .await
                .map_err(|e| api_error("DescribeInstances", "ec2:DescribeInstances", &e))?;
            let mut items = Vec::new();
            for r in page.reservations() {
                for i in r.instances() {
                    let state = i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default();
                    if state == "terminated" {
                        continue;
                    }
                    items.push(InstanceInfo {
                        id: i.instance_id().unwrap_or_default().to_string(),
                        image_id: i.image_id().unwrap_or_default().to_string(),
                        state,
                        owner_id: r.owner_id().map(str::to_string),
                    });
                }
            }
            Ok((items, page.next_token().map(str::to_string)))
        }
    })
    .await
}

/// `DescribeInstanceImageMetadata` for these instances.
pub async fn instance_image_metadata(
    ec2: &aws_sdk_ec2::Client,
    instance_ids: &[String],
) -> Result<Vec<ImageMetadata>, AwsError> {
    let mut out = Vec::new();
    for chunk in instance_ids.chunks(100) {
        let page_items = all_pages("DescribeInstanceImageMetadata", |token| {
            let req = ec2
                .describe_instance_image_metadata()
                .set_instance_ids(Some(chunk.to_vec()))
                .set_next_token(token);
            async move {
                let page = req.send().await.map_err(|e| {
                    api_error(
                        "DescribeInstanceImageMetadata",
                        "ec2:DescribeInstanceImageMetadata",
                        &e,
                    )
                })?;
                let items = page.instance_image_metadata().iter().map(|m| {
                    let img = m.image_metadata();
                    ImageMetadata {
                        instance_id: m.instance_id().unwrap_or_default().to_string(),
                        image_id: img
                            .and_then(|i| i.image_id())
                            .unwrap_or_default()
                            .to_string(),
                        owner_id: img.and_then(|i| i.owner_id()).map(str::to_string),
                        owner_alias: img.and_then(|i| i.image_owner_alias()).map(str::to_string),
                        public: img.and_then(|i| i.is_public()),
                        state: img.and_then(|i| i.state()).map(|s| s.as_str().to_string()),
                    }
                });
                Ok((items.collect(), page.next_token().map(str::to_string)))
            }
        })
        .await?;
        out.extend(page_items);
    }
    Ok(out)
}

/// `GetAllowedImagesSettings` with every criterion field (the only call of it: audit takes the
/// providers through `AllowedImages::from`).
pub async fn allowed_images_settings(
    ec2: &aws_sdk_ec2::Client,
) -> Result<AllowedImagesSettings, AwsError> {
    let out = ec2
        .get_allowed_images_settings()
        .send()
        .await
        .map_err(|e| {
            api_error(
                "GetAllowedImagesSettings",
                "ec2:GetAllowedImagesSettings",
                &e,
            )
        })?;
    let days = |d: Option<i32>| d.and_then(|d| u32::try_from(d).ok());
    Ok(AllowedImagesSettings {
        state: out.state().unwrap_or("disabled").to_string(),
        image_criteria: out
            .image_criteria()
            .iter()
            .map(|c| ImageCriterion {
                image_providers: c.image_providers().to_vec(),
                image_names: c.image_names().to_vec(),
                marketplace_product_codes: c.marketplace_product_codes().to_vec(),
                creation_date_condition: days(
                    c.creation_date_condition()
                        .and_then(|x| x.maximum_days_since_created()),
                )
                .map(|d| CreationDateCondition {
                    maximum_days_since_created: d,
                }),
                deprecation_time_condition: days(
                    c.deprecation_time_condition()
                        .and_then(|x| x.maximum_days_since_deprecated()),
                )
                .map(|d| DeprecationTimeCondition {
                    maximum_days_since_deprecated: d,
                }),
            })
            .collect(),
    })
}

/// `GetImageBlockPublicAccessState`: `block-new-sharing` or `unblocked`.
pub async fn block_public_access(ec2: &aws_sdk_ec2::Client) -> Result<String, AwsError> {
    let out = ec2
        .get_image_block_public_access_state()
        .send()
        .await
        .map_err(|e| {
            api_error(
                "GetImageBlockPublicAccessState",
                "ec2:GetImageBlockPublicAccessState",
                &e,
            )
        })?;
    Ok(out
        .image_block_public_access_state()
        .unwrap_or("unknown")
        .to_string())
}

/// `CopyImage` of `source` (in `region`) into the caller's account in the same region.
pub async fn copy_image(
    ec2: &aws_sdk_ec2::Client,
    source: &str,
    region: &str,
    name: &str,
) -> Result<String, AwsError> {
    let out = ec2
        .copy_image()
        .source_image_id(source)
        .source_region(region)
        .name(name)
        .description("amiscan --copy: temporary copy for scanning, deleted after the scan")
        .send()
        .await
        .map_err(|e| api_error("CopyImage", "ec2:CopyImage", &e))?;
    out.image_id()
        .map(str::to_string)
        .ok_or_else(|| AwsError::Api {
            operation: "CopyImage",
            message: "the answer has no imageId".into(),
        })
}

/// How long and how often to poll an image until it is available.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// First delay between polls (doubled each time, up to `max_delay`).
    pub first_delay: Duration,
    /// Longest delay between polls.
    pub max_delay: Duration,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(3600),
        }
    }
}

/// Poll `DescribeImages` until `id` is `available` (with backoff and a deadline), or fail when
/// it is `failed`, gone, the deadline passes or `stop` is set.
pub async fn wait_available(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    id: &str,
    wait: &WaitOptions,
    stop: Arc<AtomicBool>,
) -> Result<ImageInfo, AwsError> {
    let start = Instant::now();
    let mut delay = wait.first_delay;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(AwsError::Api {
                operation: "DescribeImages",
                message: format!("interrupted while waiting for {id}"),
            });
        }
        match image(ec2, region, id).await? {
            Some(i) if i.state.as_deref() == Some("available") => return Ok(i),
            Some(i) if matches!(i.state.as_deref(), Some("failed" | "error" | "invalid")) => {
                return Err(AwsError::Api {
                    operation: "CopyImage",
                    message: format!("the copy {id} is {}", i.state.unwrap_or_default()),
                });
            }
            _ => {}
        }
        if start.elapsed() >= wait.timeout {
            return Err(AwsError::Api {
                operation: "DescribeImages",
                message: format!("{id} not available after {:?}", wait.timeout),
            });
        }
        // Sleep in short slices so an interruption is seen quickly.
        let until = Instant::now() + delay;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(delay.min(Duration::from_millis(100))).await;
        }
        delay = delay.saturating_mul(2).min(wait.max_delay);
    }
}

/// Add launch permissions: everyone (`public`) and/or these accounts.
pub async fn add_launch_permission(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    public: bool,
    accounts: &[String],
) -> Result<(), AwsError> {
    let mut add = Vec::new();
    if public {
        add.push(
            LaunchPermission::builder()
                .group(PermissionGroup::All)
                .build(),
        );
    }
    for a in accounts {
        add.push(LaunchPermission::builder().user_id(a).build());
    }
    ec2.modify_image_attribute()
        .image_id(id)
        .launch_permission(
            LaunchPermissionModifications::builder()
                .set_add(Some(add))
                .build(),
        )
        .send()
        .await
        .map_err(|e| api_error("ModifyImageAttribute", "ec2:ModifyImageAttribute", &e))?;
    Ok(())
}

/// The launch permissions of an image: `(public, accounts)`.
pub async fn launch_permissions(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<(bool, Vec<String>), AwsError> {
    let out = ec2
        .describe_image_attribute()
        .image_id(id)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .map_err(|e| api_error("DescribeImageAttribute", "ec2:DescribeImageAttribute", &e))?;
    let perms = out.launch_permissions();
    Ok((
        perms
            .iter()
            .any(|p| p.group() == Some(&PermissionGroup::All)),
        perms
            .iter()
            .filter_map(|p| p.user_id().map(str::to_string))
            .collect(),
    ))
}

/// `DeregisterImage`.
pub async fn deregister_image(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<(), AwsError> {
    ec2.deregister_image()
        .image_id(id)
        .send()
        .await
        .map_err(|e| api_error("DeregisterImage", "ec2:DeregisterImage", &e))?;
    Ok(())
}

/// `DeleteSnapshot`.
pub async fn delete_snapshot(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<(), AwsError> {
    ec2.delete_snapshot()
        .snapshot_id(id)
        .send()
        .await
        .map_err(|e| api_error("DeleteSnapshot", "ec2:DeleteSnapshot", &e))?;
    Ok(())
}
