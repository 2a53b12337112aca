//! End-to-end tests on real disk images.
//!
//! `testdata/build-images.sh` builds GPT, MBR, 4K-sector, bare-filesystem and deliberately
//! corrupt images from the trees in `testdata/trees` (once per test binary, into
//! `$CARGO_TARGET_TMPDIR/testimages`). Each test runs the real `amiscan` binary on them and checks
//! the JSON report against `testdata/expected/<image>.txt` (one `<rule> <volume> <path>` line per
//! finding) and against the secrets planted in the staging trees the script leaves behind.
//!
//! The image build needs e2fsprogs, gdisk and fdisk (util-linux) but no root: a failing build
//! fails every test with the script's stderr, it never skips.

use crate::common::testdata;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every rule id of the contract.
const RULE_IDS: &[&str] = &[
    "pem-private-key",
    "pem-encrypted-private-key",
    "openssh-private-key",
    "putty-private-key",
    "aws-access-key-id",
    "aws-access-key-pair",
    "aws-example-access-key",
    "ssh-host-private-key",
    "ssh-authorized-keys",
    "shell-history",
    "shadow-password-hash",
    "shadow-empty-password",
];

const CLEAN_IMAGES: &[&str] = &["clean-gpt", "clean-mbr", "clean-bare"];

/// Words an error message about a structure that runs past the end of the image should contain
/// at least one of.
const PAST_END_WORDS: &[&str] = &[
    "end of", "past", "truncat", "beyond", "short", "eof", "outside", "exceed",
];

// ------------------------------------------------------------------------------------------------
// Image build (once per test binary)
// ------------------------------------------------------------------------------------------------

/// Directory holding the built images, `staging/` and `layout.txt`.
fn images() -> &'static Path {
    crate::common::built_images("testimages")
}

fn image(name: &str) -> PathBuf {
    let p = images().join(format!("{name}.img"));
    assert!(
        p.is_file(),
        "build-images.sh did not produce {}",
        p.display()
    );
    p
}

fn staging(tree: &str) -> PathBuf {
    images().join("staging").join(tree)
}

// ------------------------------------------------------------------------------------------------
// Running amiscan
// ------------------------------------------------------------------------------------------------

struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Context for assertion messages.
    fn ctx(&self) -> String {
        format!(
            "`amiscan {}` exited {}\n--- stderr ---\n{}\n--- stdout (first 4000 bytes) ---\n{}",
            self.args.join(" "),
            self.code,
            self.stderr,
            self.stdout.chars().take(4000).collect::<String>()
        )
    }
}

fn amiscan<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(&args)
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .output()
        .expect("cannot run the amiscan binary");
    let run = Run {
        args,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && run.code != 101,
        "amiscan panicked\n{}",
        run.ctx()
    );
    assert!(
        run.code >= 0,
        "amiscan was killed by a signal\n{}",
        run.ctx()
    );
    run
}

/// `amiscan scan --format json [extra..] IMAGE`, parsed.
fn scan_json(img: &Path, extra: &[&str]) -> (Run, Value) {
    let mut args: Vec<&OsStr> = vec!["scan".as_ref(), "--format".as_ref(), "json".as_ref()];
    args.extend(extra.iter().map(|a| OsStr::new(*a)));
    args.push(img.as_os_str());
    let run = amiscan(args);
    let v = parse_report(&run.stdout, &run);
    (run, v)
}

fn parse_report(json: &str, run: &Run) -> Value {
    let v: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("report is not JSON: {e}\n{}", run.ctx()));
    assert_eq!(v["version"], 1, "report version\n{}", run.ctx());
    let targets = v["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no `targets` array\n{}", run.ctx()));
    assert_eq!(targets.len(), 1, "one target per image\n{}", run.ctx());
    v
}

fn target(v: &Value) -> &Value {
    &v["targets"][0]
}

fn findings(t: &Value) -> &[Value] {
    t["findings"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn volumes(t: &Value) -> &[Value] {
    t["volumes"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn volume<'a>(t: &'a Value, id: &str) -> Option<&'a Value> {
    volumes(t).iter().find(|v| v["id"] == id)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Findings as sorted `rule volume path` lines (path `-` when absent).
fn finding_lines(t: &Value) -> Vec<String> {
    let mut lines: Vec<String> = findings(t)
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap_or("-");
            format!("{} {} {}", s(&f["rule"]), s(&f["volume"]), path)
        })
        .collect();
    lines.sort();
    lines
}

/// `testdata/expected/<name>.txt`, sorted (blank lines and `#` comments ignored).
fn expected(name: &str) -> Vec<String> {
    let path = testdata().join("expected").join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

/// Multiset difference `a - b`.
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for l in b {
        *left.entry(l).or_default() += 1;
    }
    let mut out = Vec::new();
    for l in a {
        match left.get_mut(l.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(l.clone()),
        }
    }
    out
}

fn assert_same_findings(what: &str, actual: &[String], expected: &[String], run: &Run) {
    let missing = minus(expected, actual);
    let unexpected = minus(actual, expected);
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{what}: findings differ from the expected list\n  missing:\n    {}\n  unexpected:\n    {}\n{}",
        missing.join("\n    "),
        unexpected.join("\n    "),
        run.ctx()
    );
}

/// Every error message of a target: target-level and per volume (prefixed with the volume id).
fn error_messages(t: &Value) -> Vec<String> {
    let mut out: Vec<String> = t["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("target: {}", s(&e["message"])))
        .collect();
    for v in volumes(t) {
        for e in v["errors"].as_array().into_iter().flatten() {
            out.push(format!("{}: {}", s(&v["id"]), s(&e["message"])));
        }
    }
    out
}

/// Target-level warnings (not in the v1 contract of the brief; searched for keywords only).
fn warning_messages(t: &Value) -> Vec<String> {
    t["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("warning: {}", s(&e["message"])))
        .collect()
}

const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];

fn rank(sev: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == sev)
        .unwrap_or_else(|| panic!("unknown severity `{sev}`"))
}

/// Exit codes allowed for a report scanned with the default `--fail-on high`: 1 when a finding
/// is at or above high (a finding outranks incompleteness: the gate must fail on a leak even when
/// part of the image was unreadable), else 3 when the scan is incomplete, else 0.
fn allowed_exits(t: &Value) -> Vec<i32> {
    let above = findings(t)
        .iter()
        .any(|f| rank(s(&f["severity"])) >= rank("high"));
    match (above, t["complete"] == true) {
        (true, true) => vec![1],
        (true, false) => vec![1],
        (false, false) => vec![3],
        (false, true) => vec![0],
    }
}

fn mentions_any(msg: &str, words: &[&str]) -> bool {
    let m = msg.to_lowercase();
    words.iter().any(|w| m.contains(w))
}

/// Findings of a damaged 2-volume image that the intact `leaky-2vol-gpt` image does not have (as
/// a set: a partly readable volume may repeat nothing but what is there). A finding without a
/// path (a raw scan of a volume whose filesystem is gone) counts if its rule is expected on the
/// same volume.
fn not_in_intact_image(t: &Value) -> Vec<String> {
    let intact: HashSet<String> = expected("leaky-2vol-gpt").into_iter().collect();
    let rule_vol: HashSet<String> = intact
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
        .collect();
    finding_lines(t)
        .into_iter()
        .filter(|l| match l.strip_suffix(" -") {
            Some(rv) => !rule_vol.contains(rv),
            None => !intact.contains(l),
        })
        .collect()
}

/// `layout.txt`: filesystem volumes the script put into each image.
struct Placed {
    volume: String,
    offset: u64,
    size: u64,
    filesystem: String,
}

fn layout(name: &str) -> Vec<Placed> {
    let text = std::fs::read_to_string(images().join("layout.txt")).expect("layout.txt");
    let file = format!("{name}.img");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[0] == file).then(|| Placed {
                volume: f[1].to_string(),
                offset: f[2].parse().unwrap(),
                size: f[3].parse().unwrap(),
                filesystem: f[4].to_string(),
            })
        })
        .collect()
}

/// A volume the script built as a healthy filesystem was found where it was put and fully scanned.
fn assert_healthy_volume(t: &Value, p: &Placed, run: &Run) {
    let v = volume(t, &p.volume)
        .unwrap_or_else(|| panic!("volume {} missing from the report\n{}", p.volume, run.ctx()));
    let id = &p.volume;
    assert_eq!(
        v["offset"].as_u64(),
        Some(p.offset),
        "offset of {id}\n{}",
        run.ctx()
    );
    assert_eq!(
        v["size"].as_u64(),
        Some(p.size),
        "size of {id}\n{}",
        run.ctx()
    );
    assert_eq!(
        s(&v["filesystem"]),
        p.filesystem,
        "filesystem of {id}\n{}",
        run.ctx()
    );
    assert_eq!(s(&v["status"]), "scanned", "status of {id}\n{}", run.ctx());
    assert!(
        v["errors"].as_array().is_none_or(|e| e.is_empty()),
        "healthy volume {id} has errors\n{}",
        run.ctx()
    );
    assert!(
        v["files_scanned"].as_u64().unwrap_or(0) > 0,
        "{id} scanned no file\n{}",
        run.ctx()
    );
}

/// The whole of a healthy image: complete, every filesystem placed by the script scanned.
fn assert_healthy_image(name: &str, t: &Value, run: &Run) {
    assert_eq!(
        t["complete"],
        true,
        "{name} should scan completely\n{}",
        run.ctx()
    );
    assert!(
        error_messages(t).is_empty(),
        "{name} has errors\n{}",
        run.ctx()
    );
    let placed = layout(name);
    assert!(!placed.is_empty(), "layout.txt lists no volume for {name}");
    for p in &placed {
        assert_healthy_volume(t, p, run);
    }
    for v in volumes(t) {
        let status = s(&v["status"]);
        assert!(
            ["scanned", "no_filesystem", "container"].contains(&status),
            "volume {} of {name} is {status}\n{}",
            v["id"],
            run.ctx()
        );
    }
}

fn check_leaky_image(name: &str) {
    let (run, v) = scan_json(&image(name), &[]);
    let t = target(&v);
    assert_same_findings(name, &finding_lines(t), &expected(name), &run);
    assert_healthy_image(name, t, &run);
    assert_eq!(
        run.code,
        1,
        "findings at or above high must exit 1\n{}",
        run.ctx()
    );
    // The root volume read all of /var/log/big.log (> 2 MiB).
    let big = std::fs::metadata(staging("leaky").join("var/log/big.log"))
        .unwrap()
        .len();
    let root = layout(name).into_iter().max_by_key(|p| p.size).unwrap();
    let bytes = volume(t, &root.volume).unwrap()["bytes_scanned"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        bytes >= big,
        "{name} {}: bytes_scanned {bytes} < big.log's {big}\n{}",
        root.volume,
        run.ctx()
    );
}

// ------------------------------------------------------------------------------------------------
// Planted secrets, read back from the staging trees
// ------------------------------------------------------------------------------------------------

struct Secret {
    label: String,
    /// Text that must never appear in a report without --show-secrets.
    value: String,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            walk(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

/// Bodies of the PEM / OpenSSH private key blocks in a text.
fn private_key_bodies(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") && line.ends_with("PRIVATE KEY-----") {
            body = Some(String::new());
        } else if line.starts_with("-----END ") {
            if let Some(b) = body.take().filter(|b| b.len() >= 64) {
                out.push(b);
            }
        } else if let Some(b) = body.as_mut().filter(|_| !line.contains(':')) {
            b.push_str(line); // skips Proc-Type: / DEK-Info: headers
        }
    }
    out
}

/// The secrets planted in a staging tree: private key bodies (minus their first 16 characters,
/// the DER/format preamble an evidence string may quote), password hashes, and AWS secret access
/// keys.
fn planted_secrets(tree: &Path) -> Vec<Secret> {
    let mut files = Vec::new();
    walk(tree, &mut files);
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        if bytes.contains(&0) {
            continue; // binaries carry bare headers only
        }
        let text = String::from_utf8_lossy(&bytes);
        let rel = f.strip_prefix(tree).unwrap().display().to_string();
        for (i, body) in private_key_bodies(&text).into_iter().enumerate() {
            out.push(Secret {
                label: format!("private key #{i} in /{rel}"),
                value: body[16..].to_string(),
            });
        }
        if rel == "etc/shadow" {
            for line in text.lines() {
                let fields: Vec<&str> = line.split(':').collect();
                let hash = fields.get(1).copied().unwrap_or("").trim_start_matches('!');
                if hash.starts_with('$') {
                    let digest = hash.rsplit('$').next().unwrap();
                    out.push(Secret {
                        label: format!("password hash of {}", fields[0]),
                        value: digest.into(),
                    });
                }
            }
        }
        let lower = text.to_ascii_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find("aws_secret_access_key") {
            let start = from + i + "aws_secret_access_key".len();
            let rest = text[start..].trim_start_matches([' ', '\t', '=', ':', '"', '\'']);
            let value: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '+')
                .collect();
            if value.len() == 40 {
                out.push(Secret {
                    label: format!("AWS secret access key in /{rel}"),
                    value,
                });
            }
            from = start;
        }
    }
    out
}

/// 8-byte windows that are format boilerplate rather than secret material: those of every
/// public-key file in the trees (key type names, exponents, public keys) and those shared by two
/// or more planted secrets (OpenSSH and DER preambles, cipher names).
fn boilerplate_windows(trees: &[PathBuf], secrets: &[Secret]) -> HashSet<Vec<u8>> {
    let mut out = HashSet::new();
    for tree in trees {
        let mut files = Vec::new();
        walk(tree, &mut files);
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let public = name.ends_with(".pub")
                || name.ends_with(".crt")
                || name == "authorized_keys"
                || name == "known_hosts";
            if public {
                out.extend(std::fs::read(&f).unwrap().windows(8).map(<[u8]>::to_vec));
            }
        }
    }
    let mut owners: BTreeMap<&[u8], usize> = BTreeMap::new();
    for sec in secrets {
        let distinct: HashSet<&[u8]> = sec.value.as_bytes().windows(8).collect();
        for w in distinct {
            *owners.entry(w).or_default() += 1;
        }
    }
    out.extend(
        owners
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(w, _)| w.to_vec()),
    );
    out
}

/// Panics if any 8+ byte slice of a planted secret appears in `output`.
fn assert_reveals_no_secret(
    what: &str,
    output: &str,
    secrets: &[Secret],
    boilerplate: &HashSet<Vec<u8>>,
) {
    let seen: HashSet<&[u8]> = output.as_bytes().windows(8).collect();
    let mut leaks = Vec::new();
    for sec in secrets {
        if let Some(w) = sec
            .value
            .as_bytes()
            .windows(8)
            .find(|w| seen.contains(w) && !boilerplate.contains(*w))
        {
            leaks.push(format!(
                "{} (slice `{}`)",
                sec.label,
                String::from_utf8_lossy(w)
            ));
        }
    }
    assert!(
        leaks.is_empty(),
        "{what} reveals planted secrets:\n  {}",
        leaks.join("\n  ")
    );
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn env_file(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Tests: findings on healthy images
// ------------------------------------------------------------------------------------------------

#[test]
fn leaky_gpt_image_yields_exactly_the_expected_findings() {
    check_leaky_image("leaky-gpt");
}

#[test]
fn leaky_mbr_image_with_logical_partition_yields_exactly_the_expected_findings() {
    check_leaky_image("leaky-mbr");
}

#[test]
fn leaky_bare_filesystem_yields_exactly_the_expected_findings() {
    check_leaky_image("leaky-bare");
}

#[test]
fn leaky_gpt_with_4k_sectors_yields_exactly_the_expected_findings() {
    check_leaky_image("leaky-gpt4k");
}

#[test]
fn leaky_two_volume_gpt_image_yields_findings_on_both_volumes() {
    check_leaky_image("leaky-2vol-gpt");
}

#[test]
fn committed_demo_image_yields_the_expected_findings() {
    let demo = testdata().join("demo.img");
    let len = std::fs::metadata(&demo)
        .expect("testdata/demo.img is committed")
        .len();
    assert!(
        len <= 10 * 1024 * 1024,
        "testdata/demo.img is {len} bytes, keep it <= 10 MiB"
    );
    let (run, v) = scan_json(&demo, &[]);
    let t = target(&v);
    assert_same_findings(
        "testdata/demo.img",
        &finding_lines(t),
        &expected("demo"),
        &run,
    );
    assert_eq!(t["complete"], true, "{}", run.ctx());
    assert_eq!(run.code, 1, "{}", run.ctx());
}

#[test]
fn clean_images_yield_no_findings_and_exit_zero() {
    for name in CLEAN_IMAGES {
        for fail_on in [None, Some("info")] {
            let extra: Vec<&str> = fail_on.map(|f| vec!["--fail-on", f]).unwrap_or_default();
            let (run, v) = scan_json(&image(name), &extra);
            let t = target(&v);
            assert_same_findings(name, &finding_lines(t), &expected(name), &run);
            assert!(
                findings(t).is_empty(),
                "{name} must have no finding\n{}",
                run.ctx()
            );
            assert_healthy_image(name, t, &run);
            assert_eq!(run.code, 0, "a clean complete scan exits 0\n{}", run.ctx());
        }
    }
}

#[test]
fn gpt_volumes_carry_partition_names_and_bios_boot_has_no_filesystem() {
    for name in ["leaky-gpt", "leaky-gpt4k"] {
        let (run, v) = scan_json(&image(name), &[]);
        let t = target(&v);
        let p1 = volume(t, "p1").unwrap_or_else(|| panic!("{name}: no p1\n{}", run.ctx()));
        assert_eq!(
            s(&p1["status"]),
            "no_filesystem",
            "{name} p1 is a zeroed BIOS boot partition\n{}",
            run.ctx()
        );
        assert_eq!(
            p1["offset"].as_u64(),
            Some(1024 * 1024),
            "{name} p1 offset\n{}",
            run.ctx()
        );
        assert_eq!(
            p1["size"].as_u64(),
            Some(1024 * 1024),
            "{name} p1 size\n{}",
            run.ctx()
        );
        assert_eq!(p1["partition_name"], "BIOS boot", "{name}\n{}", run.ctx());
        let p2 = volume(t, "p2").unwrap();
        assert_eq!(
            p2["partition_name"],
            "cloudimg-rootfs",
            "{name}\n{}",
            run.ctx()
        );
        assert!(
            p2["partition_type"].is_string(),
            "{name}: p2 has a partition type\n{}",
            run.ctx()
        );
    }
}

#[test]
fn binary_carrying_bare_key_headers_is_not_a_finding() {
    for name in ["leaky-bare", "clean-bare"] {
        let (run, v) = scan_json(&image(name), &[]);
        let hits: Vec<String> = finding_lines(target(&v))
            .into_iter()
            .filter(|l| l.contains("/usr/bin/") || l.contains("/usr/share/doc/openssh-server/"))
            .collect();
        assert!(
            hits.is_empty(),
            "{name}: bare headers reported: {hits:?}\n{}",
            run.ctx()
        );
    }
}

#[test]
fn secrets_straddling_the_1mib_and_2mib_read_boundaries_are_found() {
    let big = std::fs::read(staging("leaky").join("var/log/big.log")).unwrap();
    assert!(big.len() > 2 * 1024 * 1024);
    let aws = env_file(&testdata().join("fragments/biglog-aws.env"));
    let id_at = find_bytes(&big, aws["BIGLOG_AWS_ID"].as_bytes()).unwrap() as u64;
    let secret_end = (find_bytes(&big, aws["BIGLOG_AWS_SECRET"].as_bytes()).unwrap() + 40) as u64;
    assert!(
        id_at < 1 << 20 && secret_end > 1 << 20,
        "fixture: the AWS pair must straddle 1 MiB"
    );
    let pem_at = find_bytes(&big, b"-----BEGIN RSA PRIVATE KEY-----").unwrap() as u64;
    let pem_end = find_bytes(&big, b"-----END RSA PRIVATE KEY-----").unwrap() as u64 + 30;
    assert!(
        pem_at < 2 << 20 && pem_end > 2 << 20,
        "fixture: the PEM key must straddle 2 MiB"
    );
    let line_of = |off: u64| big[..off as usize].iter().filter(|b| **b == b'\n').count() as u64 + 1;

    let (run, v) = scan_json(&image("leaky-bare"), &[]);
    for (rule, from, to) in [
        ("aws-access-key-pair", id_at, secret_end),
        ("pem-private-key", pem_at, pem_end),
    ] {
        let f = findings(target(&v))
            .iter()
            .find(|f| f["rule"] == rule && f["path"] == "/var/log/big.log")
            .unwrap_or_else(|| panic!("{rule} in /var/log/big.log not found\n{}", run.ctx()));
        if let Some(off) = f["offset"].as_u64() {
            assert!(
                (from..to).contains(&off),
                "{rule}: offset {off} outside {from}..{to}\n{}",
                run.ctx()
            );
        }
        if let Some(line) = f["line"].as_u64() {
            assert!(
                (line_of(from)..=line_of(to)).contains(&line),
                "{rule}: line {line} outside {}..={}\n{}",
                line_of(from),
                line_of(to),
                run.ctx()
            );
        }
    }
}

#[test]
fn lone_aws_key_id_typed_in_a_history_is_reported_on_its_line() {
    let hist = std::fs::read_to_string(staging("leaky").join("home/alice/.bash_history")).unwrap();
    let want = hist.lines().position(|l| l.contains("AKIA")).unwrap() as u64 + 1;
    let (run, v) = scan_json(&image("leaky-bare"), &[]);
    let f = findings(target(&v))
        .iter()
        .find(|f| f["rule"] == "aws-access-key-id" && f["path"] == "/home/alice/.bash_history")
        .unwrap_or_else(|| panic!("no aws-access-key-id in .bash_history\n{}", run.ctx()));
    if let Some(line) = f["line"].as_u64() {
        assert_eq!(line, want, "line of the AWS key id\n{}", run.ctx());
    }
}

#[test]
fn severities_follow_the_contract() {
    let (run, v) = scan_json(&image("leaky-gpt"), &[]);
    let valid = ["critical", "high", "medium", "low", "info"];
    for f in findings(target(&v)) {
        let sev = s(&f["severity"]);
        assert!(valid.contains(&sev), "bad severity in {f}\n{}", run.ctx());
        let want = match s(&f["rule"]) {
            "pem-private-key" => Some("critical"),
            "pem-encrypted-private-key" => Some("medium"),
            "aws-example-access-key" => Some("info"),
            _ => None,
        };
        if let Some(want) = want {
            assert_eq!(sev, want, "severity of {f}\n{}", run.ctx());
        }
        for field in ["title", "remediation"] {
            assert!(
                !s(&f[field]).is_empty(),
                "empty {field} in {f}\n{}",
                run.ctx()
            );
        }
        assert!(f["evidence"].is_string(), "evidence of {f}\n{}", run.ctx());
    }
}

// ------------------------------------------------------------------------------------------------
// Tests: exit codes and --fail-on
// ------------------------------------------------------------------------------------------------

#[test]
fn fail_on_critical_passes_an_image_whose_worst_finding_is_high() {
    let (run, v) = scan_json(&image("high-bare"), &[]);
    let t = target(&v);
    assert_same_findings("high-bare", &finding_lines(t), &expected("high-bare"), &run);
    let sevs: Vec<&str> = findings(t).iter().map(|f| s(&f["severity"])).collect();
    assert!(
        sevs.contains(&"high") && !sevs.contains(&"critical"),
        "fixture: the worst severity must be high, got {sevs:?}\n{}",
        run.ctx()
    );
    assert_eq!(run.code, 1, "default --fail-on high\n{}", run.ctx());

    let (run, _) = scan_json(&image("high-bare"), &["--fail-on", "critical"]);
    assert_eq!(run.code, 0, "nothing critical\n{}", run.ctx());
}

#[test]
fn fail_on_info_fails_on_any_finding() {
    let (run, v) = scan_json(&image("info-bare"), &[]);
    assert_same_findings(
        "info-bare",
        &finding_lines(target(&v)),
        &expected("info-bare"),
        &run,
    );
    assert_eq!(
        run.code,
        0,
        "an info finding is below the default --fail-on high\n{}",
        run.ctx()
    );
    let (run, _) = scan_json(&image("info-bare"), &["--fail-on", "low"]);
    assert_eq!(run.code, 0, "{}", run.ctx());
    let (run, _) = scan_json(&image("info-bare"), &["--fail-on", "info"]);
    assert_eq!(run.code, 1, "{}", run.ctx());
    let (run, _) = scan_json(&image("high-bare"), &["--fail-on", "info"]);
    assert_eq!(run.code, 1, "{}", run.ctx());
}

#[test]
fn missing_image_file_exits_2() {
    let missing = images().join("does-not-exist.img");
    let default_format = vec![OsStr::new("scan"), missing.as_os_str()];
    let json = vec![
        OsStr::new("scan"),
        "--format".as_ref(),
        "json".as_ref(),
        missing.as_os_str(),
    ];
    for args in [default_format, json] {
        let run = amiscan(args);
        assert_eq!(run.code, 2, "{}", run.ctx());
        assert!(
            !run.stderr.trim().is_empty(),
            "says why on stderr\n{}",
            run.ctx()
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Tests: secrets never leak into reports
// ------------------------------------------------------------------------------------------------

#[test]
fn reports_never_reveal_planted_secrets() {
    let trees = [staging("leaky"), staging("data")];
    let secrets: Vec<Secret> = trees.iter().flat_map(|t| planted_secrets(t)).collect();
    // 11 key blocks in the root tree (one in big.log) + 1 on the data volume, 3 password hashes,
    // 2 AWS secret keys.
    assert!(
        secrets.len() >= 17,
        "fixture: found only {} planted secrets",
        secrets.len()
    );
    let boilerplate = boilerplate_windows(&trees, &secrets);

    for name in ["leaky-gpt", "leaky-2vol-gpt"] {
        let img = image(name);
        let (run, v) = scan_json(&img, &[]);
        assert_reveals_no_secret(
            &format!("JSON report of {name}"),
            &run.stdout,
            &secrets,
            &boilerplate,
        );
        assert_reveals_no_secret(
            &format!("stderr of {name}"),
            &run.stderr,
            &secrets,
            &boilerplate,
        );
        for f in findings(target(&v)) {
            assert!(
                f.get("secret").is_none_or(Value::is_null),
                "secret without --show-secrets: {f}"
            );
        }
        let text = amiscan([OsStr::new("scan"), img.as_os_str()]);
        assert_eq!(text.code, 1, "{}", text.ctx());
        assert_reveals_no_secret(
            &format!("text report of {name}"),
            &text.stdout,
            &secrets,
            &boilerplate,
        );
        assert_reveals_no_secret(
            &format!("stderr of {name}"),
            &text.stderr,
            &secrets,
            &boilerplate,
        );
    }
}

#[test]
fn fingerprints_are_sha256_hex_and_stable_across_images() {
    let by_rule_path = |name: &str| -> Vec<String> {
        let (run, v) = scan_json(&image(name), &[]);
        let mut out: Vec<String> = findings(target(&v))
            .iter()
            .map(|f| {
                let fp = s(&f["fingerprint"]);
                let hex = fp.strip_prefix("sha256:").unwrap_or("");
                assert!(
                    hex.len() == 64
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "fingerprint `{fp}` is not sha256:<64 lowercase hex> in {f}\n{}",
                    run.ctx()
                );
                format!("{} {} {fp}", s(&f["rule"]), s(&f["path"]))
            })
            .collect();
        out.sort();
        out
    };
    let gpt = by_rule_path("leaky-gpt");
    let bare = by_rule_path("leaky-bare");
    assert_eq!(
        gpt, bare,
        "the same secrets must have the same fingerprints on any image"
    );
    // Every private key in the tree is a different key: their fingerprints differ.
    let keys: Vec<&String> = gpt.iter().filter(|l| l.contains("private-key")).collect();
    let fps: HashSet<&str> = keys.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(
        fps.len(),
        keys.len(),
        "distinct keys must have distinct fingerprints: {keys:#?}"
    );
}

#[test]
fn show_secrets_includes_the_secret_values() {
    let tree = staging("leaky");
    let creds = std::fs::read_to_string(tree.join("home/alice/.aws/credentials")).unwrap();
    let aws_secret = creds
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .unwrap()
        .to_string();
    let rsa = std::fs::read_to_string(tree.join("home/alice/.ssh/id_rsa")).unwrap();
    let rsa_tail = private_key_bodies(&rsa).remove(0);
    let rsa_tail = &rsa_tail[rsa_tail.len() - 40..rsa_tail.len() - 8];

    let (run, v) = scan_json(&image("leaky-gpt"), &["--show-secrets"]);
    let fs = findings(target(&v));
    let pair = fs
        .iter()
        .find(|f| f["rule"] == "aws-access-key-pair" && f["path"] == "/home/alice/.aws/credentials")
        .unwrap_or_else(|| {
            panic!(
                "no aws-access-key-pair on the credentials file\n{}",
                run.ctx()
            )
        });
    assert!(
        s(&pair["secret"]).contains(&aws_secret),
        "--show-secrets: AWS secret missing in {pair}"
    );
    let key = fs
        .iter()
        .find(|f| f["rule"] == "pem-private-key" && f["path"] == "/home/alice/.ssh/id_rsa")
        .unwrap_or_else(|| panic!("no pem-private-key on id_rsa\n{}", run.ctx()));
    let shown: String = s(&key["secret"]).split_whitespace().collect();
    assert!(
        shown.contains(rsa_tail),
        "--show-secrets: id_rsa body missing in {key}"
    );
    assert_eq!(run.code, 1, "{}", run.ctx());
}

// ------------------------------------------------------------------------------------------------
// Tests: damaged images
// ------------------------------------------------------------------------------------------------

/// A damaged image: exit 3, incomplete, the healthy volume fully scanned.
fn check_damaged(name: &str, healthy: &str) -> (Run, Value) {
    let (run, v) = scan_json(&image(name), &[]);
    let t = target(&v);
    assert_eq!(t["complete"], false, "{name}\n{}", run.ctx());
    let allowed = allowed_exits(t);
    assert!(
        allowed.contains(&run.code),
        "{name}: exit code {} not in {allowed:?}\n{}",
        run.code,
        run.ctx()
    );
    assert!(
        !error_messages(t).is_empty(),
        "{name}: no error reported\n{}",
        run.ctx()
    );
    let placed = layout(name);
    let p = placed
        .iter()
        .find(|p| p.volume == healthy)
        .unwrap_or_else(|| panic!("layout.txt has no {healthy} for {name}"));
    assert_healthy_volume(t, p, &run);
    (run, v)
}

#[test]
fn truncated_image_reports_the_cut_and_still_scans_the_healthy_volume() {
    let (run, v) = check_damaged("corrupt-truncated", "p2");
    let t = target(&v);
    let errors = [error_messages(t), warning_messages(t)].concat();
    assert!(
        errors.iter().any(|m| mentions_any(m, PAST_END_WORDS)),
        "no error says the image ends too early: {errors:#?}\n{}",
        run.ctx()
    );
    let p3_flagged = volume(t, "p3").is_none_or(|p3| {
        p3["status"] == "not_scanned" || p3["errors"].as_array().is_some_and(|e| !e.is_empty())
    });
    assert!(
        p3_flagged || t["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "the truncated p3 is not flagged\n{}",
        run.ctx()
    );
    // Everything on p2; whatever p3 still yields must be real.
    let actual = finding_lines(t);
    let missing = minus(&expected("corrupt-truncated"), &actual);
    assert!(missing.is_empty(), "missing: {missing:?}\n{}", run.ctx());
    let bogus = not_in_intact_image(t);
    assert!(
        bogus.is_empty(),
        "findings not in the intact image: {bogus:?}\n{}",
        run.ctx()
    );
}

#[test]
fn zeroed_superblock_leaves_the_volume_unscanned_and_the_others_scanned() {
    let (run, v) = check_damaged("corrupt-zeroed-sb", "p2");
    let t = target(&v);
    // p2 exactly; p3 may have been scanned raw (findings without a path), nothing else.
    let (p3_lines, others): (Vec<String>, Vec<String>) = finding_lines(t)
        .into_iter()
        .partition(|l| l.split(' ').nth(1) == Some("p3"));
    assert_same_findings(
        "corrupt-zeroed-sb",
        &others,
        &expected("corrupt-zeroed-sb"),
        &run,
    );
    for l in &p3_lines {
        assert!(
            l.ends_with(" -"),
            "p3 has no filesystem, yet a finding has a path: {l}\n{}",
            run.ctx()
        );
    }
    let bogus = not_in_intact_image(t);
    assert!(
        bogus.is_empty(),
        "findings not in the intact image: {bogus:?}\n{}",
        run.ctx()
    );
    if p3_lines.is_empty() {
        assert_eq!(
            run.code,
            3,
            "incomplete, nothing above medium\n{}",
            run.ctx()
        );
    }
    let p3 = volume(t, "p3").unwrap_or_else(|| panic!("p3 still listed\n{}", run.ctx()));
    let status = s(&p3["status"]);
    assert!(
        ["not_scanned", "scanned_raw"].contains(&status),
        "p3 status {status}\n{}",
        run.ctx()
    );
    let words = [
        "superblock",
        "no filesystem",
        "magic",
        "unrecogni",
        "unknown filesystem",
        "not an ext",
    ];
    let errors = error_messages(t);
    assert!(
        errors
            .iter()
            .any(|m| (m.starts_with("p3:") || m.starts_with("target:")) && mentions_any(m, &words)),
        "no error on p3 names the missing superblock/filesystem: {errors:#?}\n{}",
        run.ctx()
    );
}

#[test]
fn garbage_partition_entry_is_reported_and_the_valid_one_scanned() {
    let (run, v) = check_damaged("corrupt-garbage-table", "p1");
    let t = target(&v);
    assert_same_findings(
        "corrupt-garbage-table",
        &finding_lines(t),
        &expected("corrupt-garbage-table"),
        &run,
    );
    assert_eq!(
        run.code,
        3,
        "incomplete, nothing above medium\n{}",
        run.ctx()
    );
    let errors = [error_messages(t), warning_messages(t)].concat();
    assert!(
        errors.iter().any(|m| mentions_any(m, PAST_END_WORDS)),
        "no error says entry 2 lies past the end of the image: {errors:#?}\n{}",
        run.ctx()
    );
}

#[test]
fn corrupt_primary_gpt_header_falls_back_to_the_backup() {
    let (run, v) = scan_json(&image("corrupt-gpt-primary"), &[]);
    let t = target(&v);
    assert_same_findings(
        "corrupt-gpt-primary",
        &finding_lines(t),
        &expected("corrupt-gpt-primary"),
        &run,
    );
    let placed = layout("corrupt-gpt-primary");
    assert_eq!(
        placed.len(),
        2,
        "layout.txt: p2 and p3 of corrupt-gpt-primary"
    );
    for p in placed {
        assert_healthy_volume(t, &p, &run);
    }
    // Reporting the damaged primary header as an error is allowed (the scan is then incomplete).
    let allowed = allowed_exits(t);
    assert!(
        allowed.contains(&run.code),
        "exit code {} not in {allowed:?}\n{}",
        run.code,
        run.ctx()
    );
}

// ------------------------------------------------------------------------------------------------
// Tests: other commands and output forms
// ------------------------------------------------------------------------------------------------

#[test]
fn rules_command_lists_every_contract_rule_id() {
    let run = amiscan(["rules"]);
    assert_eq!(run.code, 0, "{}", run.ctx());
    let words: HashSet<&str> = run
        .stdout
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .collect();
    let missing: Vec<&&str> = RULE_IDS.iter().filter(|id| !words.contains(**id)).collect();
    assert!(
        missing.is_empty(),
        "`amiscan rules` does not list {missing:?}\n{}",
        run.ctx()
    );
}

#[test]
fn text_output_names_the_rules_and_ends_with_a_summary() {
    let img = image("leaky-gpt");
    let (_, v) = scan_json(&img, &[]);
    let total = findings(target(&v)).len().to_string();
    let run = amiscan([OsStr::new("scan"), img.as_os_str()]);
    assert_eq!(run.code, 1, "{}", run.ctx());
    let want = expected("leaky-gpt");
    for rule in want.iter().map(|l| l.split(' ').next().unwrap()) {
        assert!(
            run.stdout.contains(rule),
            "text output lacks `{rule}`\n{}",
            run.ctx()
        );
    }
    let summary = run.stdout.lines().any(|l| {
        let lower = l.to_lowercase();
        let has_total = l.split(|c: char| !c.is_ascii_digit()).any(|n| n == total);
        has_total
            && ["finding", "issue", "total", "summary"]
                .iter()
                .any(|w| lower.contains(w))
    });
    assert!(
        summary,
        "no summary line with the total ({total}) of findings\n{}",
        run.ctx()
    );
}

#[test]
fn output_flag_writes_the_json_report_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let img = image("leaky-mbr");
    let run = amiscan([
        OsStr::new("scan"),
        "--format".as_ref(),
        "json".as_ref(),
        "--output".as_ref(),
        file.as_os_str(),
        img.as_os_str(),
    ]);
    assert_eq!(run.code, 1, "{}", run.ctx());
    let json = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "--output did not write {}: {e}\n{}",
            file.display(),
            run.ctx()
        )
    });
    let v = parse_report(&json, &run);
    assert_same_findings(
        "leaky-mbr via --output",
        &finding_lines(target(&v)),
        &expected("leaky-mbr"),
        &run,
    );
}
