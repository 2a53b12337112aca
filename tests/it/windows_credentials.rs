//! Saved credentials of the tools admins use on Windows hosts, at their Windows places and in
//! Windows' spellings (issue 15: "credentials of every user", `*.rdp` with `password 51:b:`,
//! WinSCP/FileZilla saved sessions, IIS and .NET configuration, `.git-credentials`,
//! `.docker\config.json`, `administrators_authorized_keys`, Credential Manager files): a small
//! NTFS disk written by
//! ntfs-3g (testdata/ntfs/windows-credentials.sh, fresh fake secrets each run). A full scan and
//! `--quick` (which reads only what the registry of file rules names) find each at its path,
//! with the planted value's fingerprint, and print none of them.

use crate::common::{scan_json, sh, testdata};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

fn fingerprint(v: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(v.as_bytes())))
}

#[test]
fn windows_saved_credentials_are_found_by_full_and_quick_scans() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let script = testdata().join("ntfs/windows-credentials.sh");
    sh(&format!("bash '{}' .", script.display()), dir.path());
    let planted: BTreeMap<String, String> = std::fs::read_to_string(dir.path().join("secrets.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let roaming = "/Users/alice/AppData/Roaming";
    let want: BTreeSet<(String, String, String)> = [
        (
            "gcp-oauth-refresh-token",
            format!("{roaming}/gcloud/application_default_credentials.json"),
            "GCLOUD",
        ),
        (
            "rdp-saved-password",
            "/Users/alice/Documents/Jump.RDP".to_string(),
            "RDP",
        ),
        (
            "filezilla-saved-password",
            format!("{roaming}/FileZilla/sitemanager.xml"),
            "FILEZILLA",
        ),
        (
            "winscp-saved-password",
            format!("{roaming}/WinSCP.ini"),
            "WINSCP",
        ),
        (
            "adonet-connection-string-password",
            "/inetpub/wwwroot/Shop/Web.config".to_string(),
            "WEBCONFIG",
        ),
        (
            "aspnet-machine-key",
            "/inetpub/wwwroot/Shop/Web.config".to_string(),
            "MACHINEKEY",
        ),
        (
            "adonet-connection-string-password",
            "/Program Files/ShopSync/ShopSync.exe.config".to_string(),
            "EXECONFIG",
        ),
        (
            "adonet-connection-string-password",
            "/inetpub/wwwroot/Shop/appsettings.Production.json".to_string(),
            "APPSETTINGS",
        ),
    ]
    .into_iter()
    .map(|(r, p, k)| (r.to_string(), p, fingerprint(&planted[k])))
    .collect();
    let img = dir.path().join("disk.img");
    for args in [&[][..], &["--quick"][..]] {
        let (code, t) = scan_json(&img, args);
        assert_eq!(t["volumes"][0]["filesystem"], "ntfs", "{t:#}");
        assert_eq!(t["complete"], true, "{args:?}: {t:#}");
        assert_eq!(code, 1, "{args:?}: {t:#}");
        let got: BTreeSet<(String, String, String)> = t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let s = |k: &str| f[k].as_str().unwrap_or("-").to_string();
                (s("rule"), s("path"), s("fingerprint"))
            })
            .collect();
        let mut missing: Vec<_> = want.difference(&got).cloned().collect();
        // The Credential Manager file: its fingerprint is the SHA-256 of its DPAPI blob.
        let vault = (
            "windows-saved-credential".to_string(),
            format!("{roaming}/Microsoft/Credentials/DFBE70A7E5CC19A398EBF1B96859CE5D"),
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(
                    hex::decode(&planted["VAULT_BLOB_HEX"]).unwrap()
                ))
            ),
        );
        if !got.contains(&vault) {
            missing.push(vault);
        }
        // Credential files judged by format and the administrators' keys, by rule and path.
        for (rule, path) in [
            ("git-credentials", "/Users/alice/.git-credentials"),
            ("docker-registry-auth", "/Users/alice/.docker/config.json"),
            (
                "ssh-authorized-keys",
                "/ProgramData/ssh/administrators_authorized_keys",
            ),
        ] {
            if !got.iter().any(|(r, p, _)| r == rule && p == path) {
                missing.push((rule.into(), path.into(), String::new()));
            }
        }
        assert!(
            missing.is_empty(),
            "{args:?}: missing {missing:#?}\nfound {got:#?}"
        );
        // The WinSCP session is reported as WinSCP's (high), not as a generic assignment.
        let winscp: Vec<_> = t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["path"] == format!("{roaming}/WinSCP.ini"))
            .map(|f| {
                (
                    f["rule"].clone(),
                    f["severity"].clone(),
                    f["evidence"].clone(),
                )
            })
            .collect();
        assert_eq!(winscp.len(), 1, "{winscp:?}");
        assert_eq!(winscp[0].1, "high", "{winscp:?}");
        assert!(
            winscp[0]
                .2
                .as_str()
                .unwrap()
                .contains("deploy@sftp.example.net"),
            "the session is named: {winscp:?}"
        );
        let json = t.to_string();
        for (k, v) in &planted {
            assert!(!json.contains(v.as_str()), "{args:?}: {k} printed");
        }
    }
}
