//! dpkg's own records, parsed from their bytes: the paths of a package's `*.list`, the
//! `(path, MD5)` lines of its `*.md5sums`, the diverted paths of `diversions`, and the
//! installed packages of `status` with their versions and conffiles (whose MD5s dpkg keeps
//! there, not in `md5sums`).
//! Limits: only UTF-8 lines are read (a path that is not UTF-8 is skipped); what the checks do
//! with the records, and how much of each file they read, is theirs.

use std::collections::HashSet;

/// The paths a package's `*.list` names, one per line (directories included).
pub(crate) fn list_paths(data: &[u8]) -> impl Iterator<Item = &str> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
}

/// One line of a `*.md5sums` file: `HEX  PATH` (the path relative to `/`).
pub(crate) struct Md5Line<'a> {
    /// The path, absolute (`/usr/bin/sudo`).
    pub path: String,
    /// The digest as written, hex; see [`Md5Line::md5`].
    pub hex: &'a str,
}

impl Md5Line<'_> {
    /// The digest's bytes, `None` when the hex does not decode.
    pub(crate) fn md5(&self) -> Option<Vec<u8>> {
        hex::decode(self.hex.trim()).ok()
    }
}

/// The lines of a `*.md5sums` file; lines without the two-space separator are skipped. The hex
/// is decoded on demand, so a caller that wants few of the lines decodes only those.
pub(crate) fn md5sums(data: &[u8]) -> impl Iterator<Item = Md5Line<'_>> {
    data.split(|&b| b == b'\n').filter_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        let (hex, rel) = line.split_once("  ")?;
        Some(Md5Line {
            path: format!("/{}", rel.trim_start_matches('/')),
            hex,
        })
    })
}

/// The paths `diversions` names (diverted from, and to; the file holds from, to, package per
/// three lines).
pub(crate) fn diversions(data: &[u8]) -> HashSet<String> {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(3)
        .flat_map(|c| c.iter().take(2).map(|s| s.to_string()))
        .collect()
}

/// One package of `/var/lib/dpkg/status`, as far as provenance needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusPackage {
    /// `Package`.
    pub name: String,
    /// `Architecture` (`amd64`, `all`), empty when absent.
    pub arch: String,
    /// `Version`.
    pub version: String,
    /// Whether `Status` ends in `installed` (not `config-files`, `half-installed`, ...).
    pub installed: bool,
    /// The third word of `Status` (`installed`, `unpacked`, `config-files`, ...).
    pub state: String,
    /// `Source`: the source package, with its version in parentheses when it differs
    /// (`openssl (3.0.11-1~deb12u2)`); empty when the source is named as the package.
    pub source: String,
    /// `Conffiles`: `(path, MD5 hex)`, obsolete ones left out.
    pub conffiles: Vec<(String, String)>,
}

/// Most packages read from one `status` file (a large server has a few thousand).
const MAX_STATUS_PACKAGES: usize = 100_000;

/// The packages of a `status` file, in file order (at most [`MAX_STATUS_PACKAGES`]).
/// Paragraphs without a `Package` field are skipped; a line that is not UTF-8 is skipped.
pub(crate) fn status(data: &[u8]) -> Vec<StatusPackage> {
    let mut out = Vec::new();
    let mut cur: Option<StatusPackage> = None;
    let mut in_conffiles = false;
    let blank = || StatusPackage {
        name: String::new(),
        arch: String::new(),
        version: String::new(),
        installed: false,
        state: String::new(),
        source: String::new(),
        conffiles: Vec::new(),
    };
    let finish = |p: Option<StatusPackage>, out: &mut Vec<StatusPackage>| {
        if let Some(p) = p.filter(|p| !p.name.is_empty())
            && out.len() < MAX_STATUS_PACKAGES
        {
            out.push(p);
        }
    };
    for line in data.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            finish(cur.take(), &mut out);
            in_conffiles = false;
            continue;
        }
        let p = cur.get_or_insert_with(blank);
        if let Some(cont) = line.strip_prefix(' ') {
            if in_conffiles {
                let mut parts = cont.split_whitespace();
                if let (Some(path), Some(hex)) = (parts.next(), parts.next())
                    && parts.next() != Some("obsolete")
                {
                    p.conffiles.push((path.to_string(), hex.to_string()));
                }
            }
            continue;
        }
        in_conffiles = false;
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Package" => p.name = value.to_string(),
            "Architecture" => p.arch = value.to_string(),
            "Version" => p.version = value.to_string(),
            "Status" => {
                p.installed = value.ends_with(" installed");
                p.state = value.split_whitespace().nth(2).unwrap_or("").to_string();
            }
            "Source" => p.source = value.to_string(),
            "Conffiles" => in_conffiles = true,
            _ => {}
        }
    }
    finish(cur.take(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_versions_and_live_conffiles() {
        let data = b"Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\n\
Version: 1:9.2p1-2+deb12u3\nConffiles:\n /etc/ssh/moduli 0123456789abcdef0123456789abcdef\n\
 /etc/old.conf fedcba9876543210fedcba9876543210 obsolete\nDescription: x\n continued\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nVersion: 2\n";
        let got = status(data);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].name, "openssh-server");
        assert_eq!(got[0].arch, "amd64");
        assert_eq!(got[0].version, "1:9.2p1-2+deb12u3");
        assert!(got[0].installed);
        assert_eq!(
            got[0].conffiles,
            [(
                "/etc/ssh/moduli".to_string(),
                "0123456789abcdef0123456789abcdef".to_string()
            )]
        );
        assert!(!got[1].installed);
    }

    #[test]
    fn list_paths_skips_lines_that_are_not_utf8() {
        let data = b"/.\n/usr/bin/sudo\n/bad\xff\n/usr/bin/sudoedit";
        let got: Vec<&str> = list_paths(data).collect();
        assert_eq!(got, ["/.", "/usr/bin/sudo", "/usr/bin/sudoedit"]);
    }

    #[test]
    fn md5sums_lines_give_absolute_paths_and_decode_on_demand() {
        let data = b"0123456789abcdef0123456789abcdef  usr/bin/sudo\nno separator\nzz  bin/x\n";
        let got: Vec<Md5Line> = md5sums(data).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].path, "/usr/bin/sudo");
        assert_eq!(got[0].md5().unwrap().len(), 16);
        assert_eq!(got[1].path, "/bin/x");
        assert!(got[1].md5().is_none());
    }

    #[test]
    fn diversions_are_the_first_two_of_each_three_lines() {
        let data = b"/bin/a\n/bin/a.distrib\npkg\n/bin/b\n/bin/b.real\nother\n";
        let d = diversions(data);
        assert_eq!(d.len(), 4);
        assert!(d.contains("/bin/a.distrib") && d.contains("/bin/b") && !d.contains("pkg"));
    }
}
