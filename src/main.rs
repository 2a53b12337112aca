//! amiscan binary: parse the command line, run, map the outcome to an exit code.

mod cli;
mod fleet_cmd;
mod governance_cmd;
#[cfg(feature = "aws")]
mod interrupt;
mod progress;
mod sbom_cmd;

use amiscan::detect::{DetectOptions, Detector};
use amiscan::model::Exit;
use amiscan::report::{self, Report};
use amiscan::scan::{self, ScanOptions};
use anyhow::Context;
use clap::Parser;
use cli::{Cli, Color, Command, Format, ScanFormat};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Exit::Usage.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let e = error_text(&e);
            eprintln!(
                "amiscan: error: {}",
                amiscan::model::escape::visible_str(&e)
            );
            ExitCode::from(Exit::Usage.code())
        }
    }
}

/// An error and its causes, `: `-separated, each cause said once: a cause whose text the
/// message already holds (an error that formats its source into its own message, as many
/// library errors do) is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if c.is_empty() || out.contains(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out
}

/// An `ami-`/`snap-` target that is not a valid id: the prefix and 8 or 17 hexadecimal digits.
/// `None` when it is valid or does not look like one.
fn invalid_aws_id(target: &str) -> Option<&'static str> {
    let (what, digits) = if let Some(h) = target.strip_prefix("ami-") {
        ("AMI", h)
    } else if let Some(h) = target.strip_prefix("snap-") {
        ("snapshot", h)
    } else {
        return None;
    };
    let valid =
        (digits.len() == 8 || digits.len() == 17) && digits.bytes().all(|b| b.is_ascii_hexdigit());
    (!valid).then_some(what)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let det = Detector::builtin().context("the built-in rule catalog is invalid")?;
    match cli.command {
        Command::Rules(args) => {
            let mut out = std::io::stdout().lock();
            match args.format {
                Format::Json => {
                    let rules: Vec<_> = det
                        .rules()
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "id": r.id, "severity": r.severity, "title": r.title,
                                "kind": format!("{:?}", r.kind).to_lowercase(),
                                "family": r.family, "files": r.files,
                                "remediation": r.remediation,
                            })
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut out, &rules)?;
                    writeln!(out)?;
                }
                Format::Text => {
                    for r in det.rules() {
                        let (id, sev, family) = (&r.id, r.severity.as_str(), &r.family);
                        writeln!(out, "{id:<32} {sev:<9} {family:<18} {}", r.title)?;
                    }
                }
            }
            Ok(Exit::Clean.code())
        }
        Command::Sweep(args) => fleet_cmd::sweep(&args, &det),
        Command::Audit(args) => fleet_cmd::audit(&args, &det),
        Command::Publish(args) => fleet_cmd::publish(&args, &det),
        Command::Sbom(args) => sbom_cmd::sbom(&args),
        Command::Inventory(args) => governance_cmd::inventory(&args, &det),
        Command::Allowlist(args) => governance_cmd::allowlist(&args, &det),
        Command::Scan(args) => {
            if let Some(n) = args.threads {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .build_global()
                    .context("cannot start the worker threads")?;
            }
            let progress: Arc<dyn scan::Progress> =
                if !args.no_progress && std::io::stderr().is_terminal() {
                    Arc::new(progress::Bars)
                } else {
                    Arc::new(scan::NoProgress)
                };
            let opts = ScanOptions {
                detect: DetectOptions {
                    show_secrets: args.show_secrets,
                },
                progress,
                quick: args.quick,
                unallocated: args.unallocated,
                min_severity: args.min_severity,
                ..ScanOptions::default()
            };
            // Checked before scanning, so a bad flag or baseline file costs no scan.
            let asff = asff_options(&args)?;
            let baseline = args
                .report
                .baseline
                .as_deref()
                .map(report::baseline::Baseline::load)
                .transpose()?;
            let mut targets = vec![];
            let mut aws = AwsContext::default();
            for t in &args.targets {
                targets.push(scan_target(t, &args.aws, &mut aws, &det, &opts)?);
            }
            let mut report = Report {
                version: 1,
                tool: format!("amiscan {}", env!("CARGO_PKG_VERSION")),
                targets,
            };
            apply_baselines(&args.report, baseline.as_ref(), &mut report)?;
            let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
            let color = match args.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
            };
            let mut out: Box<dyn Write> = match &args.output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            match args.format {
                ScanFormat::Json => report::write_json(&report, &mut out)?,
                ScanFormat::Text => {
                    report::text::write_text(&report, &mut out, color, args.show_vendor)?
                }
                ScanFormat::Sarif => report::sarif::write_sarif(&report, det.rules(), &mut out)?,
                ScanFormat::Asff => match &asff {
                    Some(o) => report::asff::write_asff(&report, o, &mut out)?,
                    None => anyhow::bail!("--format asff needs an account and a region"),
                },
            }
            out.flush()?;
            Ok(exit_code(&report, args.fail_on))
        }
    }
}

/// The AWS session, made on first use (local images need none).
#[derive(Default)]
struct AwsContext {
    #[cfg(feature = "aws")]
    session: Option<amiscan::aws::AwsSession>,
}

/// Scan one target: a local disk image, directory or tar archive, or an AMI / snapshot through
/// the EBS direct APIs.
fn scan_target(
    target: &str,
    aws_args: &cli::AwsArgs,
    aws: &mut AwsContext,
    det: &Detector,
    opts: &ScanOptions,
) -> anyhow::Result<amiscan::report::TargetReport> {
    let path = std::path::Path::new(target);
    if !path.exists()
        && let Some(what) = invalid_aws_id(target)
    {
        let prefix = if what == "AMI" { "ami" } else { "snap" };
        anyhow::bail!(
            "{target} is not a valid {what} id ({prefix}- and 8 or 17 hexadecimal digits), and no \
             file or directory of that name exists"
        );
    }
    #[cfg(feature = "aws")]
    if !path.exists()
        && let Some(t) = amiscan::aws::scan::EbsTarget::parse(target)
    {
        if aws.session.is_none() {
            let o = fleet_cmd::aws_options(&aws_args.conn);
            aws.session =
                Some(amiscan::aws::AwsSession::new(&o).context("cannot set up AWS clients")?);
        }
        let session = aws.session.as_ref().context("no AWS session")?;
        let ebs = fleet_cmd::ebs_options(&aws_args.conn);
        if aws_args.copy
            && let amiscan::aws::scan::EbsTarget::Ami(id) = &t
        {
            return fleet_cmd::scan_copy(session, id, &ebs, det, opts);
        }
        return amiscan::aws::scan::scan_ebs_target(session, &t, &ebs, det, opts)
            .with_context(|| format!("cannot scan {target}"));
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = (aws_args, &aws);
        if !path.exists() && (target.starts_with("ami-") || target.starts_with("snap-")) {
            anyhow::bail!("{target}: this amiscan was built without the `aws` feature");
        }
    }
    Ok(scan::scan_path(path, det, opts)?)
}

/// For `--format asff`: the account (`--asff-account`, then `$AWS_ACCOUNT_ID`) and region
/// (`--asff-region`, then `--region`, `$AWS_REGION`, `$AWS_DEFAULT_REGION`), checked before
/// anything is scanned.
fn asff_options(args: &cli::ScanArgs) -> anyhow::Result<Option<report::asff::AsffOptions>> {
    if args.format != ScanFormat::Asff {
        return Ok(None);
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let account = args
        .report
        .asff_account
        .clone()
        .or_else(|| env("AWS_ACCOUNT_ID"))
        .context("--format asff needs the AWS account id: --asff-account or $AWS_ACCOUNT_ID")?;
    let region = args
        .report
        .asff_region
        .clone()
        .or_else(|| args.aws.conn.region.clone())
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .context(
            "--format asff needs a region: --asff-region, --region, $AWS_REGION or $AWS_DEFAULT_REGION",
        )?;
    Ok(Some(report::asff::AsffOptions::new(
        &account,
        &region,
        report::time::now_rfc3339(),
    )?))
}

/// `--write-baseline` (every current finding), then `--baseline` (suppress what it lists).
fn apply_baselines(
    args: &cli::ReportArgs,
    baseline: Option<&report::baseline::Baseline>,
    report: &mut Report,
) -> anyhow::Result<()> {
    if let Some(path) = &args.write_baseline {
        report::baseline::Baseline::from_report(report, report::time::now_rfc3339()).save(path)?;
    }
    if let Some(b) = baseline {
        b.apply(report);
    }
    Ok(())
}

fn exit_code(report: &Report, fail_on: amiscan::report::Severity) -> u8 {
    if report.max_severity().is_some_and(|s| s >= fail_on) {
        Exit::Findings.code()
    } else if !report.complete() {
        Exit::Incomplete.code()
    } else {
        Exit::Clean.code()
    }
}
