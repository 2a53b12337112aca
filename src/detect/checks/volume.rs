//! The volume checks: families that need several files of a volume, run once per volume
//! through a [`FileLookup`] (see `crate::detect::lookup`).

use super::{CheckHit, packages, sshd, sudoers, windows_hives, windows_wmi};
use crate::detect::lookup::FileLookup;
use crate::report::ScanError;

/// Every volume check's findings, each with the path of the file it is about, and what the
/// checks could not read (a file whose read failed, a package database that exists but does
/// not parse): a check never turns a failed read into a verdict, it reports the error instead
/// (the scan is then incomplete). Identical findings (the same rule, file and span, e.g. a file
/// included twice) are reported once.
pub(crate) fn run(lookup: &dyn FileLookup) -> (Vec<(String, CheckHit)>, Vec<ScanError>) {
    let mut errors = Vec::new();
    let mut out = match sshd::check(lookup) {
        Ok(hits) => hits,
        Err(e) => {
            errors.push(e.scan_error(
                "the effective sshd configuration was not judged (no sshd finding is made \
                 from a configuration only partly read)",
            ));
            Vec::new()
        }
    };
    let (sudo, unread) = sudoers::check(lookup);
    out.extend(sudo);
    errors.extend(
        unread
            .iter()
            .map(|e| e.scan_error("sudoers rules in it (or included by it) were not judged")),
    );
    out.extend(packages::check(lookup, &mut errors));
    let (hives, unread) = windows_hives::check(lookup);
    out.extend(hives);
    errors.extend(unread);
    let (wmi, unread) = windows_wmi::check(lookup);
    out.extend(wmi);
    errors.extend(unread);
    let mut seen = std::collections::HashSet::new();
    out.retain(|(path, h)| seen.insert((path.clone(), h.rule, h.start, h.end)));
    (out, errors)
}
