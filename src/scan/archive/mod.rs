//! Archives and compressed files: every file's first bytes decide (by magic, never by name)
//! whether it is gzip, bzip2, xz, zstd, tar or zip; those are opened and what they hold is
//! scanned in turn, nested up to [`Limits::max_depth`] layers.
//!
//! Paths: a member is reported as `<archive>!<member>` (`/srv/a.zip!inner.tar.gz!etc/key`); a
//! compressed single file keeps its own path (line and offset are then in the decompressed
//! content). Path-based checks see a member by its own absolute path (`/etc/shadow` for the
//! member `etc/shadow`), and a compressed file by its path without the compression suffix.
//!
//! Everything streams through the detector's `Read` interface. A zip needs its central
//! directory, at its end: where the file can be read at any offset ([`scan_file_at`], every
//! filesystem amiscan reads), a zip of any size is opened by offset ([`window`], [`zipfile`]):
//! the directory is read where the end record puts it and each member from its own offset,
//! deflated members through a streaming decoder, never whole in memory. A zip stored
//! uncompressed inside it (`BOOT-INF/lib/*.jar` in a Spring Boot fat jar, `WEB-INF/lib/*.jar` in
//! most wars) is opened by offset within the outer file the same way, down to the depth bound.
//! A zip is recognised by the local header at its first byte: one behind a prefix (a
//! "fully executable" jar with a launch script in front) is scanned as plain bytes.
//!
//! A zip whose bytes have no offset to be read at (deflated inside another zip, inside a gzip
//! or a tar, or on a filesystem read only as a stream, [`scan_file`]) is read into memory when
//! it fits in [`Limits::max_zip_in_memory`] (per file, all such zips together); a larger one
//! has its bytes scanned as they are (stored members are found, compressed ones are not) and
//! an error says it was not opened, which makes the scan incomplete.
//!
//! Bounds (see [`Limits`]): decoding depth, member count, total expanded bytes, per-layer
//! compression ratio, decoder window memory. A crossed bound stops the file's tree and is an
//! error (the scan is incomplete); a ratio beyond the bound is also an `archive-bomb` finding.

pub(crate) mod decode;
mod limit;
pub(crate) mod magic;
mod tar;
mod window;
mod zipfile;

pub use limit::Limits;

use crate::detect::{DetectOptions, Detector, FileInfo};
use crate::fs::SeekRead;
use crate::report::{Finding, ScanError, Severity};
use decode::Peek;
use limit::{Budget, Counting, Expanding, InputSize, Trip};
use magic::Kind;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::io::{Cursor, Read};
use window::{Shared, Span};
use zipfile::Zip;

/// Rule id of the finding made for a decompression bomb.
pub const BOMB_RULE: &str = "archive-bomb";

/// The file handed to [`scan_file`]: its path and inode metadata.
#[derive(Clone, Debug)]
pub struct FileMeta {
    /// Absolute path inside the volume ([`crate::fs::Entry::display_path`]).
    pub path: String,
    /// The path's exact bytes when they are not valid UTF-8 (`path` is then their visible
    /// escapes); `None` when `path` is exact.
    pub path_bytes: Option<Vec<u8>>,
    /// Size in bytes.
    pub size: u64,
    /// Mode bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// What scanning one file (and everything inside it) gave.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Findings, `volume` empty, `path` the full `archive!member` path.
    pub findings: Vec<Finding>,
    /// Bytes given to the detector (decompressed bytes for compressed content).
    pub bytes: u64,
    /// What could not be read or opened, or a bound that stopped the scan.
    pub errors: Vec<ScanError>,
}

/// One stream being scanned: where to report it, which path checks see, its metadata.
struct Node {
    display: String,
    /// The exact bytes of `display` when they are not valid UTF-8 (`display` is then their
    /// visible escapes).
    bytes: Option<Vec<u8>>,
    check: String,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

struct Cx<'a> {
    det: &'a Detector,
    opts: &'a DetectOptions,
    budget: &'a Budget,
    out: Scanned,
}

/// Scan one file's content, read as a stream: plain files go straight to the detector;
/// archives and compressed files are opened and their content scanned, within `limits`. A zip
/// is opened in memory when it fits in [`Limits::max_zip_in_memory`] ([`scan_file_at`] opens
/// one of any size).
pub fn scan_file(
    file: &FileMeta,
    content: &mut dyn Read,
    det: &Detector,
    opts: &DetectOptions,
    limits: &Limits,
) -> Scanned {
    scan(file, content, None, det, opts, limits)
}

/// [`scan_file`] over content that can be read at any offset: zip archives (and zips stored
/// inside them) are opened by offset, whatever their size.
pub fn scan_file_at(
    file: &FileMeta,
    content: &mut dyn SeekRead,
    det: &Detector,
    opts: &DetectOptions,
    limits: &Limits,
) -> Scanned {
    let shared = Shared::new(content, file.size);
    let all = shared.all();
    scan(file, &mut all.window(), Some(all), det, opts, limits)
}

fn scan(
    file: &FileMeta,
    content: &mut dyn Read,
    span: Option<Span<'_, '_>>,
    det: &Detector,
    opts: &DetectOptions,
    limits: &Limits,
) -> Scanned {
    let budget = Budget::new(*limits);
    let mut cx = Cx {
        det,
        opts,
        budget: &budget,
        out: Scanned::default(),
    };
    let node = Node {
        display: file.path.clone(),
        bytes: file.path_bytes.clone(),
        check: file.path.clone(),
        size: file.size,
        mode: file.mode,
        uid: file.uid,
        gid: file.gid,
    };
    cx.stream(&node, content, 0, span);
    if let Some(trip) = budget.trip() {
        cx.report_trip(trip, &file.path);
    }
    cx.out
}

/// `/` + a member name without leading `./` and `/`: the path checks see.
fn member_check_path(name: &str) -> String {
    let mut n = name;
    loop {
        if let Some(r) = n.strip_prefix("./") {
            n = r;
        } else if let Some(r) = n.strip_prefix('/') {
            n = r;
        } else {
            break;
        }
    }
    format!("/{n}")
}

/// A compressed file's path without its compression suffix (`/x/shadow.gz` -> `/x/shadow`).
pub(crate) fn strip_compression_suffix(path: &str) -> String {
    for (suffix, repl) in [
        (".tgz", ".tar"),
        (".tbz2", ".tar"),
        (".txz", ".tar"),
        (".tzst", ".tar"),
        (".gz", ""),
        (".bz2", ""),
        (".xz", ""),
        (".zst", ""),
    ] {
        if let Some(stem) = path.strip_suffix(suffix).filter(|s| !s.ends_with('/')) {
            return format!("{stem}{repl}");
        }
    }
    path.to_string()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Cx<'_> {
    fn error(&mut self, path: &str, message: String) {
        self.out.errors.push(ScanError {
            path_bytes: None,
            path: Some(path.to_string()),
            message,
        });
    }

    /// Scan stream `r`; `span`, when given, is where the same bytes can be read by offset.
    fn stream(&mut self, node: &Node, r: &mut dyn Read, depth: usize, span: Option<Span<'_, '_>>) {
        let mut r = Peek::new(r);
        let kind = match r.peek(magic::PROBE) {
            Ok(head) => magic::detect(head),
            Err(e) => {
                if !self.budget.tripped() {
                    self.error(&node.display, format!("not scanned: read error: {e}"));
                }
                return;
            }
        };
        match kind {
            None => self.plain(node, &mut r, depth),
            Some(k) if depth >= self.budget.limits.max_depth => {
                self.error(
                    &node.display,
                    format!(
                        "{} content nested deeper than {} archive/compression layers: not \
                         opened, its bytes were scanned as they are",
                        k.name(),
                        self.budget.limits.max_depth
                    ),
                );
                self.plain(node, &mut r, depth);
            }
            Some(Kind::Tar) => self.tar(node, &mut r, depth),
            Some(Kind::Zip) => self.zip(node, &mut r, depth, span),
            Some(k) => self.decompress(k, node, &mut r, depth),
        }
    }

    /// Not an archive: the detector reads it.
    fn plain(&mut self, node: &Node, r: &mut dyn Read, depth: usize) {
        let info = FileInfo {
            path: &node.check,
            size: node.size,
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
        };
        let out = self.det.scan_file(&info, r, self.opts);
        self.out.bytes = self.out.bytes.saturating_add(out.bytes_scanned);
        for mut f in out.findings {
            f.path = Some(node.display.clone());
            f.path_bytes = node.bytes.as_deref().map(b64);
            self.out.findings.push(f);
        }
        if let Some(e) = out.error
            && !self.budget.tripped()
        {
            let msg = if depth == 0 {
                format!(
                    "read stopped after {} of {} bytes: {e}",
                    out.bytes_scanned, node.size
                )
            } else {
                format!("read stopped after {} bytes: {e}", out.bytes_scanned)
            };
            self.error(&node.display, msg);
        }
    }

    fn decompress(&mut self, kind: Kind, node: &Node, r: &mut dyn Read, depth: usize) {
        let consumed = Cell::new(0u64);
        let counted = Counting {
            inner: r,
            count: &consumed,
        };
        let mut expanding = Expanding {
            inner: decode::decoder(kind, counted, &self.budget.limits),
            budget: self.budget,
            input: InputSize::Counted(&consumed),
            out: 0,
            at: node.display.clone(),
        };
        let inner = Node {
            display: node.display.clone(),
            bytes: node.bytes.clone(),
            check: strip_compression_suffix(&node.check),
            ..*node
        };
        self.stream(&inner, &mut expanding, depth.saturating_add(1), None);
    }

    fn member(
        &mut self,
        archive: &Node,
        name: &[u8],
        size: u64,
        mode: u32,
        ids: (u32, u32),
    ) -> Option<Node> {
        if !self.budget.member(&archive.display) {
            return None;
        }
        // A member name that is not UTF-8 makes the whole path an escaped one, with its bytes.
        let (display, bytes) = match (&archive.bytes, std::str::from_utf8(name)) {
            (None, Ok(n)) => (format!("{}!{n}", archive.display), None),
            (outer, _) => {
                let mut b = outer
                    .clone()
                    .unwrap_or_else(|| archive.display.as_bytes().to_vec());
                b.push(b'!');
                b.extend_from_slice(name);
                (crate::model::escape::visible(&b), Some(b))
            }
        };
        Some(Node {
            display,
            bytes,
            check: member_check_path(&crate::model::escape::path_text(name)),
            size,
            mode,
            uid: ids.0,
            gid: ids.1,
        })
    }

    fn tar(&mut self, node: &Node, r: &mut dyn Read, depth: usize) {
        let mut t = tar::TarReader::new(r);
        // Bounded by the member budget and by the stream (each header consumes 512 bytes).
        loop {
            let m = match t.next_member() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    if !self.budget.tripped() {
                        self.error(&node.display, format!("archive not read to its end: {e}"));
                    }
                    break;
                }
            };
            if !m.regular {
                continue;
            }
            let Some(member) = self.member(node, &m.path, m.size, m.mode, (m.uid, m.gid)) else {
                break;
            };
            let errors = self.out.errors.len();
            self.stream(&member, &mut t.data(), depth.saturating_add(1), None);
            if self.budget.tripped() || self.out.errors.len() > errors {
                // The stream under the archive failed: the next header cannot be trusted.
                if !self.budget.tripped() {
                    self.error(
                        &node.display,
                        "archive not read past the member that failed".into(),
                    );
                }
                break;
            }
        }
    }

    /// A zip: opened by offset where its bytes can be read so (`span`), otherwise read into
    /// memory within the tree's allowance.
    fn zip(&mut self, node: &Node, r: &mut dyn Read, depth: usize, span: Option<Span<'_, '_>>) {
        if let Some(span) = span {
            self.zip_at(node, span, depth);
            return;
        }
        let allowance = self
            .budget
            .limits
            .max_zip_in_memory
            .saturating_sub(self.budget.in_memory());
        let mut data = Vec::new();
        if let Err(e) = r.take(allowance.saturating_add(1)).read_to_end(&mut data) {
            if !self.budget.tripped() {
                self.error(&node.display, format!("not scanned: read error: {e}"));
            }
            return;
        }
        let held = data.len() as u64;
        if held > allowance || !self.budget.hold(held) {
            let what = if depth == 0 {
                "zip archive on a filesystem read only as a stream"
            } else {
                "zip archive inside compressed content (a deflated member or a compressed file)"
            };
            self.error(
                &node.display,
                format!(
                    "{what}: larger than the {} MiB that can be held in memory to open it, its \
                     members were not opened (its bytes were scanned as they are)",
                    self.budget.limits.max_zip_in_memory >> 20
                ),
            );
            let mut all = Cursor::new(data).chain(r);
            self.plain(node, &mut all, depth);
            return;
        }
        let mut bytes = Cursor::new(data.as_slice());
        let shared = Shared::new(&mut bytes, held);
        self.zip_at(node, shared.all(), depth);
        self.budget.release(held);
    }

    /// The members of the zip in `span`, each read from its offset; a stored member's own
    /// span is handed on, so a zip stored in it is opened by offset too.
    fn zip_at(&mut self, node: &Node, span: Span<'_, '_>, depth: usize) {
        let mut archive = match Zip::open(span.window()) {
            Ok(a) => a,
            Err(e) => {
                self.error(
                    &node.display,
                    format!(
                        "zip archive cannot be opened ({e}): its bytes were scanned as they are"
                    ),
                );
                self.plain(node, &mut span.window(), depth);
                return;
            }
        };
        for i in 0..archive.len() {
            if self.budget.tripped() {
                return;
            }
            let name = archive.name(i);
            let (m, mut f) = match archive.member(i) {
                Ok(x) => x,
                Err(e) => {
                    let at = format!("{}!{name}", node.display);
                    self.error(&at, format!("zip member not opened: {e}"));
                    continue;
                }
            };
            if !m.file {
                continue;
            }
            let Some(member) = self.member(node, &m.name, m.size, m.mode, (0, 0)) else {
                return;
            };
            let inner = m.stored_at.and_then(|at| span.sub(at, m.compressed));
            let mut expanding = Expanding {
                inner: &mut f,
                budget: self.budget,
                input: InputSize::Fixed(m.compressed.max(1)),
                out: 0,
                at: member.display.clone(),
            };
            self.stream(&member, &mut expanding, depth.saturating_add(1), inner);
        }
    }

    fn report_trip(&mut self, trip: Trip, file: &str) {
        let l = self.budget.limits;
        match trip {
            Trip::Ratio { at, out, input } => {
                self.error(
                    &at,
                    format!(
                        "decompression bomb: {out} bytes out of {input} (more than {}:1): not \
                         followed, the rest of {file} was not scanned",
                        l.max_ratio
                    ),
                );
                self.out.findings.push(Finding {
                    path_bytes: None,
                    rule: BOMB_RULE.into(),
                    severity: Severity::Low,
                    title: "Decompression bomb inside a file".into(),
                    volume: String::new(),
                    path: Some(at.clone()),
                    line: None,
                    offset: None,
                    evidence: format!(
                        "expands more than {}:1 ({out} bytes from {input})",
                        l.max_ratio
                    ),
                    fingerprint: format!(
                        "sha256:{}",
                        hex::encode(Sha256::digest(format!("{BOMB_RULE}:{at}")))
                    ),
                    remediation: "Remove the file, or check why an image carries a \
                                  decompression bomb; what it holds was not scanned."
                        .into(),
                    secret: None,
                    provenance: None,
                });
            }
            Trip::Expanded { at } => self.error(
                &at,
                format!(
                    "archive content expanded past {} MiB: the rest of {file} was not scanned",
                    l.max_expanded >> 20
                ),
            ),
            Trip::Members { at } => self.error(
                &at,
                format!(
                    "more than {} archive members in {file}: the rest were not scanned",
                    l.max_members
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const KEY_ID: &str = "AKIACPCZW4FLKEW5GOHI";
    /// A SHA-512-crypt hash of the public default password `password` (found by the
    /// default-password check, which then reports it instead of the plain hash finding).
    const SHADOW: &str = "root:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/:19000:0:99999:7:::\n";

    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = vec![];
        for (name, data) in members {
            out.extend(super::tar::tests::header(
                name.as_bytes(),
                data.len() as u64,
                b'0',
            ));
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.extend([0u8; 1024]);
        out
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bz(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(vec![], bzip2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(vec![]));
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn scan_with(path: &str, data: &[u8], limits: &Limits) -> Scanned {
        let det = Detector::builtin().unwrap();
        let meta = FileMeta {
            path: path.into(),
            path_bytes: None,
            size: data.len() as u64,
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        scan_file(
            &meta,
            &mut &data[..],
            &det,
            &DetectOptions::default(),
            limits,
        )
    }

    fn scan(path: &str, data: &[u8]) -> Scanned {
        scan_with(path, data, &Limits::default())
    }

    fn hits(s: &Scanned) -> Vec<(String, String)> {
        let mut v: Vec<_> = s
            .findings
            .iter()
            .map(|f| (f.rule.clone(), f.path.clone().unwrap_or_default()))
            .collect();
        v.sort();
        v
    }

    fn aws() -> Vec<u8> {
        format!("export AWS_ACCESS_KEY_ID={KEY_ID}\n").into_bytes()
    }

    #[test]
    fn members_of_a_tar_gz_are_scanned_and_checked_by_their_inner_path() {
        let t = tar(&[("./etc/shadow", SHADOW.as_bytes()), ("opt/env.sh", &aws())]);
        let s = scan("/backup/root.tar.gz", &gz(&t));
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            hits(&s),
            [
                (
                    "aws-access-key-id".into(),
                    "/backup/root.tar.gz!opt/env.sh".into()
                ),
                (
                    "shadow-default-password".into(),
                    "/backup/root.tar.gz!./etc/shadow".into()
                ),
            ]
        );
    }

    #[test]
    fn nested_zip_tar_gz_paths() {
        let inner = gz(&tar(&[("etc/key", &aws())]));
        let z = zip(&[("inner.tar.gz", &inner), ("dir/plain.txt", b"nothing")]);
        let s = scan("/a.zip", &z);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            hits(&s),
            [(
                "aws-access-key-id".into(),
                "/a.zip!inner.tar.gz!etc/key".into()
            )]
        );
    }

    #[test]
    fn compressed_single_files_keep_their_path_and_are_detected_by_magic() {
        let s = scan("/var/log/no-extension", &bz(&aws()));
        assert_eq!(
            hits(&s),
            [("aws-access-key-id".into(), "/var/log/no-extension".into())]
        );
        // A compressed shadow backup is checked as /etc/shadow.
        let s = scan("/etc/shadow.gz", &gz(SHADOW.as_bytes()));
        assert_eq!(
            hits(&s),
            [("shadow-default-password".into(), "/etc/shadow.gz".into())]
        );
    }

    #[test]
    fn a_bomb_is_reported_and_not_followed() {
        let zeros = vec![0u8; 40 << 20];
        let s = scan("/tmp/bomb.gz", &gz(&zeros));
        assert!(
            s.errors
                .iter()
                .any(|e| e.message.contains("decompression bomb"))
        );
        assert_eq!(hits(&s), [(BOMB_RULE.into(), "/tmp/bomb.gz".into())]);
        assert!(s.bytes < 20 << 20, "stopped early: {}", s.bytes);
    }

    #[test]
    fn depth_members_and_size_bounds_are_errors() {
        let mut data = aws();
        for _ in 0..4 {
            data = gz(&data);
        }
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let s = scan_with("/deep.gz", &data, &limits);
        assert!(s.errors.iter().any(|e| e.message.contains("nested deeper")));

        let t = tar(&[("a", b"x"), ("b", b"y"), ("c", &aws())]);
        let limits = Limits {
            max_members: 2,
            ..Limits::default()
        };
        let s = scan_with("/m.tar", &t, &limits);
        assert!(s.errors.iter().any(|e| e.message.contains("more than 2")));

        let limits = Limits {
            max_expanded: 1000,
            ..Limits::default()
        };
        let s = scan_with("/big.gz", &gz(&vec![b'a'; 5000]), &limits);
        assert!(s.errors.iter().any(|e| e.message.contains("expanded past")));
    }

    #[test]
    fn a_zip_too_big_for_memory_is_scanned_as_bytes_and_reported() {
        let z = zip(&[("a.txt", &aws())]);
        let limits = Limits {
            max_zip_in_memory: 10,
            ..Limits::default()
        };
        let s = scan_with("/a.jar", &z, &limits);
        assert!(
            s.errors
                .iter()
                .any(|e| e.message.contains("held in memory"))
        );
    }

    fn zip_with(members: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(vec![]));
        for (name, data, method) in members {
            let o = zip::write::SimpleFileOptions::default().compression_method(*method);
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn scan_at(path: &str, data: &[u8], limits: &Limits) -> Scanned {
        let det = Detector::builtin().unwrap();
        let meta = FileMeta {
            path: path.into(),
            path_bytes: None,
            size: data.len() as u64,
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        let mut file = Cursor::new(data);
        scan_file_at(&meta, &mut file, &det, &DetectOptions::default(), limits)
    }

    /// With random access, the memory allowance does not decide: a zip far larger than it is
    /// opened by offset, and a zip stored inside it too (a jar in a Spring Boot fat jar).
    #[test]
    fn a_zip_larger_than_memory_is_opened_by_offset_with_stored_zips_in_it() {
        use zip::CompressionMethod::{Deflated, Stored};
        let inner = zip_with(&[("application.properties", &aws(), Deflated)]);
        let outer = zip_with(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n", Deflated),
            ("BOOT-INF/lib/inner.jar", &inner, Stored),
            ("BOOT-INF/classes/env.sh", &aws(), Deflated),
        ]);
        let limits = Limits {
            max_zip_in_memory: 10,
            ..Limits::default()
        };
        let s = scan_at("/srv/app.jar", &outer, &limits);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            hits(&s),
            [
                (
                    "aws-access-key-id".into(),
                    "/srv/app.jar!BOOT-INF/classes/env.sh".into()
                ),
                (
                    "aws-access-key-id".into(),
                    "/srv/app.jar!BOOT-INF/lib/inner.jar!application.properties".into()
                ),
            ]
        );
        // The same archive read as a stream is not opened, and says so.
        let s = scan_with("/srv/app.jar", &outer, &limits);
        assert!(hits(&s).is_empty());
        assert!(
            s.errors[0].message.contains("read only as a stream"),
            "{:?}",
            s.errors
        );
    }

    /// A zip deflated inside a zip has no offset to be read at: it is opened in memory within
    /// the allowance, and beyond it the error says what was not opened.
    #[test]
    fn a_deflated_zip_inside_a_zip_needs_memory_and_says_so_beyond_it() {
        use zip::CompressionMethod::Deflated;
        let inner = zip_with(&[("application.properties", &aws(), Deflated)]);
        let outer = zip_with(&[("lib/inner.jar", &inner, Deflated)]);
        let s = scan_at("/app.war", &outer, &Limits::default());
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            hits(&s),
            [(
                "aws-access-key-id".into(),
                "/app.war!lib/inner.jar!application.properties".into()
            )]
        );
        let limits = Limits {
            max_zip_in_memory: 10,
            ..Limits::default()
        };
        let s = scan_at("/app.war", &outer, &limits);
        assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
        assert_eq!(s.errors[0].path.as_deref(), Some("/app.war!lib/inner.jar"));
        assert!(s.errors[0].message.contains("inside compressed content"));
    }

    /// Bounds hold by offset as in memory: depth, members, ratio.
    #[test]
    fn bounds_hold_for_zips_opened_by_offset() {
        use zip::CompressionMethod::{Deflated, Stored};
        let mut z = zip_with(&[("key", &aws(), Deflated)]);
        for i in 0..4 {
            z = zip_with(&[(&format!("l{i}.zip"), &z, Stored)]);
        }
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let s = scan_at("/deep.zip", &z, &limits);
        assert!(s.errors.iter().any(|e| e.message.contains("nested deeper")));
        let bomb = zip_with(&[("zeros", &vec![0u8; 40 << 20], Deflated)]);
        let s = scan_at("/bomb.zip", &bomb, &Limits::default());
        assert!(
            s.errors
                .iter()
                .any(|e| e.message.contains("decompression bomb"))
        );
        assert_eq!(hits(&s), [(BOMB_RULE.into(), "/bomb.zip!zeros".into())]);
        let many = zip_with(&[
            ("a", b"1", Stored),
            ("b", b"2", Stored),
            ("c", b"3", Stored),
        ]);
        let limits = Limits {
            max_members: 2,
            ..Limits::default()
        };
        let s = scan_at("/m.zip", &many, &limits);
        assert!(s.errors.iter().any(|e| e.message.contains("more than 2")));
    }

    #[test]
    fn corrupt_archives_are_errors_with_what_was_found_kept() {
        let mut t = gz(&tar(&[("a.env", &aws()), ("b", &[b'z'; 4096])]));
        let n = t.len();
        t.truncate(n - 20);
        let s = scan("/t.tgz", &t);
        assert_eq!(
            hits(&s),
            [("aws-access-key-id".into(), "/t.tgz!a.env".into())]
        );
        assert!(!s.errors.is_empty());
        // Garbage after a gzip magic.
        let s = scan("/x", b"\x1f\x8b\x08\x00garbage");
        assert!(!s.errors.is_empty());
    }

    #[test]
    fn plain_files_are_unchanged() {
        let s = scan("/etc/env", &aws());
        assert!(s.errors.is_empty());
        assert_eq!(hits(&s), [("aws-access-key-id".into(), "/etc/env".into())]);
        assert_eq!(s.bytes, aws().len() as u64);
    }

    #[test]
    fn paths() {
        assert_eq!(member_check_path("./etc/shadow"), "/etc/shadow");
        assert_eq!(member_check_path("/./etc/x"), "/etc/x");
        assert_eq!(strip_compression_suffix("/a/b.tgz"), "/a/b.tar");
        assert_eq!(strip_compression_suffix("/etc/shadow.gz"), "/etc/shadow");
        assert_eq!(strip_compression_suffix("/x/.gz"), "/x/.gz");
    }
}
