//! The fleet subcommands (`sweep`, `audit`, `publish`, `scan --copy`): options from the command
//! line, the library call, the writer ([`amiscan::report::fleet`]) and the exit code.

use crate::cli::{AuditArgs, FleetAwsArgs, PublishArgs, SweepArgs};
#[cfg(feature = "aws")]
use crate::cli::{Format, SweepFormat};
use amiscan::detect::Detector;
#[cfg(feature = "aws")]
use amiscan::report::fleet;
#[cfg(feature = "aws")]
use anyhow::Context;
use std::io::Write;

#[cfg(feature = "aws")]
use amiscan::model::Exit;

#[cfg(not(feature = "aws"))]
fn no_aws<T>() -> anyhow::Result<T> {
    anyhow::bail!("this amiscan was built without the `aws` feature")
}

/// The AWS client options the flags ask for.
#[cfg(feature = "aws")]
pub(crate) fn aws_options(a: &FleetAwsArgs) -> amiscan::aws::AwsOptions {
    amiscan::aws::AwsOptions {
        region: a.region.clone(),
        profile: a.profile.clone(),
        endpoint_url: a.endpoint_url.clone(),
        role_arn: a.role_arn.clone(),
        credentials: None,
    }
}

/// The EBS source options the flags ask for.
#[cfg(feature = "aws")]
pub(crate) fn ebs_options(a: &FleetAwsArgs) -> amiscan::source::ebs::EbsOptions {
    amiscan::source::ebs::EbsOptions {
        concurrency: a.concurrency as usize,
        cache_bytes: a.cache_mb.saturating_mul(1024 * 1024),
        memory_bytes: a.memory_mb.saturating_mul(1024 * 1024),
        account_rps: a.account_rps,
        account_list_rps: a.account_list_rps,
        ..Default::default()
    }
}

#[cfg(feature = "aws")]
fn state_path(p: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    match p {
        Some(p) => Ok(p.to_path_buf()),
        None => amiscan::aws::state::default_path()
            .context("no state file: pass --state (neither XDG_STATE_HOME nor HOME is set)"),
    }
}

/// `amiscan sweep`.
#[cfg(feature = "aws")]
pub fn sweep(args: &SweepArgs, det: &Detector) -> anyhow::Result<u8> {
    use amiscan::aws::sweep::{ImageOutcome, SweepOptions};
    let stop = crate::interrupt::install_interrupt_handler()?;
    let opts = SweepOptions {
        regions: args.regions.clone(),
        owners: args.owners.clone(),
        parallel: args.parallel as usize,
        fail_on: args.fail_on,
        state_path: state_path(args.state.as_deref())?,
        stop_after: args.stop_after,
        ebs: ebs_options(&args.aws),
        scan: amiscan::scan::ScanOptions {
            quick: args.quick,
            ..Default::default()
        },
    };
    let format = args.format;
    let fail_on = args.fail_on;
    let mut on_image = move |o: &ImageOutcome| {
        let mut out = std::io::stdout().lock();
        let _ = match format {
            SweepFormat::Jsonl => fleet::write_sweep_image_jsonl(o, &mut out),
            SweepFormat::Text => fleet::write_sweep_image_text(o, fail_on, &mut out),
        };
        let _ = out.flush();
    };
    let summary =
        amiscan::aws::sweep::sweep(&aws_options(&args.aws), &opts, det, &stop, &mut on_image)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        SweepFormat::Jsonl => fleet::write_sweep_summary_jsonl(&summary, &mut out)?,
        SweepFormat::Text => fleet::write_sweep_summary_text(&summary, args.fail_on, &mut out)?,
    }
    Ok(if summary.with_findings > 0 {
        Exit::Findings
    } else if summary.interrupted {
        Exit::Interrupted
    } else if summary.incomplete + summary.failed > 0 || !summary.region_errors.is_empty() {
        Exit::Incomplete
    } else {
        Exit::Clean
    }
    .code())
}

/// `amiscan audit`.
#[cfg(feature = "aws")]
pub fn audit(args: &AuditArgs, det: &Detector) -> anyhow::Result<u8> {
    let opts = amiscan::aws::audit::AuditOptions {
        regions: args.regions.clone(),
        trusted_accounts: args.trusted_accounts.clone(),
        state_path: state_path(args.state.as_deref())?,
        fail_on: args.fail_on,
        catalog_version: det.catalog_version().to_string(),
    };
    let regions = amiscan::aws::audit::audit(&aws_options(&args.aws), &opts)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => fleet::write_audit_json(&regions, &mut out)?,
        Format::Text => fleet::write_audit_text(&regions, &mut out)?,
    }
    let bad = regions.iter().any(|r| {
        r.public_images.iter().any(|p| p.scan == "findings")
            || r.instances
                .iter()
                .any(|i| i.class == amiscan::aws::audit::ImageClass::PublicUnverified)
    });
    let errors = regions.iter().any(|r| !r.errors.is_empty());
    Ok(if bad {
        Exit::Findings
    } else if errors {
        Exit::Incomplete
    } else {
        Exit::Clean
    }
    .code())
}

/// `amiscan publish`.
#[cfg(feature = "aws")]
pub fn publish(args: &PublishArgs, det: &Detector) -> anyhow::Result<u8> {
    use amiscan::aws::publish::{Decision, PublishOptions};
    let stop = crate::interrupt::install_interrupt_handler()?;
    let session = amiscan::aws::AwsSession::new(&aws_options(&args.aws))
        .context("cannot set up AWS clients")?;
    let (report, decision) = amiscan::aws::publish::publish(
        &session,
        &args.ami,
        &PublishOptions {
            public: args.public,
            accounts: args.accounts.clone(),
            fail_on: args.fail_on,
        },
        &ebs_options(&args.aws),
        det,
        &amiscan::scan::ScanOptions::default(),
        &stop,
    )?;
    let full = amiscan::report::Report {
        version: 1,
        tool: format!("amiscan {}", env!("CARGO_PKG_VERSION")),
        targets: vec![report],
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => amiscan::report::write_json(&full, &mut out)?,
        Format::Text => amiscan::report::text::write_text(&full, &mut out, false, false)?,
    }
    Ok(match decision {
        Decision::Published { public, accounts } => {
            writeln!(
                out,
                "published {}: public={public} accounts={}",
                args.ami,
                accounts.join(",")
            )?;
            Exit::Clean.code()
        }
        Decision::Refused { reason, findings } => {
            let reason = amiscan::model::escape::visible_str(&reason);
            writeln!(out, "NOT published {}: {reason}", args.ami)?;
            eprintln!("amiscan: {} not published: {reason}", args.ami);
            if findings {
                Exit::Findings.code()
            } else {
                Exit::Incomplete.code()
            }
        }
    })
}

/// `amiscan scan --copy ami-...`.
#[cfg(feature = "aws")]
pub fn scan_copy(
    session: &amiscan::aws::AwsSession,
    ami: &str,
    ebs: &amiscan::source::ebs::EbsOptions,
    det: &Detector,
    opts: &amiscan::scan::ScanOptions,
) -> anyhow::Result<amiscan::report::TargetReport> {
    let stop = crate::interrupt::install_interrupt_handler()?;
    let mut wait = amiscan::aws::ec2ops::WaitOptions::default();
    if let Some(ms) = std::env::var("AMISCAN_COPY_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        wait.first_delay = std::time::Duration::from_millis(ms);
        wait.max_delay = std::time::Duration::from_millis(ms.saturating_mul(4));
    }
    let report = amiscan::aws::copy::scan_copy(session, ami, ebs, det, opts, &wait, stop)
        .with_context(|| format!("cannot scan {ami} through a copy"))?;
    Ok(report)
}

#[cfg(not(feature = "aws"))]
pub fn sweep(args: &SweepArgs, det: &Detector) -> anyhow::Result<u8> {
    let _ = (args, det);
    no_aws()
}

#[cfg(not(feature = "aws"))]
pub fn audit(args: &AuditArgs, det: &Detector) -> anyhow::Result<u8> {
    let _ = (args, det);
    no_aws()
}

#[cfg(not(feature = "aws"))]
pub fn publish(args: &PublishArgs, det: &Detector) -> anyhow::Result<u8> {
    let _ = (args, det, std::io::stdout().flush(), |_: &FleetAwsArgs| ());
    no_aws()
}
