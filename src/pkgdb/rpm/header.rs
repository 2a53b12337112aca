//! rpm header blobs, as the rpm database stores one per installed package: `il` (index entry
//! count) and `dl` (data length), both big-endian u32, then `il` 16-byte index entries (tag,
//! type, offset, count, all big-endian u32), then `dl` bytes of data the entries point into.
//!
//! Only the tags the package checks need are decoded: the package's name, version and release,
//! and per file its path, mode, flags, state, verify flags and digest. Every offset and count is
//! checked against the data; a hostile blob gives a [`HeaderError`], never a panic, and nothing
//! is allocated beyond what the (capped) blob itself holds.

use thiserror::Error;

/// Most index entries in one header (rpm's own `HEADER_TAGS_MAX`).
const MAX_ENTRIES: u32 = 0xffff;
/// Most data bytes in one header (rpm's own `HEADER_DATA_MAX`).
const MAX_DATA: u32 = 0x0fff_ffff;
/// The file paths of one header, joined from `DIRNAMES` and `BASENAMES`, are at most this many
/// times its data (plus [`PATH_SLACK`]), and never more than [`MAX_PATH_BYTES`]: every file
/// names one directory by index, so a few bytes of data could otherwise repeat a long
/// directory name for every file (a 1 MiB blob of 200k files under one 500 KiB directory
/// name is 100 GB of paths). Real packages stay far below 1x.
const PATH_RATIO: usize = 32;
/// See [`PATH_RATIO`].
const PATH_SLACK: usize = 64 * 1024;
/// See [`PATH_RATIO`].
const MAX_PATH_BYTES: usize = 256 * 1024 * 1024;

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const LICENSE: u32 = 1014;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;
const OLDFILENAMES: u32 = 1027;
const FILEMODES: u32 = 1030;
const FILESTATES: u32 = 1029;
const FILEDIGESTS: u32 = 1035;
const FILEFLAGS: u32 = 1037;
const FILEVERIFYFLAGS: u32 = 1045;
const DIRINDEXES: u32 = 1116;
const BASENAMES: u32 = 1117;
const DIRNAMES: u32 = 1118;
const FILEDIGESTALGO: u32 = 5011;

const TYPE_CHAR: u32 = 1;
const TYPE_INT8: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// `RPMFILE_CONFIG`: a configuration file, expected to be edited.
pub(crate) const FILE_CONFIG: u32 = 1;
/// `RPMFILE_GHOST`: a file the package owns but does not ship.
pub(crate) const FILE_GHOST: u32 = 64;
/// `RPMVERIFY_FILEDIGEST`: `rpm -V` checks the file's digest.
const VERIFY_DIGEST: u32 = 1;

/// Why a header blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The blob ends before the index or the data it announces.
    #[error("header truncated: needs {need} bytes, has {have}")]
    Truncated {
        /// Bytes the preamble announces.
        need: u64,
        /// Bytes there are.
        have: usize,
    },
    /// More index entries or data than rpm itself allows.
    #[error("header too large: {entries} entries, {data} data bytes")]
    TooLarge {
        /// Index entries announced.
        entries: u32,
        /// Data bytes announced.
        data: u32,
    },
    /// An entry's type, offset or count does not fit the data.
    #[error("header tag {tag}: {why}")]
    BadEntry {
        /// The tag.
        tag: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A per-file array does not have one element per file.
    #[error("header tag {tag} has {count} elements for {files} files")]
    FileCount {
        /// The tag.
        tag: u32,
        /// Its element count.
        count: usize,
        /// The number of files.
        files: usize,
    },
}

/// The digest algorithm of a package's file digests (`FILEDIGESTALGO`, OpenPGP hash ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgo {
    /// 1, and the default when the tag is absent.
    Md5,
    /// 2.
    Sha1,
    /// 8.
    Sha256,
    /// 9.
    Sha384,
    /// 10.
    Sha512,
    /// 11.
    Sha224,
    /// Any other id: the package's files cannot be verified.
    Unknown(u32),
}

impl DigestAlgo {
    fn from_id(id: u32) -> DigestAlgo {
        match id {
            1 => DigestAlgo::Md5,
            2 => DigestAlgo::Sha1,
            8 => DigestAlgo::Sha256,
            9 => DigestAlgo::Sha384,
            10 => DigestAlgo::Sha512,
            11 => DigestAlgo::Sha224,
            other => DigestAlgo::Unknown(other),
        }
    }

    /// `data`'s digest in this algorithm, `None` for an unknown one.
    pub fn digest(self, data: &[u8]) -> Option<Vec<u8>> {
        use md5::Digest;
        Some(match self {
            DigestAlgo::Md5 => md5::Md5::digest(data).to_vec(),
            DigestAlgo::Sha1 => sha1::Sha1::digest(data).to_vec(),
            DigestAlgo::Sha224 => sha2::Sha224::digest(data).to_vec(),
            DigestAlgo::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlgo::Sha384 => sha2::Sha384::digest(data).to_vec(),
            DigestAlgo::Sha512 => sha2::Sha512::digest(data).to_vec(),
            DigestAlgo::Unknown(_) => return None,
        })
    }

    /// Name for reports: `MD5`, `SHA256`, ...
    pub fn name(self) -> String {
        match self {
            DigestAlgo::Md5 => "MD5".into(),
            DigestAlgo::Sha1 => "SHA1".into(),
            DigestAlgo::Sha256 => "SHA256".into(),
            DigestAlgo::Sha384 => "SHA384".into(),
            DigestAlgo::Sha512 => "SHA512".into(),
            DigestAlgo::Sha224 => "SHA224".into(),
            DigestAlgo::Unknown(id) => format!("unknown algorithm {id}"),
        }
    }
}

/// One file of an installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgFile {
    /// Absolute path.
    pub path: String,
    /// `st_mode` as packaged (type and permission bits).
    pub mode: u16,
    /// `RPMFILE_*` flags.
    pub flags: u32,
    /// Install state (0 = normal; replaced, not installed, wrong color otherwise).
    pub state: u8,
    /// Whether `rpm -V` checks this file's digest (`%verify(not md5)` clears it).
    pub verify_digest: bool,
    /// Expected digest (decoded from hex); empty for directories, links and ghosts.
    pub digest: Vec<u8>,
}

impl PkgFile {
    /// Whether the file's content can be verified: a regular file, installed, with a digest,
    /// not a configuration file or a ghost, and not excluded from digest verification.
    pub fn verifiable(&self) -> bool {
        self.mode & 0o170000 == 0o100000
            && self.state == 0
            && self.verify_digest
            && !self.digest.is_empty()
            && self.flags & (FILE_CONFIG | FILE_GHOST) == 0
    }
}

/// An installed package, from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `NAME`.
    pub name: String,
    /// `VERSION`.
    pub version: String,
    /// `RELEASE`.
    pub release: String,
    /// `EPOCH`, when the package has one.
    pub epoch: Option<u32>,
    /// `ARCH` (`x86_64`, `noarch`), empty when absent (the `gpg-pubkey` pseudo-packages).
    pub arch: String,
    /// `LICENSE`, as the packager wrote it; empty when absent.
    pub license: String,
    /// `SOURCERPM` (`curl-8.5.0-1.amzn2023.src.rpm`), empty when absent.
    pub source_rpm: String,
    /// Algorithm of the file digests.
    pub algo: DigestAlgo,
    /// The package's files.
    pub files: Vec<PkgFile>,
}

impl Package {
    /// `name-version-release`.
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }

    /// Decode the package a header blob describes.
    pub fn from_blob(blob: &[u8]) -> Result<Package, HeaderError> {
        let h = Header::parse(blob)?;
        let name = h.string(NAME)?.unwrap_or_default();
        let version = h.string(VERSION)?.unwrap_or_default();
        let release = h.string(RELEASE)?.unwrap_or_default();
        // Descriptive tags: a malformed one costs its value, never the package.
        let epoch = h
            .ints(EPOCH)
            .ok()
            .flatten()
            .and_then(|v| v.first().copied());
        let text = |tag| h.string(tag).ok().flatten().unwrap_or_default();
        let (arch, license, source_rpm) = (text(ARCH), text(LICENSE), text(SOURCERPM));
        let algo = match h.ints(FILEDIGESTALGO)?.and_then(|v| v.first().copied()) {
            Some(id) => DigestAlgo::from_id(id),
            None => DigestAlgo::Md5,
        };
        let paths = h.paths()?;
        let n = paths.len();
        let modes = h.per_file(FILEMODES, n, h.ints(FILEMODES)?)?;
        let flags = h.per_file(FILEFLAGS, n, h.ints(FILEFLAGS)?)?;
        let states = h.per_file(FILESTATES, n, h.ints(FILESTATES)?)?;
        let verify = h.per_file(FILEVERIFYFLAGS, n, h.ints(FILEVERIFYFLAGS)?)?;
        let digests = h.per_file(FILEDIGESTS, n, h.strings(FILEDIGESTS)?)?;
        let files = paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| PkgFile {
                path,
                mode: modes
                    .as_ref()
                    .and_then(|m| m.get(i))
                    .map_or(0, |&m| (m & 0xffff) as u16),
                flags: flags.as_ref().and_then(|f| f.get(i)).copied().unwrap_or(0),
                state: states
                    .as_ref()
                    .and_then(|s| s.get(i))
                    .map_or(0, |&s| (s & 0xff) as u8),
                verify_digest: verify
                    .as_ref()
                    .and_then(|v| v.get(i))
                    .is_none_or(|&v| v & VERIFY_DIGEST != 0),
                digest: digests
                    .as_ref()
                    .and_then(|d| d.get(i))
                    .and_then(|hex_digest| hex::decode(hex_digest).ok())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Package {
            name,
            version,
            release,
            epoch,
            arch,
            license,
            source_rpm,
            algo,
            files,
        })
    }
}

/// A parsed header: its index entries and its data store, both inside the blob.
struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

/// One index entry.
#[derive(Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: usize,
    count: usize,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        let (Some(il), Some(dl)) = (be32(blob, 0), be32(blob, 4)) else {
            return Err(HeaderError::Truncated {
                need: 8,
                have: blob.len(),
            });
        };
        if il == 0 || il > MAX_ENTRIES || dl > MAX_DATA {
            return Err(HeaderError::TooLarge {
                entries: il,
                data: dl,
            });
        }
        let need = 8 + u64::from(il) * 16 + u64::from(dl);
        let index_end = 8 + il as usize * 16;
        let data_end = index_end + dl as usize;
        match (blob.get(8..index_end), blob.get(index_end..data_end)) {
            (Some(index), Some(data)) => Ok(Header { index, data }),
            _ => Err(HeaderError::Truncated {
                need,
                have: blob.len(),
            }),
        }
    }

    /// The last entry with `tag` (entries added after install replace the original).
    fn entry(&self, tag: u32) -> Option<Entry> {
        self.index.chunks_exact(16).rev().find_map(|e| {
            (be32(e, 0)? == tag).then_some(())?;
            Some(Entry {
                tag,
                kind: be32(e, 4)?,
                offset: be32(e, 8)? as usize,
                count: be32(e, 12)? as usize,
            })
        })
    }

    fn bad(tag: u32, why: &'static str) -> HeaderError {
        HeaderError::BadEntry { tag, why }
    }

    /// `count` NUL-terminated strings starting at the entry's offset.
    fn read_strings(&self, e: Entry) -> Result<Vec<&'a [u8]>, HeaderError> {
        let mut rest = self
            .data
            .get(e.offset..)
            .ok_or(Self::bad(e.tag, "offset past the data"))?;
        // Every string takes at least its NUL: a count above the bytes left is a lie.
        if e.count > rest.len() {
            return Err(Self::bad(e.tag, "more strings than data bytes"));
        }
        let mut out = Vec::with_capacity(e.count);
        for _ in 0..e.count {
            let end = memchr::memchr(0, rest).ok_or(Self::bad(e.tag, "unterminated string"))?;
            out.push(&rest[..end]);
            rest = &rest[end + 1..];
        }
        Ok(out)
    }

    /// The string value of `tag` (the first one of an array).
    fn string(&self, tag: u32) -> Result<Option<String>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        match e.kind {
            TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING => {
                let one = Entry { count: 1, ..e };
                let s = self.read_strings(one)?;
                Ok(s.first().map(|s| String::from_utf8_lossy(s).into_owned()))
            }
            _ => Err(Self::bad(tag, "not a string")),
        }
    }

    /// The strings of a string-array `tag`.
    fn strings(&self, tag: u32) -> Result<Option<Vec<&'a [u8]>>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        match e.kind {
            TYPE_STRING_ARRAY | TYPE_I18NSTRING | TYPE_STRING => self.read_strings(e).map(Some),
            _ => Err(Self::bad(tag, "not a string array")),
        }
    }

    /// The integers of an integer-array `tag` (char, int8, int16 or int32), widened.
    fn ints(&self, tag: u32) -> Result<Option<Vec<u32>>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        let width = match e.kind {
            TYPE_CHAR | TYPE_INT8 => 1,
            TYPE_INT16 => 2,
            TYPE_INT32 => 4,
            _ => return Err(Self::bad(tag, "not an integer array")),
        };
        let len = e
            .count
            .checked_mul(width)
            .ok_or(Self::bad(tag, "count overflows"))?;
        let end = e
            .offset
            .checked_add(len)
            .ok_or(Self::bad(tag, "count overflows"))?;
        let bytes = self
            .data
            .get(e.offset..end)
            .ok_or(Self::bad(tag, "array runs past the data"))?;
        Ok(Some(
            bytes
                .chunks_exact(width)
                .map(|c| c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
                .collect(),
        ))
    }

    /// `Some(values)` when `tag` has exactly one value per file.
    fn per_file<T>(
        &self,
        tag: u32,
        files: usize,
        values: Option<Vec<T>>,
    ) -> Result<Option<Vec<T>>, HeaderError> {
        match values {
            Some(v) if v.len() != files => Err(HeaderError::FileCount {
                tag,
                count: v.len(),
                files,
            }),
            v => Ok(v),
        }
    }

    /// The package's file paths: `DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]`, or the old
    /// `OLDFILENAMES`. Empty for a package without files.
    fn paths(&self) -> Result<Vec<String>, HeaderError> {
        let Some(base) = self.strings(BASENAMES)? else {
            return Ok(self
                .strings(OLDFILENAMES)?
                .unwrap_or_default()
                .into_iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect());
        };
        let dirs = self.strings(DIRNAMES)?.unwrap_or_default();
        let idx = self
            .per_file(DIRINDEXES, base.len(), self.ints(DIRINDEXES)?)?
            .ok_or(Self::bad(DIRINDEXES, "missing beside BASENAMES"))?;
        let mut budget = self
            .data
            .len()
            .saturating_mul(PATH_RATIO)
            .saturating_add(PATH_SLACK)
            .min(MAX_PATH_BYTES);
        base.iter()
            .zip(&idx)
            .map(|(b, &i)| {
                let d = dirs
                    .get(i as usize)
                    .ok_or(Self::bad(DIRINDEXES, "index past DIRNAMES"))?;
                budget = budget
                    .checked_sub(d.len().saturating_add(b.len()))
                    .ok_or(Self::bad(DIRNAMES, "file paths far longer than the header"))?;
                let mut p = String::from_utf8_lossy(d).into_owned();
                p.push_str(&String::from_utf8_lossy(b));
                Ok(p)
            })
            .collect()
    }
}

/// Header blobs for tests: entries are laid out in the order given.
#[cfg(test)]
pub(crate) mod build {
    /// A tag's value.
    pub enum Val<'a> {
        Str(&'a str),
        Strs(&'a [&'a str]),
        I16(&'a [u16]),
        I32(&'a [u32]),
    }

    /// The header blob holding `entries`.
    pub fn blob(entries: &[(u32, Val)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, val) in entries {
            let (kind, count) = match val {
                Val::Str(_) => (6u32, 1usize),
                Val::Strs(s) => (8, s.len()),
                Val::I16(v) => {
                    while data.len() % 2 != 0 {
                        data.push(0);
                    }
                    (3, v.len())
                }
                Val::I32(v) => {
                    while data.len() % 4 != 0 {
                        data.push(0);
                    }
                    (4, v.len())
                }
            };
            index.extend(tag.to_be_bytes());
            index.extend(kind.to_be_bytes());
            index.extend((data.len() as u32).to_be_bytes());
            index.extend((count as u32).to_be_bytes());
            match val {
                Val::Str(s) => {
                    data.extend(s.as_bytes());
                    data.push(0);
                }
                Val::Strs(v) => {
                    for s in *v {
                        data.extend(s.as_bytes());
                        data.push(0);
                    }
                }
                Val::I16(v) => v.iter().for_each(|x| data.extend(x.to_be_bytes())),
                Val::I32(v) => v.iter().for_each(|x| data.extend(x.to_be_bytes())),
            }
        }
        let mut out = Vec::new();
        out.extend(((index.len() / 16) as u32).to_be_bytes());
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    /// A package `name-1.0-1` with files `(path, mode, flags, hex digest)`, SHA256 digests.
    pub fn package(name: &str, files: &[(&str, u16, u32, &str)]) -> Vec<u8> {
        let mut dirs: Vec<String> = Vec::new();
        let mut idx = Vec::new();
        let mut base = Vec::new();
        for (p, ..) in files {
            let cut = p.rfind('/').map_or(0, |i| i + 1);
            let (d, b) = p.split_at(cut);
            let i = dirs.iter().position(|x| x == d).unwrap_or_else(|| {
                dirs.push(d.to_string());
                dirs.len() - 1
            });
            idx.push(i as u32);
            base.push(b);
        }
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        let modes: Vec<u16> = files.iter().map(|f| f.1).collect();
        let flags: Vec<u32> = files.iter().map(|f| f.2).collect();
        let digests: Vec<&str> = files.iter().map(|f| f.3).collect();
        blob(&[
            (1000, Val::Str(name)),
            (1001, Val::Str("1.0")),
            (1002, Val::Str("1")),
            (1030, Val::I16(&modes)),
            (1035, Val::Strs(&digests)),
            (1037, Val::I32(&flags)),
            (1116, Val::I32(&idx)),
            (1117, Val::Strs(&base)),
            (1118, Val::Strs(&dirs)),
            (5011, Val::I32(&[8])),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::build::{Val, blob, package};
    use super::*;

    #[test]
    fn a_package_with_files() {
        let b = package(
            "sudo",
            &[
                ("/usr/bin/sudo", 0o104111, 0, "aabb"),
                ("/etc/sudoers", 0o100440, FILE_CONFIG, "ccdd"),
                ("/usr/libexec/sudo", 0o040755, 0, ""),
            ],
        );
        let p = Package::from_blob(&b).unwrap();
        assert_eq!(p.nvr(), "sudo-1.0-1");
        assert_eq!(p.algo, DigestAlgo::Sha256);
        let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/usr/bin/sudo", "/etc/sudoers", "/usr/libexec/sudo"]
        );
        assert_eq!(p.files[0].digest, [0xaa, 0xbb]);
        assert_eq!(p.files[0].mode, 0o104111);
        let verifiable: Vec<bool> = p.files.iter().map(PkgFile::verifiable).collect();
        assert_eq!(verifiable, [true, false, false]);
    }

    #[test]
    fn old_file_names_and_default_md5() {
        let b = blob(&[
            (NAME, Val::Str("old")),
            (OLDFILENAMES, Val::Strs(&["/bin/ls", "/bin/ps"])),
            (FILEDIGESTS, Val::Strs(&["00", "11"])),
            (FILEMODES, Val::I16(&[0o100755, 0o100755])),
        ]);
        let p = Package::from_blob(&b).unwrap();
        assert_eq!(p.algo, DigestAlgo::Md5);
        assert_eq!(p.nvr(), "old--");
        assert_eq!(p.files[1].path, "/bin/ps");
        assert!(p.files[1].verifiable());
    }

    #[test]
    fn ghost_unverified_and_replaced_files_are_not_verifiable() {
        let b = blob(&[
            (NAME, Val::Str("x")),
            (OLDFILENAMES, Val::Strs(&["/a", "/b", "/c"])),
            (FILEDIGESTS, Val::Strs(&["00", "11", "22"])),
            (FILEMODES, Val::I16(&[0o100755; 3])),
            (FILEFLAGS, Val::I32(&[FILE_GHOST, 0, 0])),
            (FILEVERIFYFLAGS, Val::I32(&[!0, !VERIFY_DIGEST, !0])),
        ]);
        let mut p = Package::from_blob(&b).unwrap();
        p.files[2].state = 2;
        assert!(p.files.iter().all(|f| !f.verifiable()));
    }

    #[test]
    fn a_package_without_files() {
        let p = Package::from_blob(&blob(&[(NAME, Val::Str("gpg-pubkey"))])).unwrap();
        assert!(p.files.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = package("sudo", &[("/usr/bin/sudo", 0o104111, 0, "aabb")]);
        for n in 0..b.len() {
            assert!(Package::from_blob(&b[..n]).is_err(), "{n}");
        }
        assert_eq!(
            Package::from_blob(&b[..4]),
            Err(HeaderError::Truncated { need: 8, have: 4 })
        );
    }

    #[test]
    fn hostile_counts_and_offsets() {
        let b = package("sudo", &[("/usr/bin/sudo", 0o104111, 0, "aabb")]);
        let patch = |entry: usize, field: usize, v: u32| {
            let mut b = b.clone();
            let at = 8 + entry * 16 + field * 4;
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            b
        };
        // Entry 7 is BASENAMES, entry 6 DIRINDEXES, entry 3 FILEMODES.
        assert_eq!(
            Package::from_blob(&patch(7, 3, u32::MAX)),
            Err(HeaderError::BadEntry {
                tag: BASENAMES,
                why: "more strings than data bytes"
            })
        );
        assert!(Package::from_blob(&patch(3, 3, 0x4000_0000)).is_err());
        assert!(Package::from_blob(&patch(3, 2, u32::MAX)).is_err());
        assert!(matches!(
            Package::from_blob(&patch(6, 3, 2)),
            Err(HeaderError::FileCount { .. }) | Err(HeaderError::BadEntry { .. })
        ));
        let mut huge = b.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Package::from_blob(&huge),
            Err(HeaderError::TooLarge { .. })
        ));
        let mut huge = b.clone();
        huge[4..8].copy_from_slice(&0x0fff_0000u32.to_be_bytes());
        assert!(matches!(
            Package::from_blob(&huge),
            Err(HeaderError::Truncated { .. })
        ));
        // A directory index past DIRNAMES.
        let bad = blob(&[
            (BASENAMES, Val::Strs(&["ls"])),
            (DIRNAMES, Val::Strs(&["/bin/"])),
            (DIRINDEXES, Val::I32(&[5])),
        ]);
        assert!(Package::from_blob(&bad).is_err());
        // A wrong type.
        let bad = blob(&[(NAME, Val::I32(&[1]))]);
        assert!(Package::from_blob(&bad).is_err());
    }

    #[test]
    fn one_long_directory_name_repeated_for_every_file_is_refused() {
        // 40k files, each 1 byte of name and 4 of index, all under one 100 KiB directory
        // name: 4 GB of paths from a 0.3 MiB header.
        let dir = format!("/{}/", "d".repeat(100 * 1024));
        let names: Vec<&str> = vec!["x"; 40_000];
        let idx = vec![0u32; names.len()];
        let b = blob(&[
            (BASENAMES, Val::Strs(&names)),
            (DIRNAMES, Val::Strs(&[&dir])),
            (DIRINDEXES, Val::I32(&idx)),
        ]);
        assert_eq!(
            Package::from_blob(&b),
            Err(HeaderError::BadEntry {
                tag: DIRNAMES,
                why: "file paths far longer than the header"
            })
        );
        // The same directory for a few files is fine.
        let b = blob(&[
            (BASENAMES, Val::Strs(&names[..10])),
            (DIRNAMES, Val::Strs(&[&dir])),
            (DIRINDEXES, Val::I32(&idx[..10])),
        ]);
        assert_eq!(Package::from_blob(&b).unwrap().files.len(), 10);
    }

    #[test]
    fn flipping_any_byte_never_panics() {
        let b = package(
            "sudo",
            &[
                ("/usr/bin/sudo", 0o104111, 0, "aabb"),
                ("/etc/sudoers", 0o100440, FILE_CONFIG, "ccdd"),
            ],
        );
        for i in 0..b.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut c = b.clone();
                c[i] = v;
                let _ = Package::from_blob(&c);
            }
        }
    }
}
