//! Report formats and baselines, end to end: the real `amiscan` binary on images built by
//! `testdata/build-images.sh` (once per test binary, into `$CARGO_TARGET_TMPDIR/reportimages`).
//!
//! - SARIF output is validated against the official SARIF 2.1.0 JSON schema committed in
//!   `testdata/schemas/` (no network).
//! - ASFF output has every attribute Security Hub requires, with the right types and within the
//!   documented length limits.
//! - Neither format ever carries a secret planted in the staging tree (unless `--show-secrets`,
//!   and then only SARIF).
//! - A baseline suppresses exactly the findings it lists.

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn images() -> &'static Path {
    crate::common::built_images("testimages")
}

fn image(name: &str) -> PathBuf {
    images().join(format!("{name}.img"))
}

/// Run `amiscan scan --no-progress ARGS...` with no AWS settings from the environment.
fn scan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .arg("scan")
        .arg("--no-progress")
        .args(args)
        .env_remove("AWS_ACCOUNT_ID")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .expect("run amiscan")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn leaky() -> String {
    image("leaky-gpt").display().to_string()
}

// ------------------------------------------------------------------------------------------------
// SARIF
// ------------------------------------------------------------------------------------------------

/// The OASIS schema's `language` pattern has a stray `]` (a known erratum) that a draft-07
/// validator checking `format: regex` refuses to compile. amiscan never writes a `language`, so
/// the test drops exactly that keyword (the committed file stays as published) and validates
/// every other constraint, formats included.
const BROKEN_LANGUAGE_PATTERN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";

/// Remove every `"pattern": BROKEN_LANGUAGE_PATTERN`; returns how many were removed.
fn drop_broken_pattern(v: &mut Value) -> usize {
    match v {
        Value::Object(m) => {
            let mut n = 0;
            if m.get("pattern").and_then(Value::as_str) == Some(BROKEN_LANGUAGE_PATTERN) {
                m.remove("pattern");
                n += 1;
            }
            n + m.values_mut().map(drop_broken_pattern).sum::<usize>()
        }
        Value::Array(a) => a.iter_mut().map(drop_broken_pattern).sum(),
        _ => 0,
    }
}

fn sarif_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let path = Path::new(MANIFEST_DIR).join("testdata/schemas/sarif-schema-2.1.0.json");
        let text = std::fs::read_to_string(&path).expect("read the SARIF schema");
        let mut schema: Value = serde_json::from_str(&text).expect("the SARIF schema is JSON");
        assert_eq!(
            schema["$schema"], "http://json-schema.org/draft-07/schema#",
            "the committed schema is the draft-07 SARIF schema"
        );
        assert_eq!(
            drop_broken_pattern(&mut schema),
            2,
            "the two `language` patterns of the published schema (run, toolComponent)"
        );
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .build(&schema)
            .expect("the SARIF schema compiles")
    })
}

pub(crate) fn assert_valid_sarif(v: &Value) {
    let errors: Vec<String> = sarif_validator()
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF output does not validate:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_schema_validator_rejects_broken_sarif() {
    // Guard against a validator that accepts anything.
    let bad = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]});
    assert!(!sarif_validator().is_valid(&bad));
    let bad_level = serde_json::json!({"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "x"}},
        "results": [{"message": {"text": "m"}, "level": "critical"}]}]});
    assert!(!sarif_validator().is_valid(&bad_level));
    // Formats are checked too: an artifact URI with a raw space is not a URI reference.
    let location = |uri: &str| {
        serde_json::json!({"version": "2.1.0", "runs": [{
            "tool": {"driver": {"name": "x"}},
            "results": [{"message": {"text": "m"}, "locations": [{"physicalLocation":
                {"artifactLocation": {"uri": uri}}}]}]}]})
    };
    assert!(sarif_validator().is_valid(&location("img/p1/a%20b")));
    assert!(!sarif_validator().is_valid(&location("img/p1/a b")));
}

#[test]
fn sarif_of_a_leaky_image_validates_and_maps_every_finding() {
    let img = leaky();
    let json = stdout_json(&scan(&["--format", "json", &img]));
    let out = scan(&["--format", "sarif", &img]);
    assert_eq!(code(&out), 1, "the leaky image fails the scan");
    let sarif = stdout_json(&out);
    assert_valid_sarif(&sarif);

    let run = &sarif["runs"][0];
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(run["tool"]["driver"]["name"], "amiscan");
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        run["tool"]["driver"]["informationUri"],
        "https://github.com/amiscan/amiscan"
    );
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in rules {
        let score: f64 = r["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&score));
        assert!(!r["help"]["text"].as_str().unwrap().is_empty());
    }
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);

    let findings = json["targets"][0]["findings"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    for (f, r) in findings.iter().zip(results) {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert_eq!(r["ruleId"], f["rule"]);
        assert_eq!(
            r["partialFingerprints"]["amiscanFingerprint/v1"],
            f["fingerprint"]
        );
        let level = match f["severity"].as_str().unwrap() {
            "critical" | "high" => "error",
            "medium" => "warning",
            _ => "note",
        };
        assert_eq!(r["level"], level);
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        let path = f["path"].as_str().unwrap();
        assert_eq!(
            uri,
            format!("{img}/{}{path}", f["volume"].as_str().unwrap())
        );
        if let Some(line) = f["line"].as_u64() {
            assert_eq!(loc["region"]["startLine"], line);
        }
        assert!(
            r["message"]["text"]
                .as_str()
                .unwrap()
                .contains(f["evidence"].as_str().unwrap())
        );
    }
}

#[test]
fn sarif_of_an_incomplete_scan_says_so_and_validates() {
    let out = scan(&[
        "--format",
        "sarif",
        &image("corrupt-truncated").display().to_string(),
    ]);
    let sarif = stdout_json(&out);
    assert_valid_sarif(&sarif);
    let inv = &sarif["runs"][0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n["message"]["text"].as_str().unwrap().contains("truncated")),
        "{notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n["descriptor"]["id"] == "scan-incomplete")
    );
}

// ------------------------------------------------------------------------------------------------
// ASFF
// ------------------------------------------------------------------------------------------------

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn str_field<'a>(f: &'a Value, key: &str) -> &'a str {
    f[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {f:#}"))
}

#[test]
fn asff_has_every_required_attribute_within_limits() {
    let out = scan(&[
        "--format",
        "asff",
        "--asff-account",
        ACCOUNT,
        "--asff-region",
        REGION,
        &leaky(),
    ]);
    assert_eq!(code(&out), 1);
    let asff = stdout_json(&out);
    let findings = asff.as_array().expect("a JSON array");
    assert!(!findings.is_empty());
    let mut ids = HashSet::new();
    for f in findings {
        assert_eq!(str_field(f, "SchemaVersion"), "2018-10-08");
        let id = str_field(f, "Id");
        assert!(!id.is_empty() && id.chars().count() <= 512);
        assert!(ids.insert(id.to_string()), "duplicate Id {id}");
        assert_eq!(
            str_field(f, "ProductArn"),
            format!("arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default")
        );
        let generator = str_field(f, "GeneratorId");
        assert!(!generator.is_empty() && generator.len() <= 512);
        assert_eq!(str_field(f, "AwsAccountId"), ACCOUNT);
        let types = f["Types"].as_array().unwrap();
        assert!((1..=50).contains(&types.len()));
        for t in types {
            let t = t.as_str().unwrap();
            let ns = t.split('/').next().unwrap();
            assert!(
                [
                    "Software and Configuration Checks",
                    "TTPs",
                    "Effects",
                    "Unusual Behaviors",
                    "Sensitive Data Identifications"
                ]
                .contains(&ns),
                "{t}"
            );
        }
        assert!(is_rfc3339_utc(str_field(f, "CreatedAt")));
        assert!(is_rfc3339_utc(str_field(f, "UpdatedAt")));
        assert!(
            ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]
                .contains(&f["Severity"]["Label"].as_str().unwrap())
        );
        let title = str_field(f, "Title");
        assert!(!title.is_empty() && title.chars().count() <= 256);
        let desc = str_field(f, "Description");
        assert!(!desc.is_empty() && desc.chars().count() <= 1024);
        let resources = f["Resources"].as_array().unwrap();
        assert!((1..=32).contains(&resources.len()));
        for r in resources {
            assert_eq!(str_field(r, "Type"), "Other");
            assert_eq!(str_field(r, "Id"), leaky());
        }
        let rec = f["Remediation"]["Recommendation"]["Text"].as_str().unwrap();
        assert!(!rec.is_empty() && rec.chars().count() <= 512);
        let pf = f["ProductFields"].as_object().unwrap();
        assert!(pf.len() <= 50);
        for (k, v) in pf {
            assert!(k.len() <= 128 && v.as_str().unwrap().chars().count() <= 2048);
        }
        assert!(
            pf["amiscan/Fingerprint"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert!(pf.contains_key("amiscan/Volume") && pf.contains_key("amiscan/Path"));
        assert_eq!(str_field(f, "RecordState"), "ACTIVE");
        assert_eq!(f["Workflow"]["Status"], "NEW");
    }
}

#[test]
fn asff_takes_account_and_region_from_the_environment_or_refuses() {
    let img = leaky();
    let out = scan(&["--format", "asff", &img]);
    assert_eq!(code(&out), 2, "no account: a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--asff-account"));
    let out = scan(&[
        "--format",
        "asff",
        "--asff-account",
        "12345",
        "--asff-region",
        REGION,
        &img,
    ]);
    assert_eq!(code(&out), 2, "a bad account id is a usage error");

    let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--no-progress", "--format", "asff", &img])
        .env("AWS_ACCOUNT_ID", ACCOUNT)
        .env_remove("AWS_REGION")
        .env("AWS_DEFAULT_REGION", "us-gov-west-1")
        .output()
        .unwrap();
    let asff = stdout_json(&out);
    assert_eq!(
        asff[0]["ProductArn"],
        format!("arn:aws-us-gov:securityhub:us-gov-west-1:{ACCOUNT}:product/{ACCOUNT}/default")
    );
}

// ------------------------------------------------------------------------------------------------
// Secrets
// ------------------------------------------------------------------------------------------------

/// Secrets planted in the leaky staging tree, read from the files themselves.
fn planted_secrets() -> Vec<String> {
    let root = images().join("staging/leaky");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let mut secrets = vec![];
    for line in read("home/alice/.aws/credentials").lines() {
        if let Some((k, v)) = line.split_once('=')
            && k.trim().starts_with("aws_")
        {
            secrets.push(v.trim().to_string());
        }
    }
    for line in read("etc/shadow").lines() {
        let hash = line.split(':').nth(1).unwrap_or("");
        if hash.starts_with('$') {
            secrets.push(hash.to_string());
        }
    }
    // A line from the middle of each private key body.
    for key in [
        "home/alice/.ssh/id_rsa",
        "home/alice/.ssh/id_ed25519",
        "opt/app/tls/server.key",
    ] {
        let text = read(key);
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
        secrets.push(body[body.len() / 2].to_string());
    }
    assert!(secrets.len() >= 7, "{secrets:?}");
    secrets
}

fn leaked<'a>(output: &[u8], secrets: &'a [String]) -> Vec<&'a str> {
    let text = String::from_utf8_lossy(output);
    // JSON escapes `/` only optionally and `+` never, so the raw text is what to search.
    secrets
        .iter()
        .map(String::as_str)
        .filter(|s| text.contains(s) || text.contains(&s.replace('/', "\\/")))
        .collect()
}

#[test]
fn no_sarif_or_asff_output_contains_a_planted_secret() {
    let secrets = planted_secrets();
    let img = leaky();
    let asff_flags = ["--asff-account", ACCOUNT, "--asff-region", REGION];
    for (format, show) in [
        ("sarif", false),
        ("asff", false),
        ("asff", true),
        ("json", false),
    ] {
        let mut args = vec!["--format", format, img.as_str()];
        args.extend(asff_flags);
        if show {
            args.push("--show-secrets");
        }
        let out = scan(&args);
        assert_eq!(code(&out), 1);
        assert!(
            leaked(&out.stdout, &secrets).is_empty(),
            "{format} (show-secrets {show}) leaks {:?}",
            leaked(&out.stdout, &secrets)
        );
    }
    // Positive control: the test does see secrets when the user asks for them in SARIF.
    let out = scan(&["--format", "sarif", "--show-secrets", &img]);
    assert!(!leaked(&out.stdout, &secrets).is_empty());
}

// ------------------------------------------------------------------------------------------------
// Baselines
// ------------------------------------------------------------------------------------------------

fn keys(report: &Value) -> Vec<(String, String, String)> {
    report["targets"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["fingerprint"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_baseline_suppresses_exactly_its_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    let baseline_s = baseline.display().to_string();
    let img = leaky();

    // 1. Scan and write a baseline: the report and exit code are unchanged.
    let out = scan(&["--format", "json", "--write-baseline", &baseline_s, &img]);
    assert_eq!(code(&out), 1);
    let full = stdout_json(&out);
    let all = keys(&full);
    assert!(all.len() > 10);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(written["version"], 1);
    assert!(written["created"].as_str().is_some_and(is_rfc3339_utc));
    let entries = written["entries"].as_array().unwrap();
    let distinct: HashSet<_> = all.iter().map(|(r, f, _)| (r.clone(), f.clone())).collect();
    assert_eq!(entries.len(), distinct.len());
    for e in entries {
        for k in ["rule", "fingerprint", "target", "volume", "path", "title"] {
            assert!(e[k].is_string(), "entry lacks {k}: {e}");
        }
    }

    // 2. Scan again with it: nothing left, everything counted as suppressed, exit 0.
    let out = scan(&["--format", "json", "--baseline", &baseline_s, &img]);
    let suppressed = stdout_json(&out);
    assert_eq!(code(&out), 0, "{suppressed:#}");
    assert!(keys(&suppressed).is_empty());
    assert_eq!(suppressed["targets"][0]["suppressed"], all.len());

    // 3. Remove one entry (a critical finding that occurs once): exactly it comes back.
    let mut count: HashMap<(&str, &str), usize> = HashMap::new();
    for (r, f, _) in &all {
        *count.entry((r, f)).or_default() += 1;
    }
    let crit = full["targets"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["severity"] == "critical"
                && count[&(
                    f["rule"].as_str().unwrap(),
                    f["fingerprint"].as_str().unwrap(),
                )] == 1
        })
        .expect("a critical finding");
    let mut edited = written.clone();
    edited["entries"]
        .as_array_mut()
        .unwrap()
        .retain(|e| !(e["rule"] == crit["rule"] && e["fingerprint"] == crit["fingerprint"]));
    std::fs::write(&baseline, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    let out = scan(&["--format", "json", "--baseline", &baseline_s, &img]);
    assert_eq!(code(&out), 1, "a critical finding is back");
    let back = stdout_json(&out);
    assert_eq!(
        keys(&back),
        [(
            crit["rule"].as_str().unwrap().to_string(),
            crit["fingerprint"].as_str().unwrap().to_string(),
            crit["path"].as_str().unwrap().to_string()
        )]
    );
    assert_eq!(back["targets"][0]["suppressed"], all.len() - 1);

    // SARIF and text say how many were suppressed too.
    let out = scan(&["--format", "sarif", "--baseline", &baseline_s, &img]);
    let sarif = stdout_json(&out);
    assert_valid_sarif(&sarif);
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        sarif["runs"][0]["properties"]["targets"][0]["suppressed"],
        all.len() - 1
    );
    let out = scan(&[
        "--format",
        "text",
        "--color",
        "never",
        "--baseline",
        &baseline_s,
        &img,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{} suppressed by the baseline", all.len() - 1)),
        "{text}"
    );
}

#[test]
fn a_bad_baseline_is_a_usage_error_before_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"{\"version\": 1}").unwrap();
    let out = scan(&["--baseline", &bad.display().to_string(), &leaky()]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid baseline"));
    let missing = dir.path().join("missing.json");
    let out = scan(&["--baseline", &missing.display().to_string(), &leaky()]);
    assert_eq!(code(&out), 2);
}
