//! The SBOM of an AMI or snapshot through the EBS direct APIs: the same collection as for a
//! disk image ([`crate::sbom::collect_disks`]), which reads only the package databases and
//! manifests, so only the blocks under them (and the filesystem metadata on the way) are
//! fetched. No read-ahead of the whole volume is asked for.

use super::AwsSession;
use super::scan::{EbsTarget, ScanTargetError, open_target};
use crate::report::SnapshotReport;
use crate::sbom::{Sbom, SbomOptions, collect_disks};
use crate::source::ebs::EbsOptions;

/// The SBOM of `target`, and each snapshot's read statistics (blocks fetched of blocks listed).
pub fn sbom_ebs_target(
    session: &AwsSession,
    target: &EbsTarget,
    ebs: &EbsOptions,
    opts: &SbomOptions,
) -> Result<(Sbom, Vec<SnapshotReport>), ScanTargetError> {
    let t = open_target(session, target, ebs)?;
    let name = match target {
        EbsTarget::Ami(id) | EbsTarget::Snapshot(id) => id.clone(),
    };
    let mut sbom = collect_disks(name, t.disks(), opts);
    sbom.errors
        .extend(t.errors.iter().map(|e| e.message.clone()));
    sbom.volumes
        .extend(t.warnings.iter().map(|w| w.message.clone()));
    sbom.finish();
    Ok((sbom, t.snapshot_reports()))
}
