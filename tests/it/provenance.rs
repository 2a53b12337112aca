//! Vendor content against planted content on an installed Debian root (XFS, written by the
//! kernel; `testdata/provenance-root.sh`): a package made with `dpkg-deb` and installed by the
//! root's own dpkg ships example keys; the builder then compiles its Python module, appends an
//! AWS key pair to one of its files, drops a token among its files and adds the snakeoil key.
//!
//! - the package's unmodified files, and the `.pyc` compiled from one, are info with a
//!   `provenance` naming the package and its version, counted in `vendor`, listed by the text
//!   report only with `--show-vendor`;
//! - the modified file keeps full severity and says "modified from vendor-demo 1.0-1";
//! - the new file keeps full severity (the `/usr/share/doc` guess undone);
//! - the snakeoil key has its own rule; nothing else of the stock root is at medium or above
//!   but its host keys and sshd's default.

use crate::common::{run, scan_json, testdata};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn findings_at<'a>(t: &'a Value, path: &str) -> Vec<&'a Value> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == path)
        .collect()
}

#[test]
fn vendor_content_is_info_and_planted_content_keeps_its_severity() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let work = tmp.join("provenance");
    let _ = std::fs::remove_dir_all(&work);
    run(Command::new("bash")
        .arg(testdata().join("provenance-root.sh"))
        .arg(tmp.join("installed-root"))
        .arg(&work));
    let expect: BTreeMap<String, String> = std::fs::read_to_string(work.join("expect.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (p, w) = l.split_once('\t').unwrap();
            (p.to_string(), w.to_string())
        })
        .collect();
    assert_eq!(expect.len(), 6);
    let img = work.join("provenance.img");
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(t["complete"], true, "{:#}", t["volumes"]);
    assert_eq!(code, 1);
    let mut vendor_here = 0;
    for (path, what) in &expect {
        let fs = findings_at(&t, path);
        assert!(!fs.is_empty(), "{path}: no finding");
        for f in fs {
            let p = &f["provenance"];
            match what.as_str() {
                "vendor" | "compiled" => {
                    vendor_here += 1;
                    assert_eq!(f["severity"], "info", "{f:#}");
                    assert_eq!(p["state"], "unmodified", "{f:#}");
                    assert_eq!(p["package"], "vendor-demo");
                    assert_eq!(p["version"], "1.0-1");
                    assert_eq!(p["source"], "dpkg");
                    if what == "compiled" {
                        assert_eq!(
                            p["derived_from"],
                            "/usr/lib/python3/dist-packages/vendor_demo/keys.py"
                        );
                    }
                }
                "modified" => {
                    assert_eq!(f["rule"], "aws-access-key-pair", "{f:#}");
                    assert_eq!(f["severity"], "critical", "{f:#}");
                    assert_eq!(p["state"], "modified");
                    let e = f["evidence"].as_str().unwrap();
                    assert!(e.contains("modified from vendor-demo 1.0-1"), "{e}");
                }
                "new" => {
                    assert_eq!(f["rule"], "slack-token", "{f:#}");
                    assert_eq!(f["severity"], "critical", "{f:#}");
                    assert!(p.is_null());
                }
                "snakeoil" => {
                    assert_eq!(f["rule"], "tls-snakeoil-key", "{f:#}");
                    assert_eq!(f["severity"], "high");
                }
                other => panic!("{other}"),
            }
        }
    }
    assert!(vendor_here >= 3);
    assert!(
        t["vendor"].as_u64().unwrap() >= vendor_here,
        "{}",
        t["vendor"]
    );

    // The stock root: nothing at medium or above but what a publisher must fix.
    let at_least_medium: BTreeSet<(String, String)> = crate::common::serious(&t)
        .into_iter()
        .filter(|(_, p)| !expect.contains_key(p))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ecdsa_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ed25519_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_rsa_key"),
        ("sshd-password-authentication", "/etc/ssh/sshd_config"),
    ]
    .into_iter()
    .map(|(r, p)| (r.to_string(), p.to_string()))
    .collect();
    assert_eq!(at_least_medium, want);

    // The text report lists vendor findings only on request, and counts them.
    let text = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
            .args(["scan", "--no-progress", "--color", "never"])
            .args(extra)
            .arg(&img)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let hidden = text(&[]);
    assert!(!hidden.contains("vendor-demo/example-key.pem"), "{hidden}");
    assert!(hidden.contains("in vendor content shipped unmodified (not listed: --show-vendor)"));
    assert!(hidden.contains("vendor-demo/settings.txt"));
    let shown = text(&["--show-vendor"]);
    assert!(shown.contains("vendor-demo/example-key.pem"), "{shown}");
}

/// The same judgement where rpm and pip installed the files (`testdata/provenance-rpm-venv.sh`):
/// a package built by `rpmbuild` and installed by `rpm --root` (sqlite database), a wheel
/// installed by pip into a virtualenv (its `RECORD`). Unmodified files, and the `.pyc` pip
/// compiled from one, are info with the package's provenance; a key pair appended to a file of
/// each keeps full severity and says which package it was modified from.
#[test]
fn rpm_and_virtualenv_content_is_judged_by_their_digests() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let work = tmp.join("provenance-rpm-venv");
    run(Command::new("bash")
        .arg(testdata().join("provenance-rpm-venv.sh"))
        .arg(&work));
    let expect: BTreeMap<String, String> = std::fs::read_to_string(work.join("expect.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (p, w) = l.split_once('\t').unwrap();
            (p.to_string(), w.to_string())
        })
        .collect();
    assert_eq!(expect.len(), 6);
    let (code, t) = scan_json(&work.join("rpm-venv.img"), &[]);
    assert_eq!(t["complete"], true, "{:#}", t["volumes"]);
    assert_eq!(code, 1);
    for (path, what) in &expect {
        let fs = findings_at(&t, path);
        assert_eq!(fs.len(), 1, "{path}: {fs:#?}");
        let f = fs[0];
        let p = &f["provenance"];
        let (source, package, version) = if path.starts_with("/opt/app/venv/") {
            ("python", "vendorpy", "2.0")
        } else {
            ("rpm", "vendor-rpm", "1.0-1")
        };
        assert_eq!(p["source"], source, "{f:#}");
        assert_eq!(p["package"], package, "{f:#}");
        assert_eq!(p["version"], version, "{f:#}");
        match what.as_str() {
            "vendor" | "compiled" => {
                assert_eq!(f["severity"], "info", "{f:#}");
                assert_eq!(p["state"], "unmodified", "{f:#}");
                let e = f["evidence"].as_str().unwrap();
                assert!(
                    e.contains(&format!("shipped unmodified by {package} {version}")),
                    "{e}"
                );
                if what == "compiled" {
                    assert!(
                        p["derived_from"]
                            .as_str()
                            .unwrap()
                            .ends_with("/vendorpy/keys.py")
                    );
                }
            }
            "modified" => {
                assert_eq!(f["rule"], "aws-access-key-pair", "{f:#}");
                assert_eq!(f["severity"], "critical", "{f:#}");
                assert_eq!(p["state"], "modified", "{f:#}");
                let e = f["evidence"].as_str().unwrap();
                assert!(
                    e.contains(&format!("modified from {package} {version}")),
                    "{e}"
                );
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(t["findings"].as_array().unwrap().len(), expect.len());
    assert_eq!(t["vendor"], 4);
}
