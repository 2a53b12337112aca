//! Scan AMIs and snapshots: resolve the AMI's block device mappings, open every EBS snapshot as a
//! source, and scan them together as one target (an LVM volume group may span them).

use super::{AwsError, AwsSession};
use crate::detect::Detector;
use crate::report::{AccountReport, ScanError, SnapshotReport, TargetReport};
use crate::scan::{Disk, ScanOptions, scan_disks};
use crate::source::ebs::{EbsOptions, EbsSource};
use std::sync::Arc;

/// What the user named: an AMI or a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EbsTarget {
    /// `ami-...`: every EBS volume of the image.
    Ami(String),
    /// `snap-...`: one snapshot.
    Snapshot(String),
}

impl EbsTarget {
    /// Recognise `ami-<hex>` and `snap-<hex>` ids (8 or 17 hex digits).
    pub fn parse(s: &str) -> Option<EbsTarget> {
        let id = |prefix: &str| {
            s.strip_prefix(prefix).is_some_and(|h| {
                (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit())
            })
        };
        if id("ami-") {
            Some(EbsTarget::Ami(s.to_string()))
        } else if id("snap-") {
            Some(EbsTarget::Snapshot(s.to_string()))
        } else {
            None
        }
    }
}

/// Why an EBS target could not be scanned at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanTargetError {
    /// EC2 said no (AMI not found, instance-store AMI, access denied, ...).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The only snapshot could not be opened.
    #[error(transparent)]
    Ebs(#[from] crate::source::ebs::EbsError),
}

pub(crate) struct Opened {
    device: Option<String>,
    source: Arc<EbsSource>,
}

fn snapshot_report(o: &Opened) -> SnapshotReport {
    let st = o.source.stats();
    SnapshotReport {
        device_name: o.device.clone(),
        snapshot_id: o.source.snapshot_id().to_string(),
        volume_size: crate::source::Source::len(o.source.as_ref()),
        blocks_listed: st.blocks_listed,
        blocks_fetched: st.blocks_fetched,
        bytes_fetched: st.bytes_fetched,
        requests: st.requests,
        retries: st.retries,
        throttles: st.throttles,
        failed_blocks: st.failed_blocks,
        elapsed_secs: st.elapsed.as_secs_f64(),
        request_rate: st.request_rate(),
    }
}

/// The account gates the snapshots went through, once each.
fn account_reports(opened: &[Opened]) -> Vec<AccountReport> {
    let mut out: Vec<AccountReport> = vec![];
    for o in opened {
        let a = o.source.account_stats();
        if out
            .iter()
            .any(|r| r.account == a.account && r.region == a.region)
        {
            continue;
        }
        out.push(AccountReport {
            account: a.account,
            region: a.region,
            limit_rps: a.limit_rps,
            current_rps: a.current_rps,
            requests: a.requests,
            throttles: a.throttles,
            list_requests: a.list_requests,
            list_throttles: a.list_throttles,
            cuts: a.cuts,
            achieved_rps: a.achieved_rps,
        });
    }
    out
}

/// The snapshots of an EBS target, opened as sources, and what could not be (errors) or was
/// skipped (warnings). Shared by the scan and the SBOM.
pub(crate) struct OpenedTarget {
    pub(crate) opened: Vec<Opened>,
    pub(crate) errors: Vec<ScanError>,
    pub(crate) warnings: Vec<ScanError>,
}

impl OpenedTarget {
    /// The opened snapshots as the disks of one target.
    pub(crate) fn disks(&self) -> Vec<Disk> {
        self.opened
            .iter()
            .map(|o| Disk {
                label: o
                    .device
                    .as_deref()
                    .map(|d| d.strip_prefix("/dev/").unwrap_or(d).to_string()),
                source: o.source.clone() as crate::source::SharedSource,
            })
            .collect()
    }

    /// Each snapshot's read statistics so far.
    pub(crate) fn snapshot_reports(&self) -> Vec<SnapshotReport> {
        self.opened.iter().map(snapshot_report).collect()
    }
}

/// Resolve an AMI's snapshots (or take the one snapshot) and open each as a source.
pub(crate) fn open_target(
    session: &AwsSession,
    target: &EbsTarget,
    ebs: &EbsOptions,
) -> Result<OpenedTarget, ScanTargetError> {
    let mut errors = vec![];
    let mut warnings = vec![];
    let mut opened = vec![];
    match target {
        EbsTarget::Snapshot(id) => {
            opened.push(Opened {
                device: None,
                source: session.open_snapshot(id, ebs.clone())?,
            });
        }
        EbsTarget::Ami(id) => {
            let ami = session.resolve_ami(id)?;
            for s in &ami.skipped {
                warnings.push(ScanError {
                    path_bytes: None,
                    path: None,
                    message: format!("{}: not scanned: {}", s.device_name, s.reason),
                });
            }
            for v in &ami.volumes {
                match session.open_snapshot(&v.snapshot_id, ebs.clone()) {
                    Ok(source) => opened.push(Opened {
                        device: Some(v.device_name.clone()),
                        source,
                    }),
                    Err(e) => errors.push(ScanError {
                        path_bytes: None,
                        path: None,
                        message: format!("{} ({}): not scanned: {e}", v.device_name, v.snapshot_id),
                    }),
                }
            }
        }
    }
    Ok(OpenedTarget {
        opened,
        errors,
        warnings,
    })
}

/// Scan one AMI or snapshot through the EBS direct APIs.
pub fn scan_ebs_target(
    session: &AwsSession,
    target: &EbsTarget,
    ebs: &EbsOptions,
    det: &Detector,
    opts: &ScanOptions,
) -> Result<TargetReport, ScanTargetError> {
    let t = open_target(session, target, ebs)?;
    let name = match target {
        EbsTarget::Ami(id) | EbsTarget::Snapshot(id) => id.clone(),
    };
    let mut report = scan_disks(name, t.disks(), det, opts);
    report.errors.extend(t.errors.iter().cloned());
    report.warnings.extend(t.warnings.iter().cloned());
    report.snapshots = t.snapshot_reports();
    report.accounts = account_reports(&t.opened);
    report.finalize();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ids() {
        assert_eq!(
            EbsTarget::parse("ami-0123456789abcdef0"),
            Some(EbsTarget::Ami("ami-0123456789abcdef0".into()))
        );
        assert_eq!(
            EbsTarget::parse("snap-0123abcd"),
            Some(EbsTarget::Snapshot("snap-0123abcd".into()))
        );
        for not in ["ami-xyz", "disk.img", "snap-0123", "ami-0123456789abcdef0g"] {
            assert_eq!(EbsTarget::parse(not), None, "{not}");
        }
    }
}
