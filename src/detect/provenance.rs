//! Vendor content is not a leak: once a volume's findings are made, each secret finding in a
//! file is compared with what the image's package databases recorded for that file
//! ([`crate::pkgdb::provenance`]: dpkg `md5sums` and conffiles, the rpm database, Python
//! `*.dist-info/RECORD`).
//!
//! - The file's digest matches its package's: **shipped unmodified**. The finding becomes info,
//!   carries [`Provenance`] with [`FileState::Unmodified`] and the evidence says "shipped
//!   unmodified by PACKAGE VERSION"; it is counted apart and never fails a scan.
//! - The digest differs: **modified from PACKAGE**. The finding keeps its severity (and regains
//!   the one a `/usr/share/doc` or test-directory guess took from it): a secret appended to a
//!   packaged file is the prime suspect.
//! - No package lists the file: unchanged, except that a guess from its place (`/usr/share/doc`,
//!   a packaged test directory) is undone when the volume has a dpkg or rpm database — a new
//!   file dropped among vendor files is not a vendor example.
//! - A compiled module (`__pycache__/M.TAG.pyc`) no package verifies inherits the provenance of
//!   its source `M.py` when the source is shipped unmodified, the `.pyc` header records the
//!   source's size and modification time, and the source has a finding with the same secret
//!   (fingerprint): a secret in a `.pyc` that its source does not hold keeps its severity.
//!   Hash-based `.pyc` files (PEP 552) are not tied to their source.
//! - A finding inside an archive or compressed file (`x.gz`, `a.tar!member`) is judged by the
//!   file that holds it: a `.gz` its package lists inherits its provenance.
//!
//! Only secret findings are judged (content signatures and credential files); the checks of
//! system state (host keys, sshd, shadow, packages, ...) keep theirs whoever shipped the file.
//! Digests are computed only for the files that have such a finding: MD5 from the content
//! scan when it kept one ([`FileLookup::md5`], the digests the package-integrity check uses),
//! otherwise the file is read again (at most [`MAX_FILE_BYTES`]; a larger file keeps its
//! findings as they are). Limits: package records are read at most [`MAX_RECORD_FILES`]
//! `RECORD` files and the dpkg and rpm databases within the bounds of the package checks.

use super::checks::packages::{self, MAX_INFO_BYTES, usrmerge_alias};
use super::lookup::{FileLookup, MetaKind};
use super::verify::testkeys::{DOC_NOTE, TEST_NOTE};
use crate::model::{FileState, Finding, Provenance, Severity};
use crate::pkgdb::dpkg;
use crate::pkgdb::provenance::{Index, Listing, Verdict};
use crate::pkgdb::python::{self, PycSource};
use crate::pkgdb::rpm::{self as rpmdb, DigestAlgo};
use std::collections::{HashMap, HashSet};

/// Largest file hashed to judge its findings.
pub(crate) const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Most `*.dist-info/RECORD` files read.
pub(crate) const MAX_RECORD_FILES: usize = 10_000;
/// Most files judged on one volume (the rest keep their findings as they are).
pub(crate) const MAX_JUDGED_FILES: usize = 20_000;

const DPKG_INFO: &str = "/var/lib/dpkg/info";
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// What the rules say, as the provenance step needs it.
pub(crate) struct RuleFacts<'a> {
    /// Whether findings of the rule are secrets (judged by provenance).
    pub judged: &'a dyn Fn(&str) -> bool,
    /// The rule's default severity.
    pub severity: &'a dyn Fn(&str) -> Option<Severity>,
}

/// The file a finding's path names: the path itself, or for a member of an archive
/// (`a.tar!member`) the file holding it.
fn holder(lookup: &dyn FileLookup, path: &str) -> String {
    match path.split_once('!') {
        Some((file, _)) if matches!(lookup.metadata(path), Ok(None)) => file.to_string(),
        _ => path.to_string(),
    }
}

/// The provenance index of the volume for `wanted`, and whether it has a dpkg or rpm database.
fn index(lookup: &dyn FileLookup, wanted: HashSet<String>) -> (Index, bool) {
    let mut ix = Index::new(wanted);
    let mut system_db = false;
    // dpkg: versions and conffiles from `status`, files from each `md5sums`.
    // A database that cannot be read lowers nothing (provenance only ever lowers), but it is
    // still a database: the place-based guesses are undone as for a readable one.
    let status = lookup.read(DPKG_STATUS, MAX_INFO_BYTES);
    let infos = lookup.list(DPKG_INFO);
    let dpkg_unreadable = status.is_err() || infos.is_err();
    let status = status
        .ok()
        .flatten()
        .map(|d| dpkg::status(&d))
        .unwrap_or_default();
    let infos = infos.unwrap_or_default();
    if dpkg_unreadable {
        system_db = true;
    }
    if !status.is_empty() || !infos.is_empty() {
        system_db = true;
        ix.add_dpkg_conffiles(&status);
        let mut versions: HashMap<String, String> = HashMap::new();
        for p in status.iter().filter(|p| p.installed) {
            versions.insert(format!("{}:{}", p.name, p.arch), p.version.clone());
            versions.insert(p.name.clone(), p.version.clone());
        }
        // Unreadable diversions: a file may belong to another package than its list says, so
        // dpkg's digests are not used at all.
        let diverted = match lookup.read("/var/lib/dpkg/diversions", MAX_INFO_BYTES) {
            Ok(d) => Some(d.map(|d| dpkg::diversions(&d)).unwrap_or_default()),
            Err(_) => None,
        };
        let mut sums: Vec<(String, String)> = infos
            .into_iter()
            .filter_map(|n| {
                let pkg = n.strip_suffix(".md5sums")?.to_string();
                Some((pkg, format!("{DPKG_INFO}/{n}")))
            })
            .collect();
        sums.sort();
        lookup.prefetch(&sums.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>());
        if let Some(diverted) = &diverted {
            for (pkg, path) in sums {
                if let Ok(Some(data)) = lookup.read(&path, MAX_INFO_BYTES) {
                    let version = versions.get(&pkg).map(String::as_str);
                    ix.add_dpkg_md5sums(&pkg, version, &data, diverted);
                }
            }
        }
    }
    // rpm: the package checks report a database that cannot be read; here it only lists.
    let rpm = packages::rpm::find(lookup);
    if rpm.is_err() {
        system_db = true;
    }
    if let Ok(Some((path, backend))) = rpm {
        system_db = true;
        if let Ok((data, wal)) = packages::rpm::read_db(lookup, path, backend) {
            let _ =
                rpmdb::for_each_package(&data, wal.as_deref(), backend, &mut |p| ix.add_rpm(&p));
        }
    }
    // Python: the RECORD of each distribution whose directory holds a wanted file.
    let sites: HashSet<String> = ix
        .wanted()
        .flat_map(|p| {
            let mut dirs = Vec::new();
            let mut rest = p;
            while let Some((d, _)) = rest.rsplit_once('/') {
                if d.is_empty() {
                    break;
                }
                dirs.push(d.to_string());
                rest = d;
            }
            dirs
        })
        .collect();
    let mut records = Vec::new();
    lookup.for_each_file(&mut |path, _| {
        if records.len() >= MAX_RECORD_FILES {
            return;
        }
        let Some(dist_dir) = path.strip_suffix("/RECORD") else {
            return;
        };
        let Some((site, name)) = dist_dir.rsplit_once('/') else {
            return;
        };
        if let Some((dist, version)) = python::dist_info_name(name)
            && sites.contains(site)
        {
            records.push((
                path.to_string(),
                site.to_string(),
                dist.to_string(),
                version.to_string(),
            ));
        }
    });
    for (path, site, dist, version) in records {
        if let Ok(Some(data)) = lookup.read(&path, MAX_INFO_BYTES) {
            ix.add_record(&site, &dist, &version, &data);
        }
    }
    (ix, system_db)
}

/// How the file at `path` compares with its packages (trying its usrmerge alias), with
/// `digests` caching what was computed.
fn judge<'a>(lookup: &dyn FileLookup, ix: &'a Index, path: &str) -> Option<Verdict<'a>> {
    let mut data: Option<Option<Vec<u8>>> = None;
    let mut digest_of = |algo: DigestAlgo| -> Option<Vec<u8>> {
        if algo == DigestAlgo::Md5
            && let Some(d) = lookup.md5(path)
        {
            return Some(d.to_vec());
        }
        let bytes = data.get_or_insert_with(|| {
            let meta = lookup.metadata(path).ok().flatten()?;
            if meta.kind != MetaKind::File || meta.size > MAX_FILE_BYTES as u64 {
                return None;
            }
            lookup.read(path, MAX_FILE_BYTES).ok().flatten()
        });
        algo.digest(bytes.as_deref()?)
    };
    std::iter::once(path.to_string())
        .chain(usrmerge_alias(path))
        .find_map(|p| ix.judge(&p, &mut digest_of))
}

fn provenance(l: &Listing, state: FileState, derived_from: Option<String>) -> Provenance {
    Provenance {
        source: l.source.name().to_string(),
        package: l.package.clone(),
        version: l.version.clone(),
        state,
        derived_from,
    }
}

/// Whether the `.pyc` at `pyc` was compiled from the file at `src` as it is now: the header's
/// recorded size and modification time are the source's.
fn compiled_from(lookup: &dyn FileLookup, pyc: &str, src: &str) -> bool {
    let Some(header) = lookup
        .read(pyc, 16)
        .ok()
        .flatten()
        .and_then(|h| python::pyc_header(&h))
    else {
        return false;
    };
    let (Some(meta), Some(mtime)) = (lookup.metadata(src).ok().flatten(), lookup.mtime(src)) else {
        return false;
    };
    match header {
        PycSource::Stamp { mtime: m, size } => {
            // Both are kept modulo 2^32 in the header.
            u64::from(size) == meta.size & 0xffff_ffff && i64::from(m) == mtime & 0xffff_ffff
        }
        PycSource::Hash => false,
    }
}

/// Undo a severity guessed from the file's place, when the place no longer vouches for it.
fn undo_place_guess(f: &mut Finding, facts: &RuleFacts<'_>, why: &str) -> bool {
    for note in [DOC_NOTE, TEST_NOTE] {
        if let Some(stripped) = f.evidence.strip_suffix(note) {
            f.evidence = format!("{stripped}{why}");
            if let Some(s) = (facts.severity)(&f.rule) {
                f.severity = f.severity.max(s);
            }
            return true;
        }
    }
    false
}

/// The files among `holders` whose digests the content scan did not keep, once each, in path
/// order: the ones [`judge`] reads.
fn to_read(lookup: &dyn FileLookup, holders: &HashMap<usize, String>) -> Vec<String> {
    let mut files: Vec<String> = holders
        .values()
        .filter(|p| lookup.md5(p).is_none())
        .cloned()
        .collect();
    files.sort_unstable();
    files.dedup();
    files
}

/// Judge the secret findings of one volume against its package databases (see the module).
pub(crate) fn apply(lookup: &dyn FileLookup, findings: &mut [Finding], facts: &RuleFacts<'_>) {
    // The files to judge, and for compiled modules their sources.
    let mut holders: HashMap<usize, String> = HashMap::new();
    let mut wanted: HashSet<String> = HashSet::new();
    for (i, f) in findings.iter().enumerate() {
        let Some(path) = f.path.as_deref() else {
            continue;
        };
        if !(facts.judged)(&f.rule) || f.provenance.is_some() {
            continue;
        }
        let file = holder(lookup, path);
        if !wanted.contains(&file) && wanted.len() >= MAX_JUDGED_FILES {
            continue;
        }
        let src = python::pyc_source_path(&file);
        for p in std::iter::once(file.clone()).chain(src) {
            wanted.extend(usrmerge_alias(&p));
            wanted.insert(p);
        }
        holders.insert(i, file);
    }
    if holders.is_empty() {
        return;
    }
    // The files judged by their bytes are read after the package databases: hint them first,
    // so that a volume read over the network fetches them while the databases are read and
    // parsed, not one round trip after another at the end of the scan (their blocks are long
    // out of the cache by then). A file the content scan kept the digest of is not read.
    lookup.prefetch(&to_read(lookup, &holders));
    let (ix, system_db) = index(lookup, wanted);
    let mut verdicts: HashMap<String, Option<Verdict<'_>>> = HashMap::new();
    let mut verdict = |path: &str| -> Option<Verdict<'_>> {
        verdicts
            .entry(path.to_string())
            .or_insert_with(|| judge(lookup, &ix, path))
            .clone()
    };
    // Fingerprints of the findings of each file, for compiled twins.
    let mut prints: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (i, file) in &holders {
        prints
            .entry(file.as_str())
            .or_default()
            .insert(findings[*i].fingerprint.as_str());
    }
    let mut changes: Vec<(usize, Option<Provenance>, Severity, String)> = Vec::new();
    for (&i, file) in &holders {
        let f = &findings[i];
        let mut out = f.clone();
        let listed = std::iter::once(file.clone())
            .chain(usrmerge_alias(file))
            .any(|p| !ix.listings(&p).is_empty());
        match verdict(file) {
            Some(Verdict::Unmodified(l)) => {
                out.provenance = Some(provenance(l, FileState::Unmodified, None));
                out.severity = Severity::Info;
                out.evidence
                    .push_str(&format!(" (shipped unmodified by {})", l.label()));
            }
            Some(Verdict::Modified(l)) => {
                let why = format!(
                    " (modified from {}: differs from the digest {} recorded)",
                    l.label(),
                    l.source.name()
                );
                if !undo_place_guess(&mut out, facts, &why) {
                    out.evidence.push_str(&why);
                }
                out.provenance = Some(provenance(l, FileState::Modified, None));
            }
            None => {
                let twin = python::pyc_source_path(file).and_then(|src| {
                    let Some(Verdict::Unmodified(l)) = verdict(&src) else {
                        return None;
                    };
                    let same_secret = prints
                        .get(src.as_str())
                        .is_some_and(|s| s.contains(f.fingerprint.as_str()));
                    (same_secret && compiled_from(lookup, file, &src)).then_some((l, src))
                });
                if let Some((l, src)) = twin {
                    out.severity = Severity::Info;
                    out.evidence.push_str(&format!(
                        " (compiled from {src}, shipped unmodified by {})",
                        l.label()
                    ));
                    out.provenance = Some(provenance(l, FileState::Unmodified, Some(src)));
                } else if system_db && !listed {
                    undo_place_guess(&mut out, facts, " (no package ships this file)");
                }
            }
        }
        if out != *f {
            changes.push((i, out.provenance, out.severity, out.evidence));
        }
    }
    for (i, p, s, e) in changes {
        let f = &mut findings[i];
        f.provenance = p;
        f.severity = s;
        f.evidence = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lookup::MemLookup;
    use base64::Engine;
    use md5::{Digest, Md5};

    fn finding(path: &str, fingerprint: &str, severity: Severity, evidence: &str) -> Finding {
        Finding {
            rule: "pem-private-key".into(),
            severity,
            title: String::new(),
            volume: String::new(),
            path: Some(path.into()),
            path_bytes: None,
            line: None,
            offset: Some(0),
            evidence: evidence.into(),
            fingerprint: fingerprint.into(),
            remediation: String::new(),
            secret: None,
            provenance: None,
        }
    }

    fn run(l: &MemLookup, findings: &mut [Finding]) {
        let judged = |r: &str| r != "ssh-host-private-key";
        let severity = |_: &str| Some(Severity::Critical);
        apply(
            l,
            findings,
            &RuleFacts {
                judged: &judged,
                severity: &severity,
            },
        );
    }

    /// A `.pyc` header (3.11) recording a source of `size` bytes modified at `mtime`.
    fn pyc(mtime: u32, size: u32) -> Vec<u8> {
        let mut h = vec![0xa7, 0x0d, b'\r', b'\n'];
        h.extend(0u32.to_le_bytes());
        h.extend(mtime.to_le_bytes());
        h.extend(size.to_le_bytes());
        h.extend(b"\xe3rest of the code object KEY");
        h
    }

    #[test]
    fn vendor_modified_new_and_compiled_files() {
        let doc = "-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n";
        let src = "KEY = '''-----BEGIN PRIVATE KEY-----'''\n";
        let changed = "stock text\nplanted\n";
        let sums = format!(
            "{}  usr/share/doc/x/key.pem\n{}  usr/share/doc/x/notes\n{}  usr/lib/python3/dist-packages/x/k.py\n",
            hex::encode(Md5::digest(doc)),
            hex::encode(Md5::digest("stock text\n")),
            hex::encode(Md5::digest(src)),
        );
        let l = MemLookup::new()
            .file(
                "/var/lib/dpkg/status",
                "Package: x\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\n",
            )
            .file("/var/lib/dpkg/info/x.md5sums", sums)
            .file("/usr/share/doc/x/key.pem", doc)
            .file("/usr/share/doc/x/notes", changed)
            .file("/usr/share/doc/x/dropped", "new")
            .file("/usr/lib/python3/dist-packages/x/k.py", src)
            .with_mtime("/usr/lib/python3/dist-packages/x/k.py", 1_700_000_000)
            .file(
                "/usr/lib/python3/dist-packages/x/__pycache__/k.cpython-311.pyc",
                pyc(1_700_000_000, src.len() as u32),
            )
            .file(
                "/usr/lib/python3/dist-packages/x/__pycache__/other.cpython-311.pyc",
                pyc(1_700_000_000, src.len() as u32),
            );
        let pyc_path = "/usr/lib/python3/dist-packages/x/__pycache__/k.cpython-311.pyc";
        let mut f = vec![
            finding("/usr/share/doc/x/key.pem", "a", Severity::Critical, "k"),
            finding(
                "/usr/share/doc/x/notes",
                "b",
                Severity::Info,
                &format!("k{DOC_NOTE}"),
            ),
            finding(
                "/usr/share/doc/x/dropped",
                "c",
                Severity::Info,
                &format!("k{DOC_NOTE}"),
            ),
            finding(
                "/usr/lib/python3/dist-packages/x/k.py",
                "d",
                Severity::High,
                "k",
            ),
            finding(pyc_path, "d", Severity::High, "k"),
            // Same header, but a secret its source does not hold.
            finding(pyc_path, "e", Severity::High, "k"),
        ];
        let mut host = finding("/usr/share/doc/x/key.pem", "a", Severity::High, "k");
        host.rule = "ssh-host-private-key".into();
        f.push(host);
        run(&l, &mut f);
        let p = f[0].provenance.as_ref().unwrap();
        assert_eq!((p.source.as_str(), p.package.as_str()), ("dpkg", "x"));
        assert_eq!(p.version.as_deref(), Some("1.0-1"));
        assert!(f[0].is_vendor() && f[0].severity == Severity::Info);
        assert!(f[0].evidence.ends_with("(shipped unmodified by x 1.0-1)"));
        // Modified: full severity again, and said.
        assert_eq!(f[1].severity, Severity::Critical);
        assert_eq!(f[1].provenance.as_ref().unwrap().state, FileState::Modified);
        assert!(
            f[1].evidence.contains("modified from x 1.0-1"),
            "{}",
            f[1].evidence
        );
        // A new file among the package's documentation.
        assert_eq!(f[2].severity, Severity::Critical);
        assert!(f[2].provenance.is_none());
        assert!(f[2].evidence.ends_with("(no package ships this file)"));
        // The compiled twin inherits; a secret only the .pyc holds does not.
        assert!(f[3].is_vendor());
        assert!(f[4].is_vendor(), "{:?}", f[4]);
        assert_eq!(
            f[4].provenance.as_ref().unwrap().derived_from.as_deref(),
            Some("/usr/lib/python3/dist-packages/x/k.py")
        );
        assert_eq!(f[5].severity, Severity::High);
        assert!(f[5].provenance.is_none());
        // A check of system state is not judged.
        assert!(f[6].provenance.is_none() && f[6].severity == Severity::High);
    }

    #[test]
    fn a_pyc_whose_header_names_another_source_keeps_its_severity() {
        let src = "KEY = 'x'\n";
        let sums = format!(
            "{}  usr/lib/python3/dist-packages/x/k.py\n",
            hex::encode(Md5::digest(src))
        );
        let pyc_path = "/usr/lib/python3/dist-packages/x/__pycache__/k.cpython-311.pyc";
        let l = MemLookup::new()
            .file("/var/lib/dpkg/info/x.md5sums", sums)
            .file("/usr/lib/python3/dist-packages/x/k.py", src)
            .with_mtime("/usr/lib/python3/dist-packages/x/k.py", 1_700_000_000)
            .file(pyc_path, pyc(1_700_000_001, src.len() as u32));
        let mut f = vec![
            finding(
                "/usr/lib/python3/dist-packages/x/k.py",
                "d",
                Severity::High,
                "k",
            ),
            finding(pyc_path, "d", Severity::High, "k"),
        ];
        run(&l, &mut f);
        assert!(f[0].is_vendor());
        assert!(!f[1].is_vendor() && f[1].severity == Severity::High);
    }

    #[test]
    fn python_records_and_archives_inside_listed_files() {
        let body = "token = 'abc'\n";
        let b64 =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(body));
        let site = "/opt/venv/lib/python3.11/site-packages";
        let l = MemLookup::new()
            .file(
                &format!("{site}/lib-2.0.dist-info/RECORD"),
                format!("lib/a.py,sha256={b64},14\nlib/b.py,sha256={b64},14\nlib/c.tar,sha256={b64},14\n"),
            )
            .file(&format!("{site}/lib/a.py"), body)
            .file(&format!("{site}/lib/b.py"), "token = 'abc'\nplanted = 1\n")
            .file(&format!("{site}/lib/c.tar"), body);
        let mut f = vec![
            finding(&format!("{site}/lib/a.py"), "a", Severity::Low, "k"),
            finding(&format!("{site}/lib/b.py"), "b", Severity::Low, "k"),
            finding(
                &format!("{site}/lib/c.tar!inner/key"),
                "c",
                Severity::High,
                "k",
            ),
        ];
        run(&l, &mut f);
        assert!(f[0].is_vendor());
        let p = f[0].provenance.as_ref().unwrap();
        assert_eq!(
            (p.source.as_str(), p.package.as_str(), p.version.as_deref()),
            ("python", "lib", Some("2.0"))
        );
        assert_eq!(f[1].severity, Severity::Low);
        assert_eq!(f[1].provenance.as_ref().unwrap().state, FileState::Modified);
        assert!(
            f[2].is_vendor(),
            "a member inherits its archive's provenance"
        );
    }

    /// [`MemLookup`] that logs the hints and the reads, and knows the digest of one file (as
    /// the content scan keeps them).
    struct Logged {
        inner: MemLookup,
        digested: (&'static str, [u8; 16]),
        log: std::cell::RefCell<Vec<String>>,
    }

    impl FileLookup for Logged {
        fn read(&self, path: &str, max: usize) -> crate::detect::Looked<Option<Vec<u8>>> {
            self.log.borrow_mut().push(format!("read {path}"));
            self.inner.read(path, max)
        }
        fn list(&self, dir: &str) -> crate::detect::Looked<Vec<String>> {
            self.inner.list(dir)
        }
        fn metadata(&self, path: &str) -> crate::detect::Looked<Option<crate::detect::Meta>> {
            self.inner.metadata(path)
        }
        fn for_each_file(&self, visit: &mut dyn FnMut(&str, &crate::detect::Meta)) {
            self.inner.for_each_file(visit)
        }
        fn md5(&self, path: &str) -> Option<[u8; 16]> {
            (path == self.digested.0).then_some(self.digested.1)
        }
        fn prefetch(&self, paths: &[String]) {
            self.log
                .borrow_mut()
                .push(format!("prefetch {}", paths.join(" ")));
        }
    }

    /// The files to hash are hinted before the package database is read, once each and without
    /// the one whose digest the content scan kept; the verdicts are the same as without hints.
    #[test]
    fn files_to_hash_are_hinted_before_the_databases_are_read() {
        let key = "-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n";
        let sums = format!(
            "{}  usr/share/doc/x/a.pem\n{}  usr/share/doc/x/b.pem\n{}  usr/share/doc/x/c.pem\n",
            hex::encode(Md5::digest(key)),
            hex::encode(Md5::digest(key)),
            hex::encode(Md5::digest(key)),
        );
        let l = Logged {
            inner: MemLookup::new()
                .file(
                    "/var/lib/dpkg/status",
                    "Package: x\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n",
                )
                .file("/var/lib/dpkg/info/x.md5sums", sums)
                .file("/usr/share/doc/x/a.pem", key)
                .file("/usr/share/doc/x/b.pem", key)
                // Its bytes differ from the package's, but the scan's digest is the package's.
                .file("/usr/share/doc/x/c.pem", "changed since"),
            digested: ("/usr/share/doc/x/c.pem", Md5::digest(key).into()),
            log: Default::default(),
        };
        let mut f = vec![
            finding("/usr/share/doc/x/b.pem", "1", Severity::Critical, "k"),
            finding("/usr/share/doc/x/a.pem", "2", Severity::Critical, "k"),
            finding("/usr/share/doc/x/b.pem", "3", Severity::Critical, "k"),
            finding("/usr/share/doc/x/c.pem", "4", Severity::Critical, "k"),
        ];
        let judged = |_: &str| true;
        let severity = |_: &str| Some(Severity::Critical);
        apply(
            &l,
            &mut f,
            &RuleFacts {
                judged: &judged,
                severity: &severity,
            },
        );
        let log = l.log.borrow();
        assert_eq!(
            log.first().map(String::as_str),
            Some("prefetch /usr/share/doc/x/a.pem /usr/share/doc/x/b.pem"),
            "{log:?}"
        );
        let status = log.iter().position(|e| e == "read /var/lib/dpkg/status");
        assert!(status.is_some(), "{log:?}");
        assert!(
            !log.contains(&"read /usr/share/doc/x/c.pem".to_string()),
            "{log:?}"
        );
        assert!(
            f.iter().all(|f| f.severity == Severity::Info),
            "all shipped unmodified: {f:?}"
        );
    }
}
