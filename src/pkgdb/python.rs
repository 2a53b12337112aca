//! Python's own records, parsed from their bytes: the `RECORD` of an installed distribution
//! (`NAME-VERSION.dist-info/RECORD`, PEP 376 / PEP 627: one CSV line per file, `path,
//! sha256=DIGEST,size`, the digest urlsafe base64 without padding), and the header of a compiled
//! module (`__pycache__/NAME.TAG.pyc`, PEP 552), which records the size and modification time of
//! the source it was compiled from, or a hash of it.
//! Limits: RECORD lines that are not UTF-8, or whose hash is not SHA-256, give no digest (the
//! file then counts as listed, unverified); `.pyc` files older than Python 3.3 (8-byte headers,
//! no size) are not read.

use base64::Engine;

/// One line of a `RECORD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordLine {
    /// The path, absolute, resolved against the directory holding the `.dist-info` (`..` and
    /// `.` components removed; a path that would leave `/` is skipped).
    pub path: String,
    /// The SHA-256 the installer recorded; `None` for lines without one (the `RECORD` itself,
    /// compiled files, `INSTALLER`).
    pub sha256: Option<[u8; 32]>,
}

/// The distribution name and version a `NAME-VERSION.dist-info` directory names.
pub(crate) fn dist_info_name(dir_name: &str) -> Option<(&str, &str)> {
    let stem = dir_name.strip_suffix(".dist-info")?;
    let (name, version) = stem.rsplit_once('-')?;
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

/// Most lines read from one `RECORD`.
const MAX_RECORD_LINES: usize = 200_000;

/// The lines of a `RECORD` whose `.dist-info` directory is inside `site` (absolute: the
/// directory the paths are relative to). Malformed lines are skipped.
pub(crate) fn record(site: &str, data: &[u8]) -> Vec<RecordLine> {
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n').take(MAX_RECORD_LINES) {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let fields = csv_fields(line);
        let Some(rel) = fields.first().filter(|p| !p.is_empty()) else {
            continue;
        };
        let Some(path) = join(site, rel) else {
            continue;
        };
        let sha256 = fields
            .get(1)
            .and_then(|h| h.strip_prefix("sha256="))
            .and_then(|b64| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b64.trim_end_matches('='))
                    .ok()
            })
            .and_then(|d| <[u8; 32]>::try_from(d).ok());
        out.push(RecordLine { path, sha256 });
    }
    out
}

/// The fields of one CSV line (RFC 4180 quoting, as Python's `csv` module writes it).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// `rel` resolved against the absolute directory `base` (an absolute `rel` stands alone);
/// `None` when `..` would leave the root.
fn join(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let start = if rel.starts_with('/') { "" } else { base };
    for c in start.split('/').chain(rel.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// What a `.pyc` header says about the source it was compiled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PycSource {
    /// Compiled from a source of this size (mod 2^32) and modification time (seconds, mod 2^32).
    Stamp { mtime: u32, size: u32 },
    /// Compiled from a source whose SipHash (keyed by the magic number) is this: amiscan does
    /// not compute it, so such a file is not tied to its source.
    Hash,
}

/// The header of a `.pyc` (at least its first 16 bytes), `None` when it is not one.
pub(crate) fn pyc_header(data: &[u8]) -> Option<PycSource> {
    let word = |at: usize| -> Option<u32> {
        let b = data.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // The magic: a 16-bit number and `\r\n`.
    let magic = data.get(..4)?;
    if magic[2..] != *b"\r\n" {
        return None;
    }
    let number = u16::from_le_bytes([magic[0], magic[1]]);
    match number {
        // Python 3.3 to 3.6: magic, mtime, size.
        3230..=3379 => Some(PycSource::Stamp {
            mtime: word(4)?,
            size: word(8)?,
        }),
        // Python 3.7 and later (PEP 552): magic, flags, then stamp or hash.
        3390..=4999 => match word(4)? {
            0 => Some(PycSource::Stamp {
                mtime: word(8)?,
                size: word(12)?,
            }),
            f if f & 1 == 1 => {
                word(12)?;
                Some(PycSource::Hash)
            }
            _ => None,
        },
        _ => None,
    }
}

/// The source a compiled module at `path` was compiled from: `d/__pycache__/m.TAG[.opt-N].pyc`
/// gives `d/m.py`, and a legacy `d/m.pyc` gives `d/m.py`. `None` for other paths.
pub(crate) fn pyc_source_path(path: &str) -> Option<String> {
    let (dir, name) = path.rsplit_once('/')?;
    let stem = name.strip_suffix(".pyc")?;
    if let Some(parent) = dir.strip_suffix("/__pycache__") {
        let (module, _tag) = stem.split_once('.')?;
        (!module.is_empty()).then(|| format!("{parent}/{module}.py"))
    } else {
        (!stem.is_empty()).then(|| format!("{dir}/{stem}.py"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn record_lines_resolve_against_the_site_directory() {
        let body = b"print('hi')\n";
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(body));
        let data = format!(
            "boto3/__init__.py,sha256={b64},12\n\
             \"odd,name.py\",sha256={b64},12\n\
             ../../../bin/tool,sha256={b64},3\n\
             boto3-1.0.dist-info/RECORD,,\n\
             boto3/__pycache__/x.cpython-311.pyc,,\n\
             ../../../../../../../../etc/x,sha256={b64},1\n\
             bad,md5=abc,1\n"
        );
        let got = record("/opt/venv/lib/python3.11/site-packages", data.as_bytes());
        let want_digest: [u8; 32] = Sha256::digest(body).into();
        assert_eq!(got.len(), 6, "{got:?}");
        assert_eq!(
            got[0].path,
            "/opt/venv/lib/python3.11/site-packages/boto3/__init__.py"
        );
        assert_eq!(got[0].sha256, Some(want_digest));
        assert_eq!(
            got[1].path,
            "/opt/venv/lib/python3.11/site-packages/odd,name.py"
        );
        assert_eq!(got[2].path, "/opt/venv/bin/tool");
        assert_eq!(got[3].sha256, None);
        assert_eq!(got[4].sha256, None);
        assert_eq!(got[5].path, "/opt/venv/lib/python3.11/site-packages/bad");
        assert_eq!(got[5].sha256, None, "only sha256 digests are kept");
        assert!(got.iter().all(|l| l.path != "/etc/x"));
    }

    #[test]
    fn a_path_that_leaves_the_root_is_skipped() {
        assert_eq!(join("/a", "../../x"), None);
        assert_eq!(join("/a/b", "../c/./d"), Some("/a/c/d".into()));
        assert_eq!(join("/a", "/etc/x"), Some("/etc/x".into()));
    }

    #[test]
    fn dist_info_names_split_at_the_last_dash() {
        assert_eq!(
            dist_info_name("boto3-1.34.0.dist-info"),
            Some(("boto3", "1.34.0"))
        );
        assert_eq!(dist_info_name("boto3.dist-info"), None);
        assert_eq!(dist_info_name("x-1.egg-info"), None);
    }

    #[test]
    fn pyc_headers_of_each_layout() {
        // 3.11 (3495), timestamp.
        let mut h = vec![0xa7, 0x0d, b'\r', b'\n'];
        h.extend(0u32.to_le_bytes());
        h.extend(1_700_000_000u32.to_le_bytes());
        h.extend(1234u32.to_le_bytes());
        assert_eq!(
            pyc_header(&h),
            Some(PycSource::Stamp {
                mtime: 1_700_000_000,
                size: 1234
            })
        );
        // Hash-based (checked).
        h[4] = 3;
        assert_eq!(pyc_header(&h), Some(PycSource::Hash));
        // Unknown flags.
        h[4] = 2;
        assert_eq!(pyc_header(&h), None);
        // 3.6 (3379): magic, mtime, size.
        let mut old = vec![0x33, 0x0d, b'\r', b'\n'];
        old.extend(5u32.to_le_bytes());
        old.extend(6u32.to_le_bytes());
        assert_eq!(
            pyc_header(&old),
            Some(PycSource::Stamp { mtime: 5, size: 6 })
        );
        // Not a pyc, or cut short.
        assert_eq!(pyc_header(b"\x7fELF\x02\x01\x01\x00"), None);
        assert_eq!(pyc_header(&h[..10]), None);
    }

    #[test]
    fn pyc_paths_name_their_source() {
        assert_eq!(
            pyc_source_path(
                "/usr/lib/python3/dist-packages/jwt/__pycache__/api_jwt.cpython-311.pyc"
            ),
            Some("/usr/lib/python3/dist-packages/jwt/api_jwt.py".into())
        );
        assert_eq!(
            pyc_source_path("/a/__pycache__/m.cpython-311.opt-1.pyc"),
            Some("/a/m.py".into())
        );
        assert_eq!(pyc_source_path("/a/m.pyc"), Some("/a/m.py".into()));
        assert_eq!(pyc_source_path("/a/__pycache__/m.pyc"), None);
        assert_eq!(pyc_source_path("/a/m.py"), None);
    }
}
