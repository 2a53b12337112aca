//! The volume checks: families that need several files of a volume, run once per volume
//! through a [`FileLookup`] (see `crate::detect::lookup`).

use super::{CheckHit, packages, sshd, sudoers};
use crate::detect::lookup::FileLookup;
use crate::report::ScanError;

/// Every volume check's findings, each with the path of the file it is about, and what the
/// checks could not read (a package database that exists but does not parse). Identical
/// findings (the same rule, file and span, e.g. a file included twice) are reported once.
pub(crate) fn run(lookup: &dyn FileLookup) -> (Vec<(String, CheckHit)>, Vec<ScanError>) {
    let mut errors = Vec::new();
    let mut out = sshd::check(lookup);
    out.extend(sudoers::check(lookup));
    out.extend(packages::check(lookup, &mut errors));
    let mut seen = std::collections::HashSet::new();
    out.retain(|(path, h)| seen.insert((path.clone(), h.rule, h.start, h.end)));
    (out, errors)
}
