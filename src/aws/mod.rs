//! AWS plumbing: SDK clients from the default credential chain, AMI → snapshots through EC2
//! `DescribeImages`, and a synchronous [`AwsSession`] for the (synchronous) binary.

pub mod allowlist;
pub mod audit;
pub mod copy;
pub mod ec2ops;
pub mod governance_analysis;
pub mod guard;
pub mod inventory;
pub mod launch_alert;
pub mod org;
pub mod publish;
pub mod sbom;
pub mod scan;
pub mod state;
pub mod store;
pub mod sweep;

use crate::source::ebs::{EbsError, EbsOptions, EbsSource, process_runtime, run_blocking};
use aws_config::BehaviorVersion;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use std::sync::Arc;

/// Where and as whom to call AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Region (`--region`); else `AWS_REGION`, the profile, or IMDS.
    pub region: Option<String>,
    /// Named profile (`--profile`); else `AWS_PROFILE` or `default`.
    pub profile: Option<String>,
    /// Endpoint for both EBS and EC2 (`--endpoint-url`). It overrides `AWS_ENDPOINT_URL`,
    /// `AWS_ENDPOINT_URL_EBS` and `AWS_ENDPOINT_URL_EC2`, which are honoured when it is unset.
    pub endpoint_url: Option<String>,
    /// Role to assume with STS on top of the base credentials (`--role-arn`).
    pub role_arn: Option<String>,
    /// A role assumed last, with the credentials above (a member account's role, see
    /// [`org`]).
    pub member_role_arn: Option<String>,
    /// Fixed credentials instead of the default chain (tests, or keys given explicitly).
    pub credentials: Option<aws_sdk_ebs::config::Credentials>,
}

/// Why an AWS call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    /// No region from the options, the environment, the profile or IMDS.
    #[error("no AWS region: pass --region or set AWS_REGION")]
    NoRegion,
    /// `InvalidAMIID.NotFound` / `.Malformed` / `.Unavailable`, or an empty answer.
    #[error("AMI {ami} not found in this region and account: {message}")]
    AmiNotFound {
        /// The AMI id asked for.
        ami: String,
        /// The service's message.
        message: String,
    },
    /// The AMI has no EBS snapshots to read (instance-store backed).
    #[error(
        "AMI {ami} is instance-store backed (root device type {root_device_type}): it has no EBS snapshot to read"
    )]
    InstanceStore {
        /// The AMI id.
        ami: String,
        /// `instance-store`, or `ebs` with no snapshot in any mapping.
        root_device_type: String,
    },
    /// IAM does not allow the action.
    #[error("access denied: the credentials lack permission for {action} ({message})")]
    AccessDenied {
        /// The missing action, e.g. `ec2:DescribeImages`.
        action: &'static str,
        /// The service's message.
        message: String,
    },
    /// Any other failure of an AWS call.
    #[error("{operation} failed: {message}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// Code and message, or the transport error.
        message: String,
    },
    /// The runtime could not be created or a task died.
    #[error("AWS runtime error: {0}")]
    Runtime(String),
}

/// One EBS volume of an AMI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AmiVolume {
    /// `/dev/xvda`, `/dev/sdb`, ...
    pub device_name: String,
    /// `snap-...`.
    pub snapshot_id: String,
    /// Volume size in GiB, if the mapping says.
    pub volume_size_gib: Option<u64>,
    /// Whether the snapshot is encrypted.
    pub encrypted: bool,
    /// Whether this is the root device.
    pub root: bool,
}

/// A mapping of the AMI that has no snapshot to read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedMapping {
    /// Device name.
    pub device_name: String,
    /// Why: `instance store (ephemeral0)`, `no device`, `EBS mapping without a snapshot`.
    pub reason: String,
}

/// An AMI and the snapshots behind it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ami {
    /// `ami-...`.
    pub id: String,
    /// Image name.
    pub name: Option<String>,
    /// Owner account id.
    pub owner_id: Option<String>,
    /// Launch permission is public.
    pub public: bool,
    /// `ebs` or `instance-store`.
    pub root_device_type: Option<String>,
    /// Every EBS mapping with a snapshot, in mapping order.
    pub volumes: Vec<AmiVolume>,
    /// Mappings without a snapshot (instance store, blank volumes): not scanned, but reported.
    pub skipped: Vec<SkippedMapping>,
}

/// The shared SDK configuration the options ask for: the default chain (environment, profiles,
/// SSO, web identity, IMDS), the region, the endpoint, and the role assumed on top.
pub async fn sdk_config(opts: &AwsOptions) -> Result<aws_config::SdkConfig, AwsError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &opts.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(c) = &opts.credentials {
        loader = loader.credentials_provider(c.clone());
    }
    if let Some(u) = &opts.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    let mut conf = loader.load().await;
    if conf.region().is_none() {
        return Err(AwsError::NoRegion);
    }
    for role in [&opts.role_arn, &opts.member_role_arn]
        .into_iter()
        .flatten()
    {
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

/// Build the EBS and EC2 clients from [`sdk_config`].
pub async fn clients(
    opts: &AwsOptions,
) -> Result<(aws_sdk_ebs::Client, aws_sdk_ec2::Client), AwsError> {
    let conf = sdk_config(opts).await?;
    let mut ebs = aws_sdk_ebs::config::Builder::from(&conf);
    let mut ec2 = aws_sdk_ec2::config::Builder::from(&conf);
    // Set on each service so an explicit URL beats the service-specific variables.
    if let Some(u) = &opts.endpoint_url {
        ebs = ebs.endpoint_url(u);
        ec2 = ec2.endpoint_url(u);
    }
    Ok((
        aws_sdk_ebs::Client::from_conf(ebs.build()),
        aws_sdk_ec2::Client::from_conf(ec2.build()),
    ))
}

fn map_describe_error<E>(ami_id: &str, err: &SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(ctx) = err {
        let e = ctx.err();
        let message = e.message().unwrap_or("").to_string();
        return match e.code() {
            Some(
                "InvalidAMIID.NotFound" | "InvalidAMIID.Malformed" | "InvalidAMIID.Unavailable",
            ) => AwsError::AmiNotFound {
                ami: ami_id.into(),
                message,
            },
            Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => {
                AwsError::AccessDenied {
                    action: "ec2:DescribeImages",
                    message,
                }
            }
            code => AwsError::Api {
                operation: "DescribeImages",
                message: format!(
                    "{} (HTTP {}): {message}",
                    code.unwrap_or("unknown error"),
                    ctx.raw().status().as_u16()
                ),
            },
        };
    }
    AwsError::Api {
        operation: "DescribeImages",
        message: crate::source::ebs::error_chain(err),
    }
}

/// Look up `ami_id` with `DescribeImages` and list its EBS snapshots (every mapping, not only the
/// root).
pub async fn resolve_ami(ec2: &aws_sdk_ec2::Client, ami_id: &str) -> Result<Ami, AwsError> {
    let out = ec2
        .describe_images()
        .image_ids(ami_id)
        .send()
        .await
        .map_err(|e| map_describe_error(ami_id, &e))?;
    let Some(img) = out
        .images()
        .iter()
        .find(|i| i.image_id() == Some(ami_id))
        .or_else(|| out.images().first())
    else {
        return Err(AwsError::AmiNotFound {
            ami: ami_id.into(),
            message: "DescribeImages returned no image".into(),
        });
    };
    let root_device_type = img.root_device_type().map(|d| d.as_str().to_string());
    let root_name = img.root_device_name();
    let mut volumes = Vec::new();
    let mut skipped = Vec::new();
    for m in img.block_device_mappings() {
        let device_name = m.device_name().unwrap_or("").to_string();
        match m.ebs() {
            Some(ebs) => match ebs.snapshot_id() {
                Some(snap) if !snap.is_empty() => volumes.push(AmiVolume {
                    root: root_name == Some(device_name.as_str()),
                    device_name,
                    snapshot_id: snap.to_string(),
                    volume_size_gib: ebs.volume_size().and_then(|v| u64::try_from(v).ok()),
                    encrypted: ebs.encrypted().unwrap_or(false),
                }),
                _ => skipped.push(SkippedMapping {
                    device_name,
                    reason: "EBS mapping without a snapshot".into(),
                }),
            },
            None => {
                let reason = match (m.virtual_name(), m.no_device()) {
                    (Some(v), _) => format!("instance store ({v})"),
                    (None, Some(_)) => "no device".into(),
                    (None, None) => "no EBS snapshot".into(),
                };
                skipped.push(SkippedMapping {
                    device_name,
                    reason,
                });
            }
        }
    }
    if root_device_type.as_deref() == Some("instance-store") || volumes.is_empty() {
        return Err(AwsError::InstanceStore {
            ami: ami_id.into(),
            root_device_type: root_device_type.unwrap_or_else(|| "unknown".into()),
        });
    }
    Ok(Ami {
        id: img.image_id().unwrap_or(ami_id).to_string(),
        name: img.name().map(str::to_string),
        owner_id: img.owner_id().map(str::to_string),
        public: img.public().unwrap_or(false),
        root_device_type,
        volumes,
        skipped,
    })
}

/// Clients on the process's runtime, for synchronous callers.
pub struct AwsSession {
    runtime: tokio::runtime::Handle,
    /// Names the credentials and endpoint: the account gate's key when none is given.
    account: String,
    ebs: aws_sdk_ebs::Client,
    ec2: aws_sdk_ec2::Client,
}

impl std::fmt::Debug for AwsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSession").finish_non_exhaustive()
    }
}

impl AwsSession {
    /// Build the clients, on the process's runtime (the one the EBS sources use).
    pub fn new(opts: &AwsOptions) -> Result<AwsSession, AwsError> {
        let runtime = process_runtime().map_err(|e| AwsError::Runtime(e.to_string()))?;
        let o = opts.clone();
        let (ebs, ec2) = run_blocking(&runtime, async move { clients(&o).await })
            .ok_or_else(|| AwsError::Runtime("client set-up task died".into()))??;
        let endpoint = opts
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_EBS").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        // Shown as the account in reports: the role's account id, else `default`.
        let shown = opts
            .role_arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|id| !id.is_empty())
            .unwrap_or("default");
        let account = format!(
            "{shown}|{}|{}|{}",
            opts.role_arn.as_deref().unwrap_or(""),
            opts.profile.as_deref().unwrap_or(""),
            endpoint.as_deref().unwrap_or("")
        );
        Ok(AwsSession {
            runtime,
            account,
            ebs,
            ec2,
        })
    }

    fn handle(&self) -> Result<&tokio::runtime::Handle, AwsError> {
        Ok(&self.runtime)
    }

    /// [`resolve_ami`], waiting for it.
    pub fn resolve_ami(&self, ami_id: &str) -> Result<Ami, AwsError> {
        let ec2 = self.ec2.clone();
        let id = ami_id.to_string();
        run_blocking(self.handle()?, async move { resolve_ami(&ec2, &id).await })
            .ok_or_else(|| AwsError::Runtime("DescribeImages task died".into()))?
    }

    /// Open a snapshot as an [`EbsSource`], through the gate of this session's account (unless
    /// `opts.account` names one).
    pub fn open_snapshot(
        &self,
        snapshot_id: &str,
        opts: EbsOptions,
    ) -> Result<Arc<EbsSource>, EbsError> {
        let mut opts = opts;
        if opts.account.is_none() {
            opts.account = Some(self.account.clone());
        }
        EbsSource::open(self.ebs.clone(), snapshot_id, opts).map(Arc::new)
    }

    /// Run an AWS future on this session's runtime and wait for it (fleet calls in
    /// [`ec2ops`]).
    pub fn run<T, F>(&self, fut: F) -> Result<T, AwsError>
    where
        F: std::future::Future<Output = Result<T, AwsError>> + Send + 'static,
        T: Send + 'static,
    {
        run_blocking(self.handle()?, fut)
            .ok_or_else(|| AwsError::Runtime("an AWS task died".into()))?
    }

    /// The EBS client.
    pub fn ebs_client(&self) -> &aws_sdk_ebs::Client {
        &self.ebs
    }

    /// The EC2 client.
    pub fn ec2_client(&self) -> &aws_sdk_ec2::Client {
        &self.ec2
    }
}
