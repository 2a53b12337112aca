//! Issue 23's done-when on a real server image: a Debian bookworm root with nginx, PostgreSQL, a
//! JRE, awscli, python3-boto3 and ansible (`mmdebstrap`, cached), copied into a loop-mounted XFS
//! image, with an image builder's leaks planted (`testdata/server-root.sh`):
//!
//! - every true finding of the stock system is kept (the SSH host keys, sshd's password default,
//!   the TLS key `ssl-cert` generated at install, under its own rule);
//! - nothing else is at medium or above, and at most 20 findings are low: vendor content (ansible
//!   collections' documentation, awscli's examples, botocore's test data) is info;
//! - the four plants are found at their rules' severity: an AWS key pair appended to a packaged
//!   file ("modified from nginx-common"), a token in a new file among botocore's files, a `.env`
//!   under `/opt` with a connection string and a Stripe live key, an nginx `Authorization: Basic`.

use crate::common::{run, scan_json, testdata};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

#[test]
fn a_server_image_has_only_true_findings_and_its_plants() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let work = tmp.join("server-root-work");
    let _ = std::fs::remove_dir_all(&work);
    run(Command::new("bash")
        .arg(testdata().join("server-root.sh"))
        .arg(tmp.join("server-root"))
        .arg(&work));
    let plants: Vec<(String, String, String)> = std::fs::read_to_string(work.join("plants.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            (v[0].to_string(), v[1].to_string(), v[2].to_string())
        })
        .collect();
    assert_eq!(plants.len(), 5);
    let img = work.join("server.img");
    let (code, t) = scan_json(&img, &[]);
    let _ = std::fs::remove_file(&img);
    assert_eq!(t["complete"], true, "{:#}", t["volumes"]);
    assert_eq!(code, 1);
    let findings = t["findings"].as_array().unwrap();
    let key = |f: &Value| {
        (
            f["rule"].as_str().unwrap().to_string(),
            f["path"].as_str().unwrap_or("").to_string(),
        )
    };

    // The plants, at their rules' severity.
    let planted: BTreeSet<&str> = plants.iter().map(|(_, _, p)| p.as_str()).collect();
    for (rule, severity, path) in &plants {
        let f = findings
            .iter()
            .find(|f| f["rule"] == rule.as_str() && f["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{rule} in {path} not found"));
        assert_eq!(f["severity"], severity.as_str(), "{f:#}");
        if rule == "aws-access-key-pair" {
            assert_eq!(f["provenance"]["state"], "modified", "{f:#}");
            assert_eq!(f["provenance"]["package"], "nginx-common", "{f:#}");
            let e = f["evidence"].as_str().unwrap();
            assert!(e.contains("modified from nginx-common"), "{e}");
        } else {
            assert!(f["provenance"].is_null(), "{f:#}");
        }
    }

    // Everything else at medium or above is what a publisher must fix.
    let at_least_medium: BTreeSet<(String, String)> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("critical" | "high" | "medium")))
        .map(key)
        .filter(|(_, p)| !planted.contains(p.as_str()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ecdsa_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ed25519_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_rsa_key"),
        ("sshd-password-authentication", "/etc/ssh/sshd_config"),
        ("tls-snakeoil-key", "/etc/ssl/private/ssl-cert-snakeoil.key"),
    ]
    .into_iter()
    .map(|(r, p)| (r.to_string(), p.to_string()))
    .collect();
    assert_eq!(at_least_medium, want);

    // Few low findings; vendor content is counted apart.
    let low: Vec<(String, String)> = findings
        .iter()
        .filter(|f| f["severity"] == "low")
        .map(key)
        .collect();
    assert!(low.len() <= 20, "{} low: {low:#?}", low.len());
    let by_state: BTreeMap<String, usize> = findings
        .iter()
        .filter_map(|f| f["provenance"]["state"].as_str())
        .fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.to_string()).or_default() += 1;
            m
        });
    assert!(
        by_state.get("unmodified").copied().unwrap_or(0) >= 30,
        "{by_state:?}"
    );
    assert!(t["vendor"].as_u64().unwrap() >= 30, "{}", t["vendor"]);
}
