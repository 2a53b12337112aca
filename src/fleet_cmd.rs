//! The fleet subcommands (`sweep`, `audit`, `publish`, `scan --copy`): options from the command
//! line, the library call, the writer ([`amiscan::report::fleet`]) and the exit code.

use crate::cli::{AuditArgs, FleetAwsArgs, PublishArgs, SweepArgs};
#[cfg(feature = "aws")]
use crate::cli::{AuditFormat, Format, SweepFormat};
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
        member_role_arn: None,
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

/// The state store `--state` names (default: the state file under `$XDG_STATE_HOME`).
#[cfg(feature = "aws")]
fn open_state(
    p: Option<&str>,
    aws: &amiscan::aws::AwsOptions,
) -> anyhow::Result<std::sync::Arc<amiscan::aws::store::StateStore>> {
    use amiscan::aws::store::{StateLocation, StateStore};
    let loc = match p {
        Some(p) => StateLocation::parse(p)?,
        None => StateLocation::File(
            amiscan::aws::state::default_path()
                .context("no state file: pass --state (neither XDG_STATE_HOME nor HOME is set)")?,
        ),
    };
    Ok(std::sync::Arc::new(StateStore::open(&loc, aws)?))
}

/// The accounts `--org-role` / `--accounts` ask for.
#[cfg(feature = "aws")]
pub(crate) fn account_selection(o: &crate::cli::OrgArgs) -> amiscan::aws::org::AccountSelection {
    use amiscan::aws::org::AccountSelection;
    match (&o.org_role, &o.accounts) {
        (Some(role), Some(ids)) => AccountSelection::Accounts {
            ids: ids.clone(),
            role_name: role.clone(),
        },
        (Some(role), None) => AccountSelection::Organization {
            role_name: role.clone(),
        },
        (None, _) => AccountSelection::Caller,
    }
}

/// `--shard K/N`, else `--shards N` with K from the array index variables of AWS Batch
/// (`AWS_BATCH_JOB_ARRAY_INDEX`) or Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX`).
#[cfg(feature = "aws")]
fn shard(args: &SweepArgs) -> anyhow::Result<Option<amiscan::model::fleet::Shard>> {
    if let Some(s) = args.shard {
        return Ok(Some(s));
    }
    let Some(n) = args.shards else {
        return Ok(None);
    };
    for var in ["AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            let k: u32 = v
                .trim()
                .parse()
                .with_context(|| format!("{var}={v:?} is not a shard index"))?;
            return Ok(Some(amiscan::model::fleet::Shard::new(k, n).with_context(
                || format!("{var}={k} is not below --shards {n}"),
            )?));
        }
    }
    anyhow::bail!(
        "--shards {n} needs --shard K/{n}, or AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX set"
    )
}

/// What a sweep scanning `parallel` images at once leaves of `--memory-mb` (`bytes`) to EBS
/// blocks: 16 MiB per image beyond the first stays for what each scan holds besides blocks (its
/// walk, its content workers' buffers, its share of the allocator's heaps), at most half the
/// budget. Measured: `sweep --parallel 4` of four images of two volumes peaked at 267–309 MiB
/// with all 256 MiB for blocks (a single scan of four volumes at 256–264), 228–230 MiB with 192.
#[cfg(feature = "aws")]
fn blocks_budget(bytes: u64, parallel: u32) -> u64 {
    let reserve = u64::from(parallel.saturating_sub(1))
        .saturating_mul(16 << 20)
        .min(bytes / 2);
    bytes - reserve
}

/// `amiscan sweep` (and `sweep --report`).
#[cfg(feature = "aws")]
pub fn sweep(args: &SweepArgs, det: &Detector) -> anyhow::Result<u8> {
    use amiscan::aws::sweep::{ImageOutcome, SweepOptions};
    if args.format == SweepFormat::Sarif && !args.report {
        anyhow::bail!("--format sarif is for --report (the full findings are read from --state)");
    }
    let stop = crate::interrupt::install_interrupt_handler()?;
    let aws = aws_options(&args.aws);
    let state = open_state(args.state.as_deref(), &aws)?;
    let opts = SweepOptions {
        regions: args.regions.clone(),
        owners: args.owners.clone(),
        parallel: args.parallel as usize,
        fail_on: args.fail_on,
        state: state.clone(),
        shard: shard(args)?,
        accounts: account_selection(&args.org),
        report_only: args.report,
        stop_after: args.stop_after,
        ebs: amiscan::source::ebs::EbsOptions {
            memory_bytes: blocks_budget(args.aws.memory_mb << 20, args.parallel),
            ..ebs_options(&args.aws)
        },
        scan: amiscan::scan::ScanOptions {
            quick: args.quick,
            ..Default::default()
        },
    };
    let format = args.format;
    let fail_on = args.fail_on;
    // A report is printed grouped by account and region once every image is known; a sweep
    // prints each image as it finishes.
    let grouped = args.report;
    let mut outcomes: Vec<ImageOutcome> = Vec::new();
    let mut on_image = |o: &ImageOutcome| {
        if grouped {
            outcomes.push(o.clone());
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = match format {
            SweepFormat::Jsonl => fleet::write_sweep_image_jsonl(o, &mut out),
            SweepFormat::Text | SweepFormat::Sarif => {
                fleet::write_sweep_image_text(o, fail_on, &mut out)
            }
        };
        let _ = out.flush();
        outcomes.push(o.clone());
    };
    let summary = amiscan::aws::sweep::sweep(&aws, &opts, det, &stop, &mut on_image)?;
    outcomes.sort_by(|a, b| {
        (&a.account, &a.region, &a.image_id).cmp(&(&b.account, &b.region, &b.image_id))
    });
    let mut out = std::io::stdout().lock();
    match args.format {
        SweepFormat::Jsonl => {
            if grouped {
                for o in &outcomes {
                    fleet::write_sweep_image_jsonl(o, &mut out)?;
                }
            }
            fleet::write_sweep_summary_jsonl(&summary, &mut out)?
        }
        SweepFormat::Text => {
            if grouped {
                for o in &outcomes {
                    fleet::write_sweep_image_text(o, args.fail_on, &mut out)?;
                }
            }
            if !summary.accounts.is_empty() || grouped {
                fleet::write_sweep_groups_text(&outcomes, &mut out)?;
            }
            fleet::write_sweep_summary_text(&summary, args.fail_on, &mut out)?
        }
        SweepFormat::Sarif => {
            let entries = state.load_all()?.entries;
            let items: Vec<_> = outcomes
                .iter()
                .map(|o| {
                    let k = amiscan::aws::state::key(&o.snapshots, &summary.catalog_version);
                    (o, entries.get(&k).map(|c| c.findings.as_slice()))
                })
                .collect();
            let report = fleet::sweep_report(&items);
            amiscan::report::sarif::write_sarif(&report, det.rules(), &mut out)?
        }
    }
    Ok(sweep_exit(&summary).code())
}

/// The exit code of a sweep or a sweep report.
#[cfg(feature = "aws")]
fn sweep_exit(summary: &amiscan::model::fleet::SweepSummary) -> Exit {
    if summary.with_findings > 0 {
        Exit::Findings
    } else if summary.interrupted {
        Exit::Interrupted
    } else if summary.incomplete + summary.failed + summary.not_reached > 0
        || !summary.region_errors.is_empty()
        || !summary.state_errors.is_empty()
    {
        Exit::Incomplete
    } else {
        Exit::Clean
    }
}

/// `amiscan audit`.
#[cfg(feature = "aws")]
pub fn audit(args: &AuditArgs, det: &Detector) -> anyhow::Result<u8> {
    let aws = aws_options(&args.aws);
    let opts = amiscan::aws::audit::AuditOptions {
        regions: args.regions.clone(),
        trusted_accounts: args.trusted_accounts.clone(),
        state: open_state(args.state.as_deref(), &aws)?,
        accounts: account_selection(&args.org),
        fail_on: args.fail_on,
        catalog_version: det.catalog_version().to_string(),
    };
    let regions = amiscan::aws::audit::audit(&aws, &opts)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    match args.format {
        AuditFormat::Json => fleet::write_audit_json(&regions, &mut out)?,
        AuditFormat::Text => fleet::write_audit_text(&regions, &mut out)?,
        AuditFormat::Html => amiscan::report::audit_html::write_audit_html(
            &regions,
            &amiscan::report::time::now_rfc3339(),
            &mut out,
        )?,
    }
    out.flush()?;
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

#[cfg(all(test, feature = "aws"))]
mod tests {
    #[test]
    fn a_parallel_sweep_keeps_room_per_scan_outside_the_blocks() {
        use super::blocks_budget;
        assert_eq!(blocks_budget(256 << 20, 1), 256 << 20);
        assert_eq!(blocks_budget(256 << 20, 4), 208 << 20);
        assert_eq!(blocks_budget(256 << 20, 64), 128 << 20);
        assert_eq!(blocks_budget(16 << 20, 2), 8 << 20);
    }
}
