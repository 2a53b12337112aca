//! The software bill of materials of an image: the packages installed on it, found offline.
//!
//! [`collect`] reads, from each filesystem of a target, only the package databases and
//! manifests ([`os`]: `/etc/os-release`, the dpkg status and the rpm database; [`lang`]: Python
//! `*.dist-info`, Node `node_modules`, Java JARs, Go and Rust binaries in well-known places),
//! never the whole tree, so an EBS snapshot costs a few MiB of blocks. It works on any
//! [`Filesystem`] (ext4, XFS, ... on a disk image or a snapshot, and a directory or tar
//! target), through the same [`FsReader`] seam the scan uses. [`cyclonedx`] and [`spdx`] write
//! the result as CycloneDX 1.6 or SPDX 2.3 JSON, with [`purl`]s that grype and trivy match.
//!
//! Everything that could not be read is in [`Sbom::errors`]: an SBOM missing a package
//! database must not read as an image without packages.

mod binary;
pub mod cyclonedx;
mod lang;
mod os;
pub mod purl;
pub mod spdx;

use crate::fs::{Filesystem, FsReader};
use crate::scan::lookup::FsLookup;
use crate::source::SharedSource;
use std::collections::BTreeMap;

/// Where a component comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// A Debian package (dpkg status).
    Deb,
    /// An rpm package (rpm database).
    Rpm,
    /// A Python distribution (`*.dist-info`, `*.egg-info`).
    Pypi,
    /// A Node package (`node_modules/*/package.json`).
    Npm,
    /// A Java artifact (`META-INF/maven/*/*/pom.properties` in a JAR).
    Maven,
    /// A Go module (a Go binary's build info).
    Golang,
    /// A Rust crate (a binary's `cargo auditable` section).
    Cargo,
}

impl Ecosystem {
    /// The purl type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Maven => "maven",
            Ecosystem::Golang => "golang",
            Ecosystem::Cargo => "cargo",
        }
    }

    /// An operating-system package (dpkg, rpm), rather than a language package.
    pub fn is_os(self) -> bool {
        matches!(self, Ecosystem::Deb | Ecosystem::Rpm)
    }
}

/// One package found on the image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Component {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// The purl namespace: a Maven group, an npm scope (`@types`), a Go module's path less its
    /// last element; for dpkg and rpm the distribution (`debian`, `amzn`), filled in from the
    /// operating system.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its version (dpkg: with the epoch, `1:9.2p1-2`; rpm: `version-release`).
    pub version: String,
    /// rpm's epoch (dpkg's is in the version).
    pub epoch: Option<u32>,
    /// Architecture (`amd64`, `x86_64`, `noarch`), when recorded.
    pub arch: Option<String>,
    /// The source package (dpkg `Source`, rpm `SOURCERPM`), when recorded.
    pub source: Option<String>,
    /// Licences as recorded (not necessarily SPDX identifiers), sorted.
    pub licenses: Vec<String>,
    /// Where it was found: the database or manifest, prefixed by the volume id when the target
    /// has several.
    pub locations: Vec<String>,
}

/// The operating system, from `/etc/os-release` (or `/usr/lib/os-release`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsInfo {
    /// `ID` (`debian`, `amzn`, `ubuntu`, `rhel`).
    pub id: String,
    /// `VERSION_ID` (`12`, `2023`), empty when absent (a rolling release).
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
    /// `VERSION_CODENAME` (`bookworm`).
    pub codename: String,
    /// `ID_LIKE`.
    pub id_like: String,
}

impl OsInfo {
    /// The purl `distro` qualifier: `debian-12`, `amzn-2023`.
    pub fn distro(&self) -> String {
        if self.version_id.is_empty() {
            if self.codename.is_empty() {
                self.id.clone()
            } else {
                format!("{}-{}", self.id, self.codename)
            }
        } else {
            format!("{}-{}", self.id, self.version_id)
        }
    }
}

/// The bill of materials of one target.
#[derive(Clone, Debug, Default)]
pub struct Sbom {
    /// The target as given (`ami-…`, a path).
    pub target: String,
    /// The operating system of the first volume that has one.
    pub os: Option<OsInfo>,
    /// Every package, sorted and without duplicates (one entry per purl, its locations merged).
    pub components: Vec<Component>,
    /// What could not be read: the SBOM is incomplete when there is any.
    pub errors: Vec<String>,
    /// Volumes looked at and the filesystem on each (`p1: ext4`), and devices of an AMI that
    /// were not (an instance-store mapping).
    pub volumes: Vec<String>,
}

impl Sbom {
    /// The purl of `c` in this SBOM (dpkg and rpm packages take the `distro` from the OS).
    pub fn purl(&self, c: &Component) -> String {
        purl::of(c, self.os.as_ref())
    }

    /// Sort, fill the distribution namespace, and merge components that have the same purl.
    pub fn finish(&mut self) {
        let ns = self.os.as_ref().map(|o| o.id.clone());
        for c in &mut self.components {
            if c.ecosystem.is_os() && c.namespace.is_none() {
                c.namespace = ns
                    .clone()
                    .or_else(|| (c.ecosystem == Ecosystem::Deb).then(|| "debian".to_string()));
            }
            c.locations.sort();
            c.locations.dedup();
            c.licenses.sort();
            c.licenses.dedup();
        }
        let mut merged: BTreeMap<String, Component> = BTreeMap::new();
        for c in std::mem::take(&mut self.components) {
            let key = self.purl(&c);
            match merged.get_mut(&key) {
                Some(m) => {
                    m.locations.extend(c.locations);
                    m.locations.sort();
                    m.locations.dedup();
                    m.licenses.extend(c.licenses);
                    m.licenses.sort();
                    m.licenses.dedup();
                }
                None => {
                    merged.insert(key, c);
                }
            }
        }
        self.components = merged.into_values().collect();
        self.components.sort();
        self.errors.sort();
        self.errors.dedup();
    }
}

/// What to read besides the package databases.
#[derive(Clone, Copy, Debug)]
pub struct SbomOptions {
    /// dpkg licences from `/usr/share/doc/*/copyright` (machine-readable ones): a small file
    /// per package, cheap on a local image, a block fetch each on EBS.
    pub dpkg_licenses: bool,
    /// Language packages in the well-known places.
    pub language_packages: bool,
}

impl Default for SbomOptions {
    fn default() -> Self {
        SbomOptions {
            dpkg_licenses: true,
            language_packages: true,
        }
    }
}

/// Add what filesystem `fs` holds to `sbom`; `label` prefixes the locations (the volume id
/// when a target has several volumes, else empty).
pub fn collect_filesystem(sbom: &mut Sbom, fs: &dyn Filesystem, label: &str, opts: &SbomOptions) {
    let reader: Box<dyn FsReader> = match fs.reader() {
        Ok(r) => r,
        Err(e) => {
            sbom.errors
                .push(format!("{label}cannot read the filesystem: {e}"));
            return;
        }
    };
    let lookup = FsLookup::new(reader.as_ref(), &[]);
    let mut found = Found {
        label,
        components: Vec::new(),
        errors: Vec::new(),
    };
    let os = os::os_release(&lookup, &mut found);
    os::dpkg(&lookup, opts, &mut found);
    os::rpm(&lookup, &mut found);
    if opts.language_packages {
        lang::collect(reader.as_ref(), &lookup, &mut found);
    }
    if sbom.os.is_none() {
        sbom.os = os;
    }
    sbom.components.append(&mut found.components);
    sbom.errors.append(&mut found.errors);
}

/// Components and errors found on one filesystem.
pub(crate) struct Found<'a> {
    /// Location prefix (`p1:` or empty).
    label: &'a str,
    components: Vec<Component>,
    errors: Vec<String>,
}

impl Found<'_> {
    fn error(&mut self, path: &str, why: impl std::fmt::Display) {
        self.errors.push(format!("{}{path}: {why}", self.label));
    }

    fn location(&self, path: &str) -> String {
        format!("{}{path}", self.label)
    }
}

/// The SBOM of one disk image or snapshot set: each volume's filesystem (LVM assembled),
/// read through `disks`.
pub fn collect_disks(target: String, disks: Vec<crate::scan::Disk>, opts: &SbomOptions) -> Sbom {
    let mut sbom = Sbom {
        target,
        ..Sbom::default()
    };
    let mut volumes = Vec::new();
    for disk in disks {
        let prefix = disk
            .label
            .as_deref()
            .map(|l| format!("{l}:"))
            .unwrap_or_default();
        let layout = crate::volume::discover(disk.source);
        sbom.errors
            .extend(layout.errors.iter().map(|e| format!("{prefix}{e}")));
        for mut v in layout.volumes {
            v.id = format!("{prefix}{}", v.id);
            volumes.push(v);
        }
    }
    let lvm = crate::volume::lvm::assemble(&volumes);
    sbom.errors.extend(lvm.errors.iter().map(|e| e.to_string()));
    let several = volumes.len() + lvm.logical.len() > 1;
    let all = volumes
        .iter()
        .enumerate()
        .filter(|(i, _)| !lvm.physical.contains(i))
        .map(|(_, v)| v)
        .chain(lvm.logical.iter());
    for v in all {
        collect_volume(&mut sbom, &v.id, v.source.clone(), several, opts);
    }
    sbom.finish();
    sbom
}

/// One volume: probe it, and read the filesystem on it when amiscan reads that kind.
fn collect_volume(
    sbom: &mut Sbom,
    id: &str,
    source: SharedSource,
    several: bool,
    opts: &SbomOptions,
) {
    use crate::fs::probe::{FsKind, Probe, probe};
    let label = if several {
        format!("{id}:")
    } else {
        String::new()
    };
    let kind = match probe(source.as_ref()) {
        Ok(Probe::Known(k)) => k,
        Ok(_) => {
            sbom.volumes.push(format!("{id}: no filesystem"));
            return;
        }
        Err(e) => {
            sbom.errors
                .push(format!("{id}: cannot read the start of the volume: {e}"));
            return;
        }
    };
    sbom.volumes.push(format!("{id}: {}", kind.name()));
    if matches!(kind, FsKind::Swap | FsKind::Verity) {
        return;
    }
    if !crate::fs::readable(kind) {
        sbom.errors.push(format!(
            "{id}: {}: not read, its packages are not listed",
            kind.describe()
        ));
        return;
    }
    match crate::fs::open(kind, source) {
        Ok(fs) => {
            for p in fs.open_problems() {
                sbom.errors.push(format!("{id}: {}", p.message));
            }
            collect_filesystem(sbom, fs.as_ref(), &label, opts);
        }
        Err(e) => sbom.errors.push(format!("{id}: {e}")),
    }
}

/// Fuzzing entry point: `data` as an ELF program (Go build info, `cargo auditable`), a JAR,
/// Python metadata, a `package.json`, a `pom.properties`, a Debian `copyright` file and an
/// os-release file. Returns how many components were found; never panics, whatever the bytes.
/// Only with the `fuzzing` feature (the fuzz crate turns it on): not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn manifests_for_fuzzing(data: &[u8]) -> usize {
    let len = data.len() as u64;
    let mut n = binary::components(&mut std::io::Cursor::new(data), len).map_or(0, |c| c.len());
    n += binary::go_buildinfo(data).map_or(0, |c| c.len());
    n += binary::cargo_auditable(data).map_or(0, |c| c.len());
    n += lang::fuzz_manifests(data);
    n += os::copyright_licenses(data).len();
    n += usize::from(!os::parse_os_release(data).id.is_empty());
    n
}

/// The SBOM of a local disk image (raw, or a qcow2/VMDK/VHD(X) container).
pub fn collect_image(path: &std::path::Path, opts: &SbomOptions) -> std::io::Result<Sbom> {
    let target = path.display().to_string();
    // A directory or a tar archive of a root: its one filesystem.
    let kind = crate::scan::target::local_kind(path)?;
    match crate::scan::target::open_tree(path, kind, &crate::scan::archive::Limits::default()) {
        Ok(Some((fs, errors))) => {
            let mut sbom = Sbom {
                target,
                errors,
                ..Sbom::default()
            };
            collect_filesystem(&mut sbom, fs.as_ref(), "", opts);
            sbom.finish();
            return Ok(sbom);
        }
        Ok(None) => {}
        Err(e) => {
            return Ok(Sbom {
                target,
                errors: vec![e.to_string()],
                ..Sbom::default()
            });
        }
    }
    let file: SharedSource = std::sync::Arc::new(crate::source::FileSource::open(path)?);
    match crate::source::container::open_source(file, Some(path)) {
        Ok(opened) => Ok(collect_disks(
            target,
            vec![crate::scan::Disk {
                label: None,
                source: opened.source,
            }],
            opts,
        )),
        Err(e) => Ok(Sbom {
            target,
            errors: vec![e.to_string()],
            ..Sbom::default()
        }),
    }
}
