//! dpkg's own records, parsed from their bytes: the paths of a package's `*.list`, the
//! `(path, MD5)` lines of its `*.md5sums`, and the diverted paths of `diversions`.
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

#[cfg(test)]
mod tests {
    use super::*;

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
