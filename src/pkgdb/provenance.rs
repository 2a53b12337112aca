//! The provenance index of one root: for each file a caller asks about, which packages list it
//! and with which digest, from what the image itself records — dpkg (`*.md5sums`, and the
//! conffiles of `status`), rpm (each package's file digests) and Python (`*.dist-info/RECORD`).
//! Built only for the paths the caller wants ([`Index::new`]), so its size is bounded by theirs,
//! not by the number of packaged files; judging a file ([`Index::judge`]) asks the caller for the
//! file's digests, computed only then.
//! Limits: a path is matched as written in the records (the caller adds usrmerge aliases it
//! wants matched); at most [`MAX_LISTINGS`] listings are kept per path.

use super::dpkg::{self, StatusPackage};
use super::python;
use super::rpm::{DigestAlgo, Package};
use std::collections::{HashMap, HashSet};

/// Most listings kept for one path (multilib rpm packages, a file two distributions list).
pub(crate) const MAX_LISTINGS: usize = 16;

/// The database a listing comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// dpkg: `md5sums` or a conffile of `status`.
    Dpkg,
    /// The rpm database.
    Rpm,
    /// A Python `*.dist-info/RECORD`.
    Python,
}

impl Source {
    /// For reports: `dpkg`, `rpm`, `python`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::Dpkg => "dpkg",
            Source::Rpm => "rpm",
            Source::Python => "python",
        }
    }
}

/// One package's word about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    /// Where it comes from.
    pub source: Source,
    /// The package (dpkg without its `:arch`; rpm's name; the Python distribution).
    pub package: String,
    /// Its version (rpm: `version-release`), when known.
    pub version: Option<String>,
    /// The digest algorithm.
    pub algo: DigestAlgo,
    /// The digest recorded; empty when the record has none (listed, not verifiable).
    pub digest: Vec<u8>,
}

impl Listing {
    /// `PACKAGE VERSION` (or `PACKAGE`), for evidence.
    pub(crate) fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.package),
            None => self.package.clone(),
        }
    }

    fn verifiable(&self) -> bool {
        !self.digest.is_empty() && !matches!(self.algo, DigestAlgo::Unknown(_))
    }
}

/// How a file compares with the packages that list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict<'a> {
    /// Its digest matches this listing's.
    Unmodified(&'a Listing),
    /// Its digest matches none of the listings that record one; the first of them.
    Modified(&'a Listing),
}

/// Which packages list the wanted paths, and with which digests.
#[derive(Debug, Default)]
pub(crate) struct Index {
    wanted: HashSet<String>,
    by_path: HashMap<String, Vec<Listing>>,
}

impl Index {
    /// An empty index that will keep the listings of `wanted` only.
    pub(crate) fn new(wanted: HashSet<String>) -> Index {
        Index {
            wanted,
            by_path: HashMap::new(),
        }
    }

    /// The wanted paths.
    pub(crate) fn wanted(&self) -> impl Iterator<Item = &str> {
        self.wanted.iter().map(String::as_str)
    }

    fn add(&mut self, path: &str, listing: Listing) {
        if !self.wanted.contains(path) {
            return;
        }
        let v = self.by_path.entry(path.to_string()).or_default();
        if v.len() < MAX_LISTINGS && !v.contains(&listing) {
            v.push(listing);
        }
    }

    /// The lines of the `md5sums` of dpkg package `pkg` (as the file is named, maybe with
    /// `:arch`), at `version`; paths in `diverted` are left out (another file is there).
    pub(crate) fn add_dpkg_md5sums(
        &mut self,
        pkg: &str,
        version: Option<&str>,
        data: &[u8],
        diverted: &HashSet<String>,
    ) {
        let name = pkg.split(':').next().unwrap_or(pkg);
        for line in dpkg::md5sums(data) {
            if !self.wanted.contains(&line.path) || diverted.contains(&line.path) {
                continue;
            }
            let digest = line.md5().unwrap_or_default();
            self.add(
                &line.path.clone(),
                Listing {
                    source: Source::Dpkg,
                    package: name.to_string(),
                    version: version.map(str::to_string),
                    algo: DigestAlgo::Md5,
                    digest,
                },
            );
        }
    }

    /// The conffiles of the installed packages of dpkg's `status`.
    pub(crate) fn add_dpkg_conffiles(&mut self, packages: &[StatusPackage]) {
        for p in packages.iter().filter(|p| p.installed) {
            for (path, hex) in &p.conffiles {
                // dpkg writes `newconffile` for a conffile not yet configured: no digest.
                let digest = hex::decode(hex).unwrap_or_default();
                self.add(
                    path,
                    Listing {
                        source: Source::Dpkg,
                        package: p.name.clone(),
                        version: Some(p.version.clone()),
                        algo: DigestAlgo::Md5,
                        digest,
                    },
                );
            }
        }
    }

    /// The files of an rpm package (configuration files included: an unmodified one is as
    /// shipped; ghosts and files not installed left out).
    pub(crate) fn add_rpm(&mut self, p: &Package) {
        for f in &p.files {
            let regular = f.mode & 0o170000 == 0o100000;
            if !regular || f.state != 0 || !self.wanted.contains(&f.path) {
                continue;
            }
            let ghost = f.flags & super::rpm::header::FILE_GHOST != 0;
            let digest = if ghost || !f.verify_digest {
                Vec::new()
            } else {
                f.digest.clone()
            };
            self.add(
                &f.path,
                Listing {
                    source: Source::Rpm,
                    package: p.name.clone(),
                    version: Some(format!("{}-{}", p.version, p.release)),
                    algo: p.algo,
                    digest,
                },
            );
        }
    }

    /// The `RECORD` of distribution `dist` `version`, whose paths are relative to `site`.
    pub(crate) fn add_record(&mut self, site: &str, dist: &str, version: &str, data: &[u8]) {
        for line in python::record(site, data) {
            self.add(
                &line.path,
                Listing {
                    source: Source::Python,
                    package: dist.to_string(),
                    version: Some(version.to_string()),
                    algo: DigestAlgo::Sha256,
                    digest: line.sha256.map(|d| d.to_vec()).unwrap_or_default(),
                },
            );
        }
    }

    /// The listings of `path`.
    pub(crate) fn listings(&self, path: &str) -> &[Listing] {
        self.by_path
            .get(path)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// How the file at `path` compares with its listings; `digest_of` gives the file's digest in
    /// an algorithm (asked at most once per algorithm). `None` when no listing of it records a
    /// digest, or the file's digests cannot be computed.
    pub(crate) fn judge(
        &self,
        path: &str,
        digest_of: &mut dyn FnMut(DigestAlgo) -> Option<Vec<u8>>,
    ) -> Option<Verdict<'_>> {
        let mut cache: Vec<(DigestAlgo, Option<Vec<u8>>)> = Vec::new();
        let mut first_mismatch = None;
        for l in self.listings(path).iter().filter(|l| l.verifiable()) {
            let actual = match cache.iter().find(|(a, _)| *a == l.algo) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = digest_of(l.algo);
                    cache.push((l.algo, d.clone()));
                    d
                }
            };
            let Some(actual) = actual else {
                continue;
            };
            if actual == l.digest {
                return Some(Verdict::Unmodified(l));
            }
            first_mismatch.get_or_insert(l);
        }
        first_mismatch.map(Verdict::Modified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn wanted(paths: &[&str]) -> HashSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn dpkg_listings_judge_by_md5_and_skip_diversions() {
        let body = b"stock\n";
        let sums = format!(
            "{}  usr/share/doc/x/README\n{}  usr/bin/diverted\n{}  usr/bin/other\n",
            hex::encode(Md5::digest(body)),
            hex::encode(Md5::digest(body)),
            hex::encode(Md5::digest(body)),
        );
        let mut ix = Index::new(wanted(&["/usr/share/doc/x/README", "/usr/bin/diverted"]));
        ix.add_dpkg_md5sums(
            "x:amd64",
            Some("1.0-1"),
            sums.as_bytes(),
            &wanted(&["/usr/bin/diverted"]),
        );
        assert!(ix.listings("/usr/bin/diverted").is_empty());
        assert!(ix.listings("/usr/bin/other").is_empty(), "not wanted");
        let same = |_: DigestAlgo| Some(Md5::digest(body).to_vec());
        let Some(Verdict::Unmodified(l)) = ix.judge("/usr/share/doc/x/README", &mut { same })
        else {
            panic!()
        };
        assert_eq!(l.label(), "x 1.0-1");
        let changed = |_: DigestAlgo| Some(Md5::digest(b"stock\nplant\n").to_vec());
        assert!(matches!(
            ix.judge("/usr/share/doc/x/README", &mut { changed }),
            Some(Verdict::Modified(_))
        ));
        assert_eq!(ix.judge("/nowhere", &mut |_| None), None);
    }

    #[test]
    fn conffiles_of_installed_packages_only() {
        let status = dpkg::status(
            b"Package: a\nStatus: install ok installed\nVersion: 1\nConffiles:\n /etc/a.conf 00112233445566778899aabbccddeeff\n\n\
Package: b\nStatus: deinstall ok config-files\nVersion: 2\nConffiles:\n /etc/b.conf 00112233445566778899aabbccddeeff\n",
        );
        let mut ix = Index::new(wanted(&["/etc/a.conf", "/etc/b.conf"]));
        ix.add_dpkg_conffiles(&status);
        assert_eq!(ix.listings("/etc/a.conf").len(), 1);
        assert!(ix.listings("/etc/b.conf").is_empty());
    }

    #[test]
    fn a_record_without_digest_is_listed_but_not_judged() {
        let mut ix = Index::new(wanted(&["/s/p/__pycache__/m.cpython-311.pyc"]));
        ix.add_record("/s", "p", "1.0", b"p/__pycache__/m.cpython-311.pyc,,\n");
        assert_eq!(ix.listings("/s/p/__pycache__/m.cpython-311.pyc").len(), 1);
        assert_eq!(
            ix.judge("/s/p/__pycache__/m.cpython-311.pyc", &mut |_| Some(vec![])),
            None
        );
    }
}
