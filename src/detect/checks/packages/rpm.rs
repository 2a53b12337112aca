//! The package checks on an rpm system: ownership and content verified against the rpm
//! database (see the parent module for what is checked and why).

use super::{
    MAX_VERIFY_FILES, NOT_JUDGED, RPM_MODIFIED_RULE, sensitive, unowned, unread, usrmerge_alias,
    verify_bytes, wanted,
};
use crate::detect::checks::{CheckHit, clip};
use crate::detect::lookup::{FileLookup, Looked, Meta, MetaKind};
use crate::pkgdb::rpm::{
    self as rpmdb, Backend, DB_PATHS, DigestAlgo, MAX_DB_BYTES, ReadStats, RpmDbError,
};
use crate::report::ScanError;
use std::collections::{BTreeMap, HashSet};

/// Most (path, package) digests kept for verification.
const MAX_EXPECTED: usize = 4 * MAX_VERIFY_FILES;

/// What one package says a file's content is.
struct Expected {
    nvr: String,
    algo: DigestAlgo,
    digest: Vec<u8>,
}

/// The first rpm database of [`DB_PATHS`] present on the volume.
pub(crate) fn find(lookup: &dyn FileLookup) -> Looked<Option<(&'static str, Backend)>> {
    for &(p, backend) in DB_PATHS {
        if lookup
            .metadata(p)?
            .is_some_and(|m| m.kind == MetaKind::File)
        {
            return Ok(Some((p, backend)));
        }
    }
    Ok(None)
}

/// A file of the volume, read whole up to the database cap.
fn read_capped(lookup: &dyn FileLookup, path: &str) -> Result<Vec<u8>, RpmDbError> {
    let data = lookup
        .read(path, MAX_DB_BYTES.saturating_add(1))
        .map_err(|e| RpmDbError::Unreadable(e.to_string()))?
        .ok_or_else(|| RpmDbError::Unreadable(format!("{path}: not a regular file")))?;
    if data.len() > MAX_DB_BYTES {
        return Err(RpmDbError::TooLarge);
    }
    Ok(data)
}

/// The database at `path`, and for sqlite its write-ahead log when there is a non-empty one.
pub(crate) fn read_db(
    lookup: &dyn FileLookup,
    path: &str,
    backend: Backend,
) -> Result<(Vec<u8>, Option<Vec<u8>>), RpmDbError> {
    let data = read_capped(lookup, path)?;
    let wal = match backend {
        Backend::Sqlite => match lookup
            .metadata(&format!("{path}-wal"))
            .map_err(|e| RpmDbError::Unreadable(e.to_string()))?
        {
            Some(m) if m.kind == MetaKind::File && m.size > 0 => {
                Some(read_capped(lookup, &format!("{path}-wal"))?)
            }
            _ => None,
        },
        Backend::Bdb => None,
    };
    Ok((data, wal))
}

/// Ownership and content findings from the rpm database at `path`.
pub(super) fn check(
    lookup: &dyn FileLookup,
    path: &str,
    backend: Backend,
    setid: &BTreeMap<String, Meta>,
    errors: &mut Vec<ScanError>,
) -> Result<(Vec<(String, CheckHit)>, ReadStats), RpmDbError> {
    let wanted = wanted(setid);
    let mut owned: HashSet<String> = HashSet::new();
    let mut expected: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    let mut kept = 0usize;
    let (data, wal) = read_db(lookup, path, backend)?;
    let stats = rpmdb::for_each_package(&data, wal.as_deref(), backend, &mut |pkg| {
        let mut nvr = None;
        for f in &pkg.files {
            if wanted.contains(&f.path) {
                owned.insert(f.path.clone());
            }
            let is_setid = setid.contains_key(&f.path)
                || usrmerge_alias(&f.path).is_some_and(|a| setid.contains_key(&a));
            if !(sensitive(&f.path) || is_setid) || !f.verifiable() || kept >= MAX_EXPECTED {
                continue;
            }
            kept += 1;
            expected.entry(f.path.clone()).or_default().push(Expected {
                nvr: nvr.get_or_insert_with(|| pkg.nvr()).clone(),
                algo: pkg.algo,
                digest: f.digest.clone(),
            });
        }
    })?;
    let basis = format!(
        "no rpm package lists it ({} database {path})",
        backend.name()
    );
    let mut out = unowned(setid, &owned, &basis);
    out.extend(modified(lookup, path, backend, &expected, errors));
    Ok((out, stats))
}

/// Files whose content matches none of the packages that list them.
fn modified(
    lookup: &dyn FileLookup,
    db: &str,
    backend: Backend,
    expected: &BTreeMap<String, Vec<Expected>>,
    errors: &mut Vec<ScanError>,
) -> Vec<(String, CheckHit)> {
    let known = |exp: &[Expected]| {
        exp.iter()
            .any(|e| !matches!(e.algo, DigestAlgo::Unknown(_)))
    };
    // A file all of whose packages record MD5s, which the scanner computed, is not read.
    let from_scanner = |p: &String, exp: &[Expected]| {
        exp.iter().all(|e| matches!(e.algo, DigestAlgo::Md5))
            && std::iter::once(p.clone())
                .chain(usrmerge_alias(p))
                .any(|q| lookup.md5(&q).is_some())
    };
    let hint: Vec<String> = expected
        .iter()
        .filter(|(p, exp)| known(exp) && !from_scanner(p, exp))
        .take(MAX_VERIFY_FILES)
        .flat_map(|(p, _)| std::iter::once(p.clone()).chain(usrmerge_alias(p)))
        .collect();
    lookup.prefetch(&hint);
    let mut budget = MAX_VERIFY_FILES;
    let mut out = Vec::new();
    for (path, exp) in expected {
        if !known(exp) {
            continue;
        }
        // MD5 packages can use the scanner's digest without reading the file again.
        let scanner_md5 = std::iter::once(path.clone())
            .chain(usrmerge_alias(path))
            .find_map(|p| lookup.md5(&p));
        let mut data = None;
        let mut failed = None;
        let mut actual_of = |algo: DigestAlgo| -> Option<Vec<u8>> {
            if let (DigestAlgo::Md5, Some(m)) = (algo, scanner_md5) {
                return Some(m.to_vec());
            }
            if data.is_none() && failed.is_none() {
                match verify_bytes(lookup, path, &mut budget) {
                    Ok(d) => data = Some(d),
                    Err(e) => failed = Some(e),
                }
            }
            algo.digest(data.as_ref()?.as_deref()?)
        };
        let mut first_mismatch = None;
        let mut matched = false;
        for e in exp {
            let Some(actual) = actual_of(e.algo) else {
                continue;
            };
            if actual == e.digest {
                matched = true;
                break;
            }
            first_mismatch.get_or_insert((e, actual));
        }
        if let (false, Some(e)) = (matched, &failed) {
            // The file could not be read: no verdict from the digests that could be made.
            unread(errors, e, NOT_JUDGED);
            continue;
        }
        let (false, Some((e, actual))) = (matched, first_mismatch) else {
            continue;
        };
        let evidence = format!(
            "content differs from package {} in the rpm {} database {db} ({} expected {}, found {})",
            clip(&e.nvr, 80),
            backend.name(),
            e.algo.name(),
            hex::encode(&e.digest),
            hex::encode(&actual)
        );
        let fp = format!("{path}:{}", hex::encode(&actual));
        out.push((
            path.clone(),
            CheckHit::file(
                &RPM_MODIFIED_RULE,
                RPM_MODIFIED_RULE.severity,
                evidence,
                fp.as_bytes(),
            ),
        ));
    }
    out
}
