//! Windows images end to end, beyond the NTFS reader (tests/it/ntfs.rs builds the disks): the
//! registry hives, written by `hivexsh` (testdata/ntfs/hives.sh) and copied into the volume
//! through `ntfs-3g`, judged by the windows-hives family; `hivexget` is the oracle for the
//! values read (the finding's fingerprint is the SHA-256 of the value hivex reads back).

use crate::common::{rule_paths, scan_json};
use crate::ntfs::{disk, secrets};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const SAM: &str = "/Windows/System32/config/SAM";
const SOFTWARE: &str = "/Windows/System32/config/SOFTWARE";
const SECURITY: &str = "/Windows/System32/config/SECURITY";
const NTUSER: &str = "/Users/Administrator/NTUSER.DAT";

fn fingerprint(v: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(v.as_bytes())))
}

/// The findings of rules `windows-*` in `t`: (rule, path, severity, evidence, fingerprint).
pub(crate) fn hive_findings(t: &Value) -> Vec<(String, String, String, String, String)> {
    let mut v: Vec<_> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let p = f["path"].as_str().unwrap_or("");
            p.starts_with("/Windows/System32/config/") || p.ends_with("NTUSER.DAT")
        })
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (
                s("rule"),
                s("path"),
                s("severity"),
                s("evidence"),
                s("fingerprint"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn registry_hives_written_by_hivex_are_judged() {
    let dir = disk("hives", "leaky");
    let planted = secrets(&dir);
    let oracle: BTreeMap<String, String> = std::fs::read_to_string(dir.join("hives.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(oracle["HIVEX_AUTOLOGON"], planted["AUTOLOGON"]);

    let img = dir.join("disk.img");
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let got = hive_findings(&t);
    let brief: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(r, p, s, _, _)| (r.as_str(), p.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        brief,
        [
            ("windows-account-empty-password", SAM, "critical"),
            ("windows-account-password", SAM, "high"),
            ("windows-admin-password", SAM, "critical"),
            ("windows-autologon-password", SOFTWARE, "critical"),
            ("windows-lm-hash", SAM, "high"),
            ("windows-lsa-secret", SECURITY, "high"),
            ("windows-saved-session-password", NTUSER, "high"),
            ("windows-saved-session-password", NTUSER, "high"),
        ],
        "{got:#?}"
    );
    let evidence = |rule: &str| {
        got.iter()
            .filter(|f| f.0 == rule)
            .map(|f| f.3.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        evidence("windows-admin-password"),
        ["Administrator (RID 500): enabled, NT hash stored (AES-encrypted)"]
    );
    assert_eq!(
        evidence("windows-lsa-secret"),
        [
            "LSA secret _SC_MSSQLSERVER (a service account's password), encrypted with the boot key of the SYSTEM hive"
        ]
    );
    // The values read are the values hivex reads back (and those planted).
    let fp = |rule: &str| -> Vec<&str> {
        got.iter()
            .filter(|f| f.0 == rule)
            .map(|f| f.4.as_str())
            .collect()
    };
    assert_eq!(
        fp("windows-autologon-password"),
        [fingerprint(&oracle["HIVEX_AUTOLOGON"])]
    );
    let mut sessions = fp("windows-saved-session-password");
    sessions.sort();
    let mut want = vec![
        fingerprint(&planted["PUTTY"]),
        fingerprint(&planted["WINSCP"]),
    ];
    want.sort();
    assert_eq!(sessions, want);

    // Nothing planted is printed.
    let json = t.to_string();
    for k in ["AUTOLOGON", "PUTTY", "WINSCP"] {
        assert!(!json.contains(&planted[k]), "{k} printed");
    }

    // --quick reads the hives too.
    let (code, q) = scan_json(&img, &["--quick"]);
    assert_eq!(code, 1, "{q:#}");
    let quick: Vec<_> = hive_findings(&q).into_iter().map(|f| (f.0, f.1)).collect();
    let full: Vec<_> = got.iter().map(|f| (f.0.clone(), f.1.clone())).collect();
    assert_eq!(quick, full);
    assert!(rule_paths(&q, "-").contains(&("windows-admin-password".to_string(), SAM.to_string())));
}

const GROUPS: &str = "/ProgramData/Microsoft/Group Policy/History/{31B2F340-016D-11D2-945F-00C04FB984F9}/Machine/Preferences/Groups/Groups.xml";

#[test]
fn what_windows_publishers_leave_behind_is_found() {
    let dir = disk("publishers", "leaky");
    let planted = secrets(&dir);
    let img = dir.join("disk.img");
    let want: Vec<(String, String, String)> = [
        (
            "ec2launch-static-admin-password",
            "/ProgramData/Amazon/EC2Launch/config/agent-config.yml",
            "EC2LAUNCH",
        ),
        (
            "ec2launch-admin-password",
            "/ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json",
            "EC2LAUNCH_V1",
        ),
        ("gpp-cpassword", GROUPS, "CPASSWORD"),
        (
            "windows-unattend-password",
            "/Program Files/Amazon/Ec2ConfigService/sysprep2008.xml",
            "SYSPREP2008",
        ),
    ]
    .into_iter()
    .map(|(r, p, k)| (r.to_string(), p.to_string(), fingerprint(&planted[k])))
    .collect();
    for args in [&[][..], &["--quick"][..]] {
        let (code, t) = scan_json(&img, args);
        assert_eq!(code, 1, "{args:?} {t:#}");
        assert_eq!(t["complete"], true, "{t:#}");
        let got: Vec<(String, String, String)> = t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
                (s("rule"), s("path"), s("fingerprint"))
            })
            .collect();
        for w in &want {
            assert!(got.contains(w), "{args:?}: missing {w:?}\n{got:#?}");
        }
        let crit: Vec<_> = t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "gpp-cpassword")
            .map(|f| (f["severity"].clone(), f["evidence"].to_string()))
            .collect();
        assert_eq!(crit.len(), 1, "{crit:?}");
        assert_eq!(crit[0].0, "critical");
        assert!(crit[0].1.contains("Administrator (built-in)"), "{crit:?}");
        let json = t.to_string();
        for k in ["EC2LAUNCH", "EC2LAUNCH_V1", "CPASSWORD", "SYSPREP2008"] {
            assert!(!json.contains(&planted[k]), "{k} printed");
        }
    }
}
