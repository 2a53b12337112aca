//! The shared types on the ground floor: severity, finding, rule info, scan errors, per-volume
//! coverage and per-target results, and the exit codes the outcome maps to.
//!
//! Detection makes these, the scanner fills them in, every writer in [`crate::report`] (text,
//! JSON, SARIF, ASFF, baseline) serialises them; this module imports nothing of the crate. Field
//! names are part of the public JSON contract (`version` 1) and must not change without bumping
//! the version.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod caught;
pub mod escape;
pub mod fleet;
pub mod governance;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
///
/// - **critical**: a credential that grants access as it stands (an unencrypted private key, an AWS
///   key pair, a usable root password hash, an account with an empty password).
/// - **high**: something that must not ship in a shared image and is directly abusable (SSH host
///   private keys, authorized_keys, an AWS access key id without its secret, user password hashes).
/// - **medium**: a protected or partial secret, or data that leaks how the image was built (an
///   encrypted private key, a non-empty shell history).
/// - **low**: weak hygiene signals.
/// - **info**: worth knowing, no action required (documentation example keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, no action required.
    Info,
    /// Weak hygiene signal.
    Low,
    /// Protected or partial secret, build leftovers.
    Medium,
    /// Must not ship; directly abusable.
    High,
    /// A credential that grants access as it stands.
    Critical,
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL_DESC: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The lowercase name used in JSON, TOML and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}` (expected critical, high, medium, low or info)"
            )),
        }
    }
}

/// Whether a rule is a content signature or a code check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// A catalog entry matched against file content.
    Signature,
    /// A path-based check implemented in code.
    Check,
}

/// What `amiscan rules` shows about a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable rule id (a contract with reports and suppression lists).
    pub id: String,
    /// Human title.
    pub title: String,
    /// Default severity (a finding may be raised or lowered from it).
    pub severity: Severity,
    /// Signature or check.
    pub kind: RuleKind,
    /// What to do about a finding.
    pub remediation: String,
    /// The family it belongs to in the file-rule registry (`shell-history`, `private-keys`).
    pub family: String,
    /// The files it applies to, from the registry (for a signature: any file, and where
    /// `--quick` reads).
    pub files: String,
}

/// One thing found in an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id (`pem-private-key`, `shadow-password-hash`, ...).
    pub rule: String,
    /// Severity of this finding (a check may raise or lower its rule's default).
    pub severity: Severity,
    /// Human title of the rule.
    pub title: String,
    /// Volume id within the target (`p1`, `p5`, `disk`), filled in by the scanner.
    pub volume: String,
    /// Absolute path inside the volume; `None` for findings that have no file (raw scans). A
    /// path that is not valid UTF-8 is in its [`escape::visible`] form (`bad\xffname`), with
    /// its exact bytes in `path_bytes`.
    pub path: Option<String>,
    /// Base64 of the path's exact bytes, only when they are not valid UTF-8 (`path` then holds
    /// their visible escapes): two different files never share (`path`, `path_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// 1-based line of the match in a text file, when known.
    pub line: Option<u64>,
    /// Byte offset of the match inside the file (or the volume for raw findings).
    pub offset: Option<u64>,
    /// Redacted evidence: never the secret itself unless `--show-secrets`.
    pub evidence: String,
    /// `sha256:<hex>` of the secret, to track one secret across images without revealing it.
    pub fingerprint: String,
    /// What to do about it.
    pub remediation: String,
    /// The secret in clear: only present when the user asked for it with `--show-secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Which package shipped the file, when a package database of the image lists it (see
    /// [`Provenance`]); absent for files no package lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl Finding {
    /// Whether the finding is in vendor content: a file as its package shipped it. Such a
    /// finding is info, counted apart, and never fails a scan.
    pub fn is_vendor(&self) -> bool {
        self.provenance
            .as_ref()
            .is_some_and(|p| p.state == FileState::Unmodified)
    }
}

/// Where the package databases of the image say a file came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The database that lists the file: `dpkg`, `rpm` or `python` (a `*.dist-info/RECORD`).
    pub source: String,
    /// The package (`cloud-init`, `openssl-libs`, `boto3`).
    pub package: String,
    /// Its version, when the database records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether the file is as the package shipped it.
    pub state: FileState,
    /// For a compiled or derived file (`__pycache__/*.pyc`), the packaged file it was made
    /// from and whose provenance it inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
}

/// A packaged file's content against the digest its package recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// The digest matches: vendor content, shipped unmodified.
    Unmodified,
    /// The digest differs: changed after the package installed it (the finding keeps its
    /// severity; a planted secret hides here).
    Modified,
}

/// The (`path`, `path_bytes`) pair for a path of these exact bytes (see [`Finding::path`]).
pub fn path_fields(bytes: &[u8]) -> (String, Option<String>) {
    use base64::Engine as _;
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (
            escape::visible(bytes),
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

/// The exact bytes of a reported path: `path_bytes` decoded when present (and valid base64),
/// else the path's own bytes.
pub fn exact_path(path: &str, path_bytes: Option<&str>) -> Vec<u8> {
    use base64::Engine as _;
    path_bytes
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| path.as_bytes().to_vec())
}

/// A reported path for a human: its exact bytes in their [`escape::visible`] form.
pub fn shown_path(path: &str, path_bytes: Option<&str>) -> String {
    match path_bytes {
        Some(_) => escape::visible(&exact_path(path, path_bytes)),
        None => escape::visible_str(path).into_owned(),
    }
}

impl Finding {
    /// The exact bytes of the path (see [`exact_path`]), `None` for findings without a file.
    pub fn exact_path(&self) -> Option<Vec<u8>> {
        self.path
            .as_deref()
            .map(|p| exact_path(p, self.path_bytes.as_deref()))
    }
}

/// Whether a volume was scanned, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeStatus {
    /// Its filesystem was walked and its files scanned (errors may still make it incomplete).
    Scanned,
    /// It holds no files by design (an all-zero or BIOS boot partition).
    NoFilesystem,
    /// It holds other volumes (an LVM physical volume): they are listed and scanned separately.
    Container,
    /// Its filesystem could not be walked (unknown, unsupported or corrupt), so its bytes were
    /// scanned block by block by the content signatures; the reason is in `errors`, findings have
    /// a byte offset and no path, and the target is incomplete.
    ScannedRaw,
    /// It could not be scanned: the reason is in `errors`, and the target is incomplete.
    NotScanned,
}

/// Something that could not be read or parsed. Any error makes the target incomplete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanError {
    /// File path inside the volume, when the error concerns one file (as in [`Finding::path`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Base64 of the path's exact bytes, only when they are not valid UTF-8 (as in
    /// [`Finding::path_bytes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// What went wrong, naming the structure and where.
    pub message: String,
}

/// Coverage of one volume (a partition, a bare filesystem, later a logical volume).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeReport {
    /// Short id used in findings: `p1`.. for partitions, `disk` for a bare filesystem.
    pub id: String,
    /// Byte offset of the volume inside the target.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// GPT partition name, when there is one.
    pub partition_name: Option<String>,
    /// Partition type (GPT type GUID with its name, or MBR type byte).
    pub partition_type: Option<String>,
    /// Filesystem found by probing (`ext4`, `xfs`, `swap`, ...), if any.
    pub filesystem: Option<String>,
    /// Whether the volume was scanned.
    pub status: VolumeStatus,
    /// Regular files whose content was scanned.
    pub files_scanned: u64,
    /// Regular files not read because another file with the same content on the volume was
    /// (a btrfs snapshot's unchanged file shares its source's extents): that file's findings
    /// are reported at their path too. Not counted in `files_scanned`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_shared: u64,
    /// Bytes of file content scanned.
    pub bytes_scanned: u64,
    /// With `--unallocated`: non-zero bytes of free space and journal/log scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unallocated_bytes_scanned: Option<u64>,
    /// With `--quick`: the directories walked whole (`/etc`, `/root`, `/home`, the home
    /// directories `/etc/passwd` names, where symbolic links lead, ...; `["/"]` for a volume
    /// that is not a root filesystem). Nothing outside them was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_roots: Vec<String>,
    /// Why a `no_filesystem` volume holds no files, when amiscan knows (a dm-verity hash tree,
    /// a swap area that was never used). Informational: it does not make the scan incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Everything that could not be read or parsed on this volume.
    pub errors: Vec<ScanError>,
    /// Problems worked around without losing data (an ext4 directory extent marked unwritten,
    /// read as e2fsck keeps it). They do not make the volume incomplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ScanError>,
}

/// How one EBS snapshot was read: what it holds and what reading it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotReport {
    /// Device name in the AMI's block device mapping (`/dev/xvda`), when scanned as part of one.
    pub device_name: Option<String>,
    /// `snap-...`.
    pub snapshot_id: String,
    /// Volume size in bytes.
    pub volume_size: u64,
    /// Non-zero blocks the listing returned.
    pub blocks_listed: u64,
    /// Blocks fetched and verified.
    pub blocks_fetched: u64,
    /// Bytes fetched.
    pub bytes_fetched: u64,
    /// `GetSnapshotBlock` requests, retries included.
    pub requests: u64,
    /// Attempts repeated after a failure.
    pub retries: u64,
    /// Failures that were throttling.
    pub throttles: u64,
    /// Blocks given up on after every retry.
    pub failed_blocks: u64,
    /// Seconds from opening the snapshot to the end of its scan.
    pub elapsed_secs: f64,
    /// `GetSnapshotBlock` requests per second over `elapsed_secs`.
    #[serde(default)]
    pub request_rate: f64,
}

impl Eq for SnapshotReport {}

/// How the request gate of one account and region fared (every snapshot of the account and
/// region the process read so far, this target's and others').
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountReport {
    /// The account (`default` when the credentials do not name one).
    pub account: String,
    /// The region.
    pub region: String,
    /// The configured `GetSnapshotBlock` rate (`--account-rps`).
    pub limit_rps: u32,
    /// The adaptive gate's rate at the end.
    pub current_rps: f64,
    /// `GetSnapshotBlock` requests sent.
    pub requests: u64,
    /// Of those, throttled.
    pub throttles: u64,
    /// `ListSnapshotBlocks` requests sent.
    pub list_requests: u64,
    /// Of those, throttled.
    pub list_throttles: u64,
    /// Times the gate cut its rate after throttling.
    pub cuts: u64,
    /// `GetSnapshotBlock` requests per second achieved, first to last request.
    pub achieved_rps: f64,
}

impl Eq for AccountReport {}

/// How much of each filesystem a scan reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMode {
    /// Every regular file (the default).
    #[default]
    Full,
    /// Only the well-known places (`--quick`): `/etc`, home directories, `/usr/local`, `/opt`,
    /// `/srv`, temporary directories, and there only well-known names outside `/etc` (keys,
    /// credentials, histories). `files_scanned` counts only those.
    Quick,
}

/// Result for one target (a disk image, an EBS snapshot or an AMI).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    /// The target as the user named it.
    pub target: String,
    /// Whether every file was read (`full`) or only the well-known paths (`quick`).
    #[serde(default)]
    pub mode: ScanMode,
    /// True only when every byte that should have been read was read and parsed.
    pub complete: bool,
    /// The disk-image container the target was read through (`qcow2`, `vmdk`, `vhd`, `vhdx`);
    /// absent for a raw image or an EBS snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Target-level errors (the partition table could not be read, ...).
    #[serde(default)]
    pub errors: Vec<ScanError>,
    /// Problems worked around without losing data (a corrupt primary GPT header whose backup
    /// header was used). They do not make the target incomplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ScanError>,
    /// For EBS targets: each snapshot read, with its request accounting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<SnapshotReport>,
    /// For EBS targets: the request gate of each account and region read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountReport>,
    /// Every volume found, scanned or not.
    pub volumes: Vec<VolumeReport>,
    /// Findings, sorted by severity (most severe first), then volume and path.
    pub findings: Vec<Finding>,
    /// Findings left out because a `--baseline` lists them (rule id and fingerprint). They do not
    /// count for `--fail-on`.
    #[serde(default)]
    pub suppressed: u64,
    /// Findings in vendor content (files as their package shipped them, see
    /// [`Finding::is_vendor`]): info, kept in `findings`, counted here, never failing a scan.
    #[serde(default)]
    pub vendor: u64,
}

/// A whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// JSON contract version.
    pub version: u32,
    /// `amiscan <version>`.
    pub tool: String,
    /// One entry per target, in the order given.
    pub targets: Vec<TargetReport>,
}

impl Report {
    /// True when every target was scanned completely.
    pub fn complete(&self) -> bool {
        self.targets.iter().all(|t| t.complete)
    }

    /// The most severe finding across all targets, vendor content left out (it never fails a
    /// scan).
    pub fn max_severity(&self) -> Option<Severity> {
        self.targets
            .iter()
            .filter_map(TargetReport::max_severity)
            .max()
    }
}

/// The most severe of `findings`, vendor content left out (it never fails a scan).
pub fn max_severity(findings: &[Finding]) -> Option<Severity> {
    findings
        .iter()
        .filter(|f| !f.is_vendor())
        .map(|f| f.severity)
        .max()
}

impl TargetReport {
    /// The most severe finding, vendor content left out (it never fails a scan).
    pub fn max_severity(&self) -> Option<Severity> {
        max_severity(&self.findings)
    }

    /// Recompute `complete` from the errors and volume statuses, count the vendor findings, and
    /// sort the findings.
    pub fn finalize(&mut self) {
        self.vendor = self.findings.iter().filter(|f| f.is_vendor()).count() as u64;
        self.complete = self.errors.is_empty()
            && self
                .volumes
                .iter()
                .all(|v| v.errors.is_empty() && v.status != VolumeStatus::NotScanned);
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.volume.cmp(&b.volume))
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.offset.cmp(&b.offset))
                .then_with(|| a.rule.cmp(&b.rule))
        });
    }
}

/// The process exit codes, the one table every command maps its outcome to (the binary's
/// `main`, the fleet commands, the second-signal shutdown of an interrupted sweep).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Scanned completely, nothing at or above `--fail-on`.
    Clean = 0,
    /// Findings at or above `--fail-on` (for `audit`: a public image with findings, or an
    /// instance of an unverified public image; for `publish`: refused for findings).
    Findings = 1,
    /// Usage error, or a target that cannot be opened, or a command that could not start.
    Usage = 2,
    /// Nothing at or above `--fail-on`, but the scan was incomplete (or an image or region
    /// failed, or `publish` refused for another reason).
    Incomplete = 3,
    /// Interrupted before the end (SIGINT / SIGTERM).
    Interrupted = 130,
}

impl Exit {
    /// Every exit status, in order.
    pub const ALL: [Exit; 5] = [
        Exit::Clean,
        Exit::Findings,
        Exit::Usage,
        Exit::Incomplete,
        Exit::Interrupted,
    ];

    /// The status the process exits with.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

/// For `skip_serializing_if`: a count of zero is left out of the JSON.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Low > Severity::Info);
        for s in Severity::ALL_DESC {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
        }
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn a_volume_error_makes_the_target_incomplete() {
        let mut t = TargetReport {
            target: "x".into(),
            mode: ScanMode::Full,
            complete: true,
            container: None,
            errors: vec![],
            warnings: vec![],
            snapshots: vec![],
            accounts: vec![],
            volumes: vec![VolumeReport {
                id: "p1".into(),
                offset: 0,
                size: 1,
                partition_name: None,
                partition_type: None,
                filesystem: Some("ext4".into()),
                status: VolumeStatus::Scanned,
                files_scanned: 0,
                files_shared: 0,
                bytes_scanned: 0,
                unallocated_bytes_scanned: None,
                quick_roots: Vec::new(),
                warnings: Vec::new(),
                note: None,
                errors: vec![],
            }],
            findings: vec![],
            suppressed: 0,
            vendor: 0,
        };
        t.finalize();
        assert!(t.complete);
        t.volumes[0].errors.push(ScanError {
            path_bytes: None,
            path: Some("/etc/x".into()),
            message: "read failed".into(),
        });
        t.finalize();
        assert!(!t.complete);
    }
}
