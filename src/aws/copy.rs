//! `amiscan scan --copy ami-...`: scan an AMI the EBS direct APIs cannot read (public,
//! community, shared with us) by copying it into the account (same region), waiting for the copy,
//! scanning it, and deleting it again: `DeregisterImage`, then `DeleteSnapshot` for each of its
//! snapshots.
//!
//! Cleanup runs on every path: after the scan, when the scan or the wait fails, when the process
//! is interrupted (the binary's Ctrl-C / SIGTERM handler sets the `stop` flag: a watcher cleans
//! up at once, which also ends the scan early since its snapshots are gone), and from a `Drop`
//! guard on an early return or a panic. It cannot run on SIGKILL or a power cut: the copy is then left behind, named
//! `amiscan-copy-<source>-<time>` with a description saying it is temporary, for the user to
//! delete.

use super::ec2ops::{self, WaitOptions};
use super::scan::{EbsTarget, ScanTargetError, scan_ebs_target};
use super::{AwsError, AwsSession};
use crate::detect::Detector;
use crate::report::{ScanError, TargetReport};
use crate::scan::ScanOptions;
use crate::source::ebs::EbsOptions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The temporary copy and what is left to delete.
struct Copy<'a> {
    session: &'a AwsSession,
    region: String,
    image_id: String,
    snapshots: Option<Vec<String>>,
    done: bool,
    log: Vec<String>,
    errors: Vec<String>,
}

impl Copy<'_> {
    /// Deregister the copy and delete its snapshots (once).
    fn cleanup(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let ec2 = self.session.ec2_client().clone();
        let snaps = match self.snapshots.clone() {
            Some(s) => s,
            None => {
                let (ec2, region, id) = (ec2.clone(), self.region.clone(), self.image_id.clone());
                match self
                    .session
                    .run(async move { ec2ops::image(&ec2, &region, &id).await })
                {
                    Ok(Some(i)) => i.snapshot_ids,
                    Ok(None) => Vec::new(),
                    Err(e) => {
                        self.errors
                            .push(format!("cannot list the copy's snapshots: {e}"));
                        Vec::new()
                    }
                }
            }
        };
        let (c, id) = (ec2.clone(), self.image_id.clone());
        match self
            .session
            .run(async move { ec2ops::deregister_image(&c, &id).await })
        {
            Ok(()) => self.log.push(format!("deregistered {}", self.image_id)),
            Err(e) => self
                .errors
                .push(format!("cannot deregister {}: {e}", self.image_id)),
        }
        for s in snaps {
            let (c, id) = (ec2.clone(), s.clone());
            match self
                .session
                .run(async move { ec2ops::delete_snapshot(&c, &id).await })
            {
                Ok(()) => self.log.push(format!("deleted {s}")),
                Err(e) => self.errors.push(format!("cannot delete {s}: {e}")),
            }
        }
    }
}

impl Drop for Copy<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Copy `source` into the account, scan the copy, delete it. The report is named after the
/// source; its warnings say which copy was scanned and what was deleted, and cleanup failures
/// are errors (something was left behind). `stop` is the interrupt flag.
pub fn scan_copy(
    session: &AwsSession,
    source: &str,
    ebs: &EbsOptions,
    det: &Detector,
    opts: &ScanOptions,
    wait: &WaitOptions,
    stop: Arc<AtomicBool>,
) -> Result<TargetReport, ScanTargetError> {
    let ec2 = session.ec2_client().clone();
    let region = ec2
        .config()
        .region()
        .map(|r| r.to_string())
        .ok_or(AwsError::NoRegion)?;
    let name = format!(
        "amiscan-copy-{source}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let copy_id = {
        let (c, s, r) = (ec2.clone(), source.to_string(), region.clone());
        session.run(async move { ec2ops::copy_image(&c, &s, &r, &name).await })?
    };
    let copy = Mutex::new(Copy {
        session,
        region: region.clone(),
        image_id: copy_id.clone(),
        snapshots: None,
        done: false,
        log: Vec::new(),
        errors: Vec::new(),
    });
    let finished = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        // The watcher: on an interruption, clean up at once.
        scope.spawn(|| {
            while !finished.load(Ordering::SeqCst) {
                if stop.load(Ordering::SeqCst) {
                    copy.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .cleanup();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let run = || -> Result<TargetReport, ScanTargetError> {
            let (c, r, id, w, s) = (
                ec2.clone(),
                region.clone(),
                copy_id.clone(),
                wait.clone(),
                stop.clone(),
            );
            let img =
                session.run(async move { ec2ops::wait_available(&c, &r, &id, &w, s).await })?;
            copy.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .snapshots = Some(img.snapshot_ids.clone());
            scan_ebs_target(session, &EbsTarget::Ami(copy_id.clone()), ebs, det, opts)
        };
        let r = run();
        finished.store(true, Ordering::SeqCst);
        r
    });
    let mut copy = copy
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    copy.cleanup();
    let log = std::mem::take(&mut copy.log);
    let errors = std::mem::take(&mut copy.errors);
    drop(copy);
    let mut report = result?;
    report.target = source.to_string();
    report.warnings.push(ScanError {
        path_bytes: None,
        path: None,
        message: format!(
            "scanned through a temporary copy {copy_id} in {region}; cleanup: {}",
            if log.is_empty() {
                "nothing".into()
            } else {
                log.join(", ")
            }
        ),
    });
    if stop.load(Ordering::SeqCst) {
        report.errors.push(ScanError {
            path_bytes: None,
            path: None,
            message: "interrupted: the scan did not finish".into(),
        });
    }
    for e in errors {
        report.errors.push(ScanError {
            path_bytes: None,
            path: None,
            message: format!("cleanup of the temporary copy failed: {e} (delete it by hand)"),
        });
    }
    report.finalize();
    Ok(report)
}
