//! A hostile image cannot forge the report (issue 25): files whose names carry terminal escape
//! sequences, line breaks, a bidi override, bytes that are not UTF-8, bell and backspace, 255
//! bytes, or only invisible characters, each holding a freshly generated fake GitHub token, in
//! ext4 and XFS images the kernel wrote (loop mount). The text report shows every name as
//! visible escapes, one finding per line, with amiscan's own summary line; JSON gives each file
//! a distinct path that maps back to its exact bytes; SARIF percent-encodes the exact bytes.
//! And a property test over random byte strings: the text rendering is printable and the JSON
//! rendering round-trips to the same bytes.

use crate::common::{run, workdir};
use amiscan::model::escape::{is_hidden, json_safe, unescape, visible};
use amiscan::model::{Finding, Report, ScanMode, Severity, TargetReport, exact_path, path_fields};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

/// xorshift64*: a small seeded generator (the seed is printed by each test that uses it).
struct Rng(u64);

impl Rng {
    fn fresh() -> Rng {
        use std::hash::{BuildHasher, RandomState};
        Rng(RandomState::new().hash_one(std::process::id()) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A fake GitHub personal access token: `ghp_`, 30 random letters and digits and their CRC32
/// in base62 (6 characters), the shape of a real one.
fn fake_token(rng: &mut Rng) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body: String = (0..30)
        .map(|_| char::from(BASE62[rng.below(BASE62.len())]))
        .collect();
    let mut n = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(body.as_bytes());
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    format!("ghp_{body}{}", String::from_utf8_lossy(&sum))
}

/// The hostile names of the issue, a 255-byte one and one made only of invisible characters.
fn hostile_names() -> Vec<Vec<u8>> {
    let mut long = b"long-\x1b[31m-".to_vec();
    long.resize(250, b'x');
    long.extend_from_slice(b"\xff.txt");
    assert_eq!(long.len(), 255);
    vec![
        b"a\x1b[2K\x1b[1A\rinnocent.txt".to_vec(),
        b"line\nbreak\nsummary: no findings; scan complete".to_vec(),
        "report\u{202e}txt.pem".as_bytes().to_vec(),
        b"bad\xffname".to_vec(),
        b"bad\xfename".to_vec(),
        b"bell\x07\x08\x08\tname".to_vec(),
        long,
        "\u{200b}\u{200d}\u{2066}\u{feff}".as_bytes().to_vec(),
    ]
}

/// Make a `fs` (`ext4` or `xfs`) image at `img` whose `/drop/` holds one file per name, each
/// holding `token = <its token>`, written by the kernel through a loop mount.
fn make_image(dir: &Path, fs: &str, files: &[(Vec<u8>, String)]) -> std::path::PathBuf {
    let img = dir.join(format!("{fs}.img"));
    let script = r#"
        fs=$1; img=$2; shift 2
        m=$(mktemp -d)
        cleanup() { umount "$m" 2>/dev/null || true; rmdir "$m"; }
        trap cleanup EXIT
        if [ "$fs" = xfs ]; then truncate -s 320M "$img"; mkfs.xfs -q -f "$img"
        else truncate -s 32M "$img"; mkfs.ext4 -q -F "$img"; fi
        mount -o loop "$img" "$m"
        mkdir "$m/drop"
        while [ $# -gt 0 ]; do printf 'token = %s\n' "$2" > "$m/drop/$1"; shift 2; done
        find "$m/drop" -mindepth 1 -printf x | wc -c
        umount "$m"
    "#;
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script, "mkimg", fs])
        .arg(&img);
    for (name, token) in files {
        cmd.arg(OsStr::from_bytes(name)).arg(token);
    }
    let listed = run(&mut cmd);
    assert_eq!(
        listed.trim(),
        files.len().to_string(),
        "files the kernel wrote"
    );
    img
}

fn amiscan(img: &Path, format: &str) -> (i32, Vec<u8>) {
    let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--no-progress", "--format", format])
        .arg(img)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// A character a terminal would act on or hide instead of showing.
fn raw_control(c: char) -> bool {
    c != '\n' && is_hidden(c)
}

fn check_image(fs: &str) {
    let mut rng = Rng::fresh();
    let dir = workdir("hostile_names", fs);
    let files: Vec<(Vec<u8>, String)> = hostile_names()
        .into_iter()
        .map(|n| (n, fake_token(&mut rng)))
        .collect();
    let img = make_image(&dir, fs, &files);

    // Text: printable, one line per finding, amiscan's own summary last.
    let (code, text) = amiscan(&img, "text");
    assert_eq!(code, 1, "critical findings exit 1");
    let text = String::from_utf8(text).expect("the text report is UTF-8 whatever the names");
    let bad: Vec<char> = text.chars().filter(|&c| raw_control(c)).collect();
    assert!(
        bad.is_empty(),
        "raw characters from the image: {bad:?}\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    for (name, _) in &files {
        let mut shown = b"/drop/".to_vec();
        shown.extend_from_slice(name);
        let shown = format!(":{}", visible(&shown));
        let with: Vec<&&str> = lines.iter().filter(|l| l.contains(&shown)).collect();
        assert_eq!(with.len(), 1, "one finding line for {shown}:\n{text}");
        assert!(
            with[0].starts_with("  github-") && with[0].contains("ghp_"),
            "{}",
            with[0]
        );
    }
    let drop_lines = lines.iter().filter(|l| l.contains("/drop/")).count();
    assert_eq!(drop_lines, files.len(), "{text}");
    let summaries: Vec<&&str> = lines.iter().filter(|l| l.starts_with("summary:")).collect();
    assert_eq!(
        summaries.len(),
        1,
        "only amiscan writes a summary line:\n{text}"
    );
    assert_eq!(lines.last(), summaries.first().copied());
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with(&format!("summary: {} findings", files.len())),
        "{text}"
    );

    // JSON: distinct paths, each mapping back to its exact bytes.
    let (_, json) = amiscan(&img, "json");
    let json_text = String::from_utf8(json).unwrap();
    assert!(
        !json_text.chars().any(|c| !c.is_ascii() && is_hidden(c)),
        "invisible characters are \\u escapes in JSON"
    );
    let v: Value = serde_json::from_str(&json_text).unwrap();
    let findings = v["targets"][0]["findings"].as_array().unwrap();
    let mut by_bytes: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut paths = BTreeSet::new();
    for f in findings {
        let Some(p) = f["path"].as_str() else {
            continue;
        };
        if !p.starts_with("/drop/") {
            continue;
        }
        assert!(
            paths.insert(p.to_string()),
            "two files share the path {p:?}"
        );
        let exact = exact_path(p, f["path_bytes"].as_str());
        *by_bytes.entry(exact).or_default() += 1;
    }
    let want: BTreeMap<Vec<u8>, usize> = files
        .iter()
        .map(|(n, _)| ([b"/drop/".as_slice(), n].concat(), 1))
        .collect();
    assert_eq!(by_bytes, want, "{json_text}");
    // Only the names that are not UTF-8 carry path_bytes.
    let with_bytes = findings
        .iter()
        .filter(|f| f["path_bytes"].is_string())
        .count();
    let not_utf8 = files
        .iter()
        .filter(|(n, _)| std::str::from_utf8(n).is_err())
        .count();
    assert_eq!(with_bytes, not_utf8);

    // SARIF: URIs percent-encode the exact bytes.
    let (_, sarif) = amiscan(&img, "sarif");
    let s: Value = serde_json::from_slice(&sarif).unwrap();
    let uris: BTreeSet<String> = s["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .map(str::to_string)
        })
        .filter(|u| u.contains("/drop/"))
        .collect();
    assert_eq!(uris.len(), files.len(), "{uris:?}");
    assert!(
        uris.iter().any(|u| u.ends_with("/drop/bad%FFname")),
        "{uris:?}"
    );
    assert!(
        uris.iter().any(|u| u.ends_with("/drop/bad%FEname")),
        "{uris:?}"
    );
    assert!(
        uris.iter()
            .any(|u| u.ends_with("/drop/report%E2%80%AEtxt.pem")),
        "{uris:?}"
    );
}

#[test]
fn hostile_names_on_ext4_cannot_forge_the_report() {
    check_image("ext4");
}

#[test]
fn hostile_names_on_xfs_cannot_forge_the_report() {
    check_image("xfs");
}

/// Bytes biased towards what breaks renderings: controls, backslashes and escape look-alikes,
/// bytes that are not UTF-8, bidi and invisible characters, ordinary text.
fn random_name(rng: &mut Rng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"\\",
        b"\\x",
        b"\\u{",
        b"}",
        b"x",
        b"ff",
        b"\x1b[2K",
        b"\n",
        b"\r",
        b"\t",
        b"\x00",
        b"\x7f",
        b"\xff",
        b"\xfe",
        b"\x80",
        b"\xc3",
        b"\xe2\x80",
        b"\xe2\x80\xae",
        b"\xe2\x81\xa6",
        b"\xef\xbb\xbf",
        b"\xc2\x85",
        b"\xf3\xa0\x81\x81",
        b"\xf0\x9f\x94\x91",
        b"a",
        b"/",
        b" ",
        b"summary: no findings",
        "é".as_bytes(),
        "日".as_bytes(),
    ];
    let n = rng.below(12);
    let mut out = Vec::new();
    for _ in 0..n {
        if rng.below(4) == 0 {
            out.push((rng.next() & 0xff) as u8);
        } else {
            out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
    }
    out
}

fn finding_at(path: &[u8]) -> Finding {
    let (path, path_bytes) = path_fields(path);
    Finding {
        rule: "github-pat".into(),
        severity: Severity::Critical,
        title: "t".into(),
        volume: "disk".into(),
        path: Some(path),
        path_bytes,
        line: Some(1),
        offset: Some(0),
        evidence: "ghp_…[40 chars]".into(),
        fingerprint: "sha256:0".into(),
        remediation: "r".into(),
        secret: None,
        provenance: None,
    }
}

#[test]
fn any_name_renders_printable_in_text_and_round_trips_through_json() {
    let mut rng = Rng::fresh();
    println!("seed {:#x}", rng.0);
    let mut seen_invalid = 0;
    for _ in 0..20_000 {
        let name = random_name(&mut rng);
        seen_invalid += usize::from(std::str::from_utf8(&name).is_err());
        // The escape itself: printable and reversible.
        let shown = visible(&name);
        assert!(!shown.chars().any(is_hidden), "{name:x?} -> {shown:?}");
        assert_eq!(
            unescape(&shown).as_deref(),
            Some(name.as_slice()),
            "{shown:?}"
        );

        // Through the real writers: one finding line, nothing raw; JSON gives the bytes back.
        let report = Report {
            version: 1,
            tool: "amiscan test".into(),
            targets: vec![TargetReport {
                target: "t.img".into(),
                mode: ScanMode::Full,
                complete: true,
                findings: vec![finding_at(&name)],
                ..TargetReport::default()
            }],
        };
        let mut text = Vec::new();
        amiscan::report::text::write_text(&report, &mut text, false, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(!text.chars().any(raw_control), "{name:x?}:\n{text}");
        assert_eq!(text.lines().count(), 5, "{name:x?}:\n{text}");
        assert!(
            text.lines()
                .last()
                .unwrap()
                .starts_with("summary: 1 findings")
        );

        let mut json = Vec::new();
        amiscan::report::write_json(&report, &mut json).unwrap();
        let json = String::from_utf8(json).unwrap();
        assert_eq!(json_safe(&json), json.as_str(), "already safe");
        let back: Report = serde_json::from_str(&json).unwrap();
        let f = &back.targets[0].findings[0];
        assert_eq!(f.exact_path().as_deref(), Some(name.as_slice()), "{json}");
    }
    assert!(
        seen_invalid > 1000,
        "the generator makes names that are not UTF-8"
    );
}
