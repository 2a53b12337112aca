//! The operating system and its packages: `/etc/os-release`, the dpkg status (with licences
//! from machine-readable `/usr/share/doc/PKG/copyright` files) and the rpm database, read
//! through the same parsers the package checks use (`crate::pkgdb`).

use super::{Component, Ecosystem, Found, OsInfo, SbomOptions};
use crate::detect::FileLookup;
use crate::pkgdb::{dpkg, rpm};

/// Largest `os-release` read.
const MAX_OS_RELEASE: usize = 64 * 1024;
/// Largest dpkg `status` read (a large server's is a few MiB).
const MAX_STATUS: usize = 64 * 1024 * 1024;
/// How much of a `copyright` file is read for its `License:` fields: the header and the
/// first paragraphs are where they are, a long licence text follows.
const MAX_COPYRIGHT: usize = 64 * 1024;

/// `/etc/os-release`, else `/usr/lib/os-release`.
pub(super) fn os_release(lookup: &dyn FileLookup, found: &mut Found) -> Option<OsInfo> {
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        match lookup.read(path, MAX_OS_RELEASE) {
            Ok(Some(data)) => return Some(parse_os_release(&data)),
            Ok(None) => {}
            Err(e) => {
                found.error(path, e.reason);
                return None;
            }
        }
    }
    None
}

/// The fields of an os-release file (`KEY=value`, values optionally quoted).
pub(super) fn parse_os_release(data: &[u8]) -> OsInfo {
    let mut os = OsInfo::default();
    for line in String::from_utf8_lossy(data).lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v)
            .replace("\\\"", "\"");
        match k.trim() {
            "ID" => os.id = v,
            "VERSION_ID" => os.version_id = v,
            "PRETTY_NAME" => os.pretty_name = v,
            "VERSION_CODENAME" => os.codename = v,
            "ID_LIKE" => os.id_like = v,
            _ => {}
        }
    }
    os
}

/// The packages of `/var/lib/dpkg/status` whose files are on disk (every state but
/// `not-installed` and `config-files`: what `dpkg-query -W` lists on an image).
pub(super) fn dpkg(lookup: &dyn FileLookup, opts: &SbomOptions, found: &mut Found) {
    const STATUS: &str = "/var/lib/dpkg/status";
    let data = match lookup.read(STATUS, MAX_STATUS + 1) {
        Ok(Some(d)) if d.len() > MAX_STATUS => {
            found.error(STATUS, "larger than amiscan's limit, not read");
            return;
        }
        Ok(Some(d)) => d,
        Ok(None) => return,
        Err(e) => {
            found.error(STATUS, e.reason);
            return;
        }
    };
    let packages: Vec<_> = dpkg::status(&data)
        .into_iter()
        .filter(|p| !matches!(p.state.as_str(), "not-installed" | "config-files"))
        .collect();
    if opts.dpkg_licenses {
        let paths: Vec<String> = packages.iter().map(|p| copyright_path(&p.name)).collect();
        lookup.prefetch(&paths);
    }
    let location = found.location(STATUS);
    for p in packages {
        let licenses = if opts.dpkg_licenses {
            let path = copyright_path(&p.name);
            match lookup.read(&path, MAX_COPYRIGHT) {
                Ok(Some(d)) => copyright_licenses(&d),
                Ok(None) => vec![],
                Err(e) => {
                    found.error(&path, e.reason);
                    vec![]
                }
            }
        } else {
            vec![]
        };
        let source = p
            .source
            .split_whitespace()
            .next()
            .filter(|s| !s.is_empty())
            .map(|name| {
                match p
                    .source
                    .split_once('(')
                    .and_then(|(_, v)| v.split_once(')'))
                {
                    Some((v, _)) if !v.trim().is_empty() => format!("{name}@{}", v.trim()),
                    _ => name.to_string(),
                }
            });
        found.components.push(Component {
            ecosystem: Ecosystem::Deb,
            namespace: None,
            name: p.name,
            version: p.version,
            epoch: None,
            arch: Some(p.arch).filter(|a| !a.is_empty()),
            source,
            licenses,
            locations: vec![location.clone()],
        });
    }
}

/// Where Debian keeps a package's copyright file.
fn copyright_path(package: &str) -> String {
    format!("/usr/share/doc/{package}/copyright")
}

/// The `License:` short names of a machine-readable (DEP-5) copyright file, in order of first
/// appearance; none for a free-form one.
pub(super) fn copyright_licenses(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    if !lines
        .next()
        .is_some_and(|l| l.starts_with("Format:") || l.starts_with("Format-Specification:"))
    {
        return vec![];
    }
    let mut out: Vec<String> = Vec::new();
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("License:") {
            let v = v.trim();
            if !v.is_empty() && v.len() <= 200 && !out.iter().any(|o| o == v) {
                out.push(v.to_string());
            }
        }
        if out.len() >= 32 {
            break;
        }
    }
    out
}

/// The packages of the rpm database (sqlite or Berkeley DB), as `rpm -qa` lists them (the
/// `gpg-pubkey` pseudo-packages included).
pub(super) fn rpm(lookup: &dyn FileLookup, found: &mut Found) {
    use crate::detect::checks::packages::rpm as db;
    let (path, backend) = match db::find(lookup) {
        Ok(Some(f)) => f,
        Ok(None) => {
            for p in rpm::UNREAD_DB_PATHS {
                if lookup.metadata(p).ok().flatten().is_some() {
                    found.error(
                        p,
                        "an rpm database amiscan does not read (ndb): its packages are not listed",
                    );
                }
            }
            return;
        }
        Err(e) => {
            found.error(&e.path, e.reason);
            return;
        }
    };
    let (data, wal) = match db::read_db(lookup, path, backend) {
        Ok(d) => d,
        Err(e) => {
            found.error(path, e);
            return;
        }
    };
    let location = found.location(path);
    let mut components = Vec::new();
    let read = rpm::for_each_package(&data, wal.as_deref(), backend, &mut |p| {
        let version = if p.release.is_empty() {
            p.version
        } else {
            format!("{}-{}", p.version, p.release)
        };
        components.push(Component {
            ecosystem: Ecosystem::Rpm,
            namespace: None,
            name: p.name,
            version,
            epoch: p.epoch,
            arch: Some(p.arch).filter(|a| !a.is_empty()),
            source: Some(p.source_rpm).filter(|s| !s.is_empty()),
            licenses: Some(p.license)
                .filter(|l| !l.is_empty())
                .into_iter()
                .collect(),
            locations: vec![location.clone()],
        });
    });
    match read {
        Ok(stats) => {
            if let Some(bad) = stats.first_bad {
                found.error(
                    path,
                    format!(
                        "{} package headers not decoded, first: {bad}",
                        stats.bad_headers
                    ),
                );
            }
        }
        Err(e) => found.error(path, e),
    }
    found.components.append(&mut components);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::MemLookup;

    #[test]
    fn os_release_values_are_unquoted() {
        let os = parse_os_release(
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "12");
        assert_eq!(os.distro(), "debian-12");
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let os = parse_os_release(b"ID='amzn'\nVERSION_ID='2023'\n");
        assert_eq!(os.distro(), "amzn-2023");
    }

    #[test]
    fn dep5_licenses_and_free_form_files() {
        let dep5 = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
Upstream-Name: x\n\nFiles: *\nCopyright: 2020 A\nLicense: GPL-2+\n\nFiles: debian/*\nLicense: GPL-2+\n\n\
Files: lib/*\nLicense: BSD-3-clause\n\nLicense: GPL-2+\n This program is free software\n";
        assert_eq!(copyright_licenses(dep5), ["GPL-2+", "BSD-3-clause"]);
        assert!(
            copyright_licenses(b"This is the Debian prepackaged version of x.\nLicense: MIT\n")
                .is_empty()
        );
    }

    #[test]
    fn dpkg_lists_what_is_on_disk_with_source_and_licence() {
        let status = b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
Source: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2+b1\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n\
Package: half\nStatus: install reinstreq half-installed\nVersion: 2\nArchitecture: all\n";
        let lookup = MemLookup::new()
            .file("/var/lib/dpkg/status", status)
            .file(
                "/usr/share/doc/libssl3/copyright",
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: Apache-2.0\n",
            )
            .unreadable("/usr/share/doc/half/copyright");
        let mut found = Found {
            label: "",
            components: vec![],
            errors: vec![],
        };
        dpkg(&lookup, &SbomOptions::default(), &mut found);
        let names: Vec<_> = found.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["libssl3", "half"]);
        let ssl = &found.components[0];
        assert_eq!(ssl.source.as_deref(), Some("openssl@3.0.11-1~deb12u2"));
        assert_eq!(ssl.licenses, ["Apache-2.0"]);
        assert_eq!(ssl.arch.as_deref(), Some("amd64"));
        // The unreadable copyright file is said, not taken for "no licence".
        assert_eq!(found.errors.len(), 1, "{:?}", found.errors);
        assert!(found.errors[0].starts_with("/usr/share/doc/half/copyright"));
    }
}
