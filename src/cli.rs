//! Command-line definitions.

use amiscan::report::Severity;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0  complete scan, no finding at or above --fail-on
  1  at least one finding at or above --fail-on (default: high)
  2  usage error, or a target that cannot be opened at all
  3  no finding at or above --fail-on, but the scan was incomplete
     (something could not be read or parsed: see the report's errors)
--fail-on looks only at the findings in the report: findings dropped by
--min-severity never fail a scan (--min-severity high --fail-on low fails on
high and critical only).";

/// amiscan: find secrets and insecure defaults inside machine images, offline.
#[derive(Parser, Debug)]
#[command(name = "amiscan", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan disk images: every partition, every file.
    #[command(after_help = EXIT_CODES)]
    Scan(ScanArgs),
    /// List every rule with its id, severity and title.
    Rules(RulesArgs),
    /// Scan every AMI of an account (or of --owners) in every region, each snapshot once:
    /// results are cached in a state file, so a nightly sweep scans only what is new.
    #[command(after_help = SWEEP_EXIT_CODES)]
    Sweep(SweepArgs),
    /// Account posture per region: public AMIs and their scan results, image block public
    /// access, Allowed AMIs, and where the AMIs of instances come from.
    Audit(AuditArgs),
    /// Scan an AMI and share it (--public or --accounts) only when the scan is complete and
    /// clean; otherwise say why and change nothing.
    Publish(PublishArgs),
    /// A software bill of materials of an image (CycloneDX 1.6 or SPDX 2.3 JSON): its OS
    /// packages (dpkg, rpm) and the language packages in well-known places, read offline. On
    /// EBS only the package databases and manifests are fetched.
    #[command(after_help = SBOM_EXIT_CODES)]
    Sbom(SbomArgs),
    /// Every AMI in use or owned, per region, and what uses it (instances, launch templates,
    /// Auto Scaling groups, launch configurations): dependencies at risk and golden-image drift
    /// first. Exit 1 when a dependency is at risk.
    Inventory(InventoryArgs),
    /// Allowed AMIs: propose criteria from what is in use and trusted, check what enforcing
    /// them would block, apply them per region (audit-mode or enabled).
    Allowlist(AllowlistArgs),
}

const SBOM_EXIT_CODES: &str = "\
Exit codes:
  0  the SBOM lists everything amiscan could read
  2  usage error, or a target that cannot be opened at all
  3  the SBOM was written, but something could not be read (said on stderr
     and in the document): it may miss packages";

/// `amiscan sbom`.
#[derive(clap::Args, Debug)]
pub struct SbomArgs {
    /// What to describe: a disk image (raw, qcow2, VMDK, VHD(X)), an AMI (`ami-...`) or an EBS
    /// snapshot (`snap-...`).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Document format.
    #[arg(long, value_enum, default_value_t = SbomFormat::Cyclonedx)]
    pub format: SbomFormat,
    /// Write the document to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not read dpkg licences from /usr/share/doc/*/copyright (one small file per package:
    /// a block fetch each on EBS).
    #[arg(long)]
    pub no_dpkg_licenses: bool,
    /// AWS options, for `ami-...` and `snap-...` targets.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// SBOM formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// Output formats of `amiscan inventory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    /// Per account and region: at risk, drift, then images and their workloads.
    Text,
    /// The inventory as JSON (version 1).
    Json,
    /// One self-contained HTML page: at risk, drift, and a graph of images and workloads.
    Html,
}

/// What the governance commands look at.
#[derive(clap::Args, Debug, Clone)]
pub struct GovScopeArgs {
    /// Regions (comma-separated; default: every enabled region).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Option<Vec<String>>,
    /// Accounts whose AMIs you trust (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub trusted_accounts: Vec<String>,
    /// The sweep state file, for each image's last scan result.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// What counts as clean in the sweep results.
    #[arg(long, default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Golden-image lineages by this image tag (default: same owner and name stem).
    #[arg(long, value_name = "KEY")]
    pub lineage_tag: Option<String>,
    /// Accounts (the organisation's: classes, risks and drift judged across them).
    #[command(flatten)]
    pub org: OrgArgs,
    /// AWS options.
    #[command(flatten)]
    pub aws: FleetAwsArgs,
}

/// `amiscan inventory`.
#[derive(clap::Args, Debug)]
pub struct InventoryArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Text)]
    pub format: InventoryFormat,
    /// Write to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What to look at.
    #[command(flatten)]
    pub scope: GovScopeArgs,
}

/// `amiscan allowlist`.
#[derive(clap::Args, Debug)]
pub struct AllowlistArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AllowlistAction,
}

/// Criteria: a file, or a proposal made now.
#[derive(clap::Args, Debug, Clone)]
pub struct CriteriaArgs {
    /// Criteria file: `{"ImageCriteria":[...]}` as `allowlist propose --format json` writes
    /// (default: propose them now).
    #[arg(long, value_name = "FILE")]
    pub criteria: Option<PathBuf>,
    /// Also require these image names (`*` and `?` wildcards; comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "PATTERN,...")]
    pub image_names: Vec<String>,
    /// Also require images created at most this many days ago.
    #[arg(long, value_name = "DAYS")]
    pub max_days_since_created: Option<u32>,
    /// Also require images not deprecated, or deprecated at most this many days ago.
    #[arg(long, value_name = "DAYS")]
    pub max_days_since_deprecated: Option<u32>,
    /// Also allow these AWS Marketplace product codes (comma-separated; those of the
    /// Marketplace images in use are proposed anyway).
    #[arg(long, value_delimiter = ',', value_name = "CODE,...", value_parser = parse_product_code)]
    pub marketplace_product_codes: Vec<String>,
}

/// A Marketplace product code as the EC2 API takes it: 1–25 letters and digits.
fn parse_product_code(s: &str) -> Result<String, String> {
    if (1..=25).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a Marketplace product code (1-25 letters and digits)"
        ))
    }
}

/// Allowed AMIs modes `apply` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AllowMode {
    /// `audit-mode`: images are marked, nothing is blocked.
    Audit,
    /// `enabled`: launches from other images fail.
    Enabled,
}

/// `amiscan allowlist` actions.
#[derive(Subcommand, Debug)]
pub enum AllowlistAction {
    /// Propose criteria (the EC2 API's ImageCriteria) from the images in use and trusted.
    Propose {
        /// Output format (json: the criteria file `check` and `apply` read).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also write the Organizations declarative policy with these criteria to FILE.
        #[arg(long, value_name = "FILE")]
        org_policy: Option<PathBuf>,
        /// The state the declarative policy sets.
        #[arg(long, value_enum, default_value_t = AllowMode::Audit)]
        policy_mode: AllowMode,
        /// The criteria.
        #[command(flatten)]
        criteria: CriteriaArgs,
        /// What to look at.
        #[command(flatten)]
        scope: GovScopeArgs,
    },
    /// What enforcing the criteria would block: launch templates, Auto Scaling groups and
    /// launch configurations whose next launch would fail. Exit 1 when any.
    Check {
        /// The criteria.
        #[command(flatten)]
        criteria: CriteriaArgs,
        /// What to look at.
        #[command(flatten)]
        scope: GovScopeArgs,
    },
    /// Handle one EventBridge "AWS API Call via CloudTrail" event (RunInstances,
    /// CreateLaunchTemplate, CreateLaunchTemplateVersion, CreateAutoScalingGroup): check the
    /// image(s) it launches against the criteria and trusted accounts and raise a finding for
    /// each unapproved one. Prints the outcome as JSON. Exit 1 when any image is unapproved.
    Alert {
        /// The event (JSON; `-` for stdin).
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
        /// Criteria file `{"ImageCriteria":[...]}` (default: $AMISCAN_ALERT_CRITERIA, else the
        /// region's Allowed AMIs criteria, else amazon and aws-marketplace).
        #[arg(long, value_name = "FILE")]
        criteria: Option<PathBuf>,
        /// Accounts whose images are approved (the event's own account always is; default:
        /// $AMISCAN_TRUSTED_ACCOUNTS).
        #[arg(long, value_delimiter = ',', value_name = "ID,...")]
        trusted_accounts: Vec<String>,
        /// Publish each finding to this SNS topic (default: $AMISCAN_SNS_TOPIC).
        #[arg(long, value_name = "ARN")]
        sns_topic: Option<String>,
        /// Import each finding into Security Hub (BatchImportFindings; also when
        /// $AMISCAN_SECURITY_HUB is `1`).
        #[arg(long)]
        security_hub: bool,
        /// Check only; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// AWS options.
        #[command(flatten)]
        aws: FleetAwsArgs,
    },
    /// Set the criteria and the state in --region, printing the diff first; refuses `enabled`
    /// while the simulation shows blocked launch sources (unless --force).
    Apply {
        /// The state to set.
        #[arg(long, value_enum)]
        mode: AllowMode,
        /// Print the diff and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Enable even though launch sources would be blocked.
        #[arg(long)]
        force: bool,
        /// The criteria.
        #[command(flatten)]
        criteria: CriteriaArgs,
        /// What to look at.
        #[command(flatten)]
        scope: GovScopeArgs,
    },
}

const SWEEP_EXIT_CODES: &str = "\
Exit codes:
  0    every image scanned completely, no finding at or above --fail-on
  1    at least one image has findings at or above --fail-on (the summary counts
       public ones apart: a public image with findings is the worst result)
  2    usage error, or the sweep could not start (no regions, state file unreadable)
  3    no findings at or above --fail-on, but some image failed or was incomplete
  130  interrupted before every image was done (the state file keeps what was done)";

/// Sweep output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SweepFormat {
    /// A line per image, then a summary.
    Text,
    /// One JSON object per line: an `image` line per image as it finishes, then a `summary`.
    Jsonl,
    /// SARIF 2.1.0, one result per finding of every image (with `--report` only: it reads the
    /// full findings from the state).
    Sarif,
}

/// Which accounts a fleet command works in.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Accounts (organisations)")]
pub struct OrgArgs {
    /// Work in every active member account of the organisation (Organizations ListAccounts,
    /// from the management account or a delegated administrator), assuming this role in each
    /// (a name such as OrganizationAccountAccessRole, optionally with a path).
    #[arg(long, value_name = "ROLE_NAME")]
    pub org_role: Option<String>,
    /// Work in these accounts (instead of listing the organisation), through --org-role.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ID,...",
        requires = "org_role"
    )]
    pub accounts: Option<Vec<String>>,
}

/// How to reach AWS (`scan` of `ami-...`/`snap-...` targets and the fleet commands). Credentials
/// come from the standard chain (environment, profiles, SSO, web identity, IMDS);
/// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EBS` and `AWS_ENDPOINT_URL_EC2` are honoured.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "AWS (ami-... and snap-... targets, fleet commands)")]
pub struct FleetAwsArgs {
    /// Region for single-region calls and DescribeRegions (default: environment or profile).
    #[arg(long)]
    pub region: Option<String>,
    /// Named profile from the shared config files.
    #[arg(long)]
    pub profile: Option<String>,
    /// Endpoint for both EC2 and EBS (overrides AWS_ENDPOINT_URL*).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Assume this role first (to reach images in another account).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// GetSnapshotBlock requests in flight per snapshot (never above 1000 requests/s).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: u32,
    /// Most memory for the block cache of one snapshot, in MiB (within --memory-mb).
    #[arg(long, default_value_t = 192, value_name = "MIB", value_parser = clap::value_parser!(u64).range(8..))]
    pub cache_mb: u64,
    /// Memory for EBS blocks, all snapshots together (caches, read-ahead, requests in flight),
    /// in MiB: shared between the snapshots being read. A sweep keeps 16 MiB of it per image
    /// scanned at once beyond the first for the rest of each scan.
    #[arg(long, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(16..))]
    pub memory_mb: u64,
    /// GetSnapshotBlock requests per second for the account and region, all snapshots
    /// together (the adaptive gate's ceiling; it slows down when throttled).
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub account_rps: u32,
    /// ListSnapshotBlocks requests per second for the account and region.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub account_list_rps: u32,
}

/// `amiscan sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Regions (comma-separated; default: every enabled region, from DescribeRegions).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Option<Vec<String>>,
    /// Image owners: account ids, `self`, `amazon` (default: self).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "self",
        value_name = "ID,..."
    )]
    pub owners: Vec<String>,
    /// Images scanned at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,
    /// Where results are kept: a directory (one object per snapshot set; shared safely by
    /// concurrent workers), `s3://BUCKET/PREFIX` (the same in S3), or a `.json` state file
    /// (one process). Default: $XDG_STATE_HOME/amiscan/sweep-state.json, else
    /// ~/.local/state/amiscan/sweep-state.json.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX|FILE.json")]
    pub state: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SweepFormat::Text)]
    pub format: SweepFormat,
    /// Scan only shard K of N: the images whose snapshot set hashes (FNV-1a 64 of the sorted
    /// snapshot ids) to K modulo N. Run N workers, K = 0..N-1, on one shared --state.
    #[arg(long, value_name = "K/N", conflicts_with = "report")]
    pub shard: Option<amiscan::model::fleet::Shard>,
    /// Scan one shard of N, its index K from AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array jobs)
    /// or JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs); --shard wins when given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "report")]
    pub shards: Option<u32>,
    /// Scan nothing: list the images, read their results from --state (written by the
    /// workers of a sharded sweep) and print the report with the sweep's exit code (3 when an
    /// image has no stored result).
    #[arg(long)]
    pub report: bool,
    /// Accounts.
    #[command(flatten)]
    pub org: OrgArgs,
    /// An image fails on a finding at or above this severity.
    #[arg(long, default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Walk and read only the well-known places of each image (see `scan --quick`).
    #[arg(long)]
    pub quick: bool,
    /// Stop after this many images (tests: simulates an interruption).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// AWS options.
    #[command(flatten)]
    pub aws: FleetAwsArgs,
}

/// `amiscan audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Regions (comma-separated; default: every enabled region).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Option<Vec<String>>,
    /// Accounts whose AMIs you trust (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub trusted_accounts: Vec<String>,
    /// The sweep state (directory, s3://BUCKET/PREFIX or .json file), for the scan results of
    /// public images.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX|FILE.json")]
    pub state: Option<String>,
    /// Accounts.
    #[command(flatten)]
    pub org: OrgArgs,
    /// What counts as clean in the sweep results.
    #[arg(long, default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Write to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// AWS options.
    #[command(flatten)]
    pub aws: FleetAwsArgs,
}

/// Output formats of `amiscan audit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// Per account and region: posture, public images, instances, warnings.
    Text,
    /// The audit as JSON.
    Json,
    /// One self-contained HTML page: what to act on, the posture, and a graph of AMIs and the
    /// instances on them.
    Html,
}

/// `amiscan publish`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("whom").required(true).args(["public", "accounts"])))]
pub struct PublishArgs {
    /// The AMI (`ami-...`), owned by this account.
    #[arg(value_name = "AMI")]
    pub ami: String,
    /// Share with everyone.
    #[arg(long)]
    pub public: bool,
    /// Share with these accounts (comma-separated 12-digit ids).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub accounts: Vec<String>,
    /// Refuse on a finding at or above this severity.
    #[arg(long, default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Output format of the scan report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// AWS options.
    #[command(flatten)]
    pub aws: FleetAwsArgs,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Findings grouped by severity, coverage and a summary.
    Text,
    /// The full report as JSON (version 1).
    Json,
}

/// When to colour the text output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When writing to a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `amiscan scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// What to scan: raw disk images (a whole disk with GPT or MBR, or a bare filesystem),
    /// AMIs (`ami-...`: every EBS volume of the image) and EBS snapshots (`snap-...`), read
    /// through the EBS direct APIs.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    pub format: ScanFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Leave findings below this severity out of the report (default: info, keep all).
    /// `--fail-on` applies to the findings that remain.
    #[arg(long, default_value = "info", value_parser = parse_severity, value_name = "SEV")]
    pub min_severity: Severity,
    /// Triage: walk only the well-known places (/etc, /root, /home, the home directories in
    /// /etc/passwd, /usr/local, /opt, /srv, /tmp, /var/www, ...), read all of /etc and elsewhere
    /// only well-known names (SSH keys, histories, credential files, .env, *.pem, *.key, ...).
    /// /usr (but /usr/local) is not walked and packaged binaries are not verified. The report
    /// says `mode: quick`; the default reads every file and is the release gate.
    #[arg(long)]
    pub quick: bool,
    /// Also scan the blocks each filesystem marks free (deleted files survive there) and its
    /// journal (ext4) or log (XFS). Such findings have no path, and the volume byte offset.
    #[arg(long)]
    pub unallocated: bool,
    /// Show the findings in vendor content (files exactly as their package shipped them,
    /// info) in the text report; hidden by default and counted in its summary. JSON, SARIF and
    /// ASFF always carry them, with their `provenance`.
    #[arg(long)]
    pub show_vendor: bool,
    /// Put secret values in clear in the report. Off by default: reports carry a redacted
    /// prefix and a SHA-256 fingerprint only.
    #[arg(long)]
    pub show_secrets: bool,
    /// Worker threads for content scanning (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Colour the text report.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Baselines, and where ASFF findings go (boxed: keeps `Command` small).
    #[command(flatten)]
    pub report: Box<ReportArgs>,
    /// AWS options, for `ami-...` and `snap-...` targets.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Output formats of `amiscan scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Findings grouped by severity, coverage and a summary.
    Text,
    /// The full report as JSON (version 1).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards (GitHub code scanning).
    Sarif,
    /// AWS Security Finding Format: a JSON array for Security Hub `BatchImportFindings`
    /// (needs an account and a region: --asff-account, --asff-region).
    Asff,
}

/// Suppressing known findings, and where ASFF findings go.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Baselines and ASFF")]
pub struct ReportArgs {
    /// Leave out the findings this baseline file lists (matched by rule id and fingerprint):
    /// they are counted as `suppressed` per target and never fail the scan.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write a baseline that accepts every current finding to FILE (before --baseline is
    /// applied); the report and the exit code are unchanged.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// AWS account id (12 digits) for --format asff: `AwsAccountId` and the product ARN
    /// (default: $AWS_ACCOUNT_ID).
    #[arg(long, value_name = "ID")]
    pub asff_account: Option<String>,
    /// Security Hub region for --format asff (default: --region, then $AWS_REGION, then
    /// $AWS_DEFAULT_REGION).
    #[arg(long, value_name = "REGION")]
    pub asff_region: Option<String>,
}

/// AWS options of `scan`: how to reach AWS, and `--copy`.
#[derive(clap::Args, Debug, Clone)]
pub struct AwsArgs {
    /// How to reach AWS.
    #[command(flatten)]
    pub conn: FleetAwsArgs,
    /// For AMIs the EBS direct APIs cannot read (public, community, shared): copy each into this
    /// account (same region), scan the copy, then deregister it and delete its snapshots — also
    /// when the scan fails or is interrupted (Ctrl-C). Needs ec2:CopyImage, DeregisterImage,
    /// DeleteSnapshot.
    #[arg(long)]
    pub copy: bool,
}

/// `amiscan rules`.
#[derive(clap::Args, Debug)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::{EXIT_CODES, SWEEP_EXIT_CODES};
    use amiscan::model::Exit;

    /// The codes a help text lists (lines `  N  what`).
    fn listed(help: &str) -> Vec<u8> {
        help.lines()
            .filter_map(|l| {
                l.strip_prefix("  ")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// The help texts list the codes of the one exit table, no other: `scan` every code but
    /// the interruption (it has no handler), `sweep` all of them.
    #[test]
    fn the_help_texts_list_the_exit_table() {
        let all: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        let scan: Vec<u8> = Exit::ALL
            .iter()
            .filter(|e| **e != Exit::Interrupted)
            .map(|e| e.code())
            .collect();
        assert_eq!(listed(EXIT_CODES), scan);
        assert_eq!(listed(SWEEP_EXIT_CODES), all);
    }
}
