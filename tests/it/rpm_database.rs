//! A real rpm database: `testdata/build-rpm-tree.sh` builds a package with the real `rpmbuild`,
//! installs it with the real `rpm` (sqlite backend), tampers with one packaged binary and the
//! package's configuration file, adds an unowned setuid file, and makes a twin tree whose
//! database is the same header blobs in a Berkeley DB hash `Packages` written by the real
//! `db5.3_load`. Both images must give exactly the same package findings: the tampered binary,
//! the unowned setuid file, nothing for the packaged setuid file or the edited configuration file.
//! `.ci/run` installs rpm, sqlite3 and db5.3-util.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The images, built once per test binary.
pub(crate) fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpm-trees");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/build-rpm-tree.sh");
        crate::common::run(Command::new("bash").arg(script).arg(&dir));
        dir
    })
}

fn scan(img: &Path) -> Value {
    scan_with(img, &[])
}

fn scan_with(img: &Path, extra: &[&str]) -> Value {
    crate::common::scan_json_unchecked(img, extra).1
}

/// `(rule, path)` of the package-check findings.
fn package_findings(t: &Value) -> BTreeSet<(String, String)> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let r = f["rule"].as_str().unwrap();
            r.ends_with("-modified-file") || r == "setid-unowned"
        })
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expected() -> BTreeSet<(String, String)> {
    [
        ("rpm-modified-file", "/usr/bin/ps"),
        ("setid-unowned", "/usr/local/bin/backdoor"),
    ]
    .iter()
    .map(|(r, p)| (r.to_string(), p.to_string()))
    .collect()
}

fn evidence(t: &Value, rule: &str) -> String {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .map(|f| f["evidence"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn sqlite_rpm_database_verifies_ownership_and_content() {
    let t = scan(&images().join("sqlite.img"));
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(package_findings(&t), expected(), "{t:#}");
    let ev = evidence(&t, "rpm-modified-file");
    assert!(
        ev.starts_with(
            "content differs from package amiscan-fixture-1.0-1 in the rpm sqlite database \
             /var/lib/rpm/rpmdb.sqlite (SHA256 expected "
        ),
        "{ev}"
    );
    assert_eq!(
        evidence(&t, "setid-unowned"),
        "setuid (owner uid 0) mode 4755: no rpm package lists it \
         (sqlite database /var/lib/rpm/rpmdb.sqlite)"
    );
}

/// `--quick` still judges setuid ownership (metadata and the package file lists) but does not
/// hash packaged binaries.
#[test]
fn quick_judges_ownership_but_does_not_verify_content() {
    let t = scan_with(&images().join("sqlite.img"), &["--quick"]);
    assert_eq!(t["mode"], "quick");
    assert_eq!(
        package_findings(&t),
        [(
            "setid-unowned".to_string(),
            "/usr/local/bin/backdoor".to_string()
        )]
        .into_iter()
        .collect(),
        "{t:#}"
    );
}

#[test]
fn berkeley_db_rpm_database_gives_the_same_findings() {
    let t = scan(&images().join("bdb.img"));
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(package_findings(&t), expected(), "{t:#}");
    let ev = evidence(&t, "rpm-modified-file");
    assert!(
        ev.starts_with(
            "content differs from package amiscan-fixture-1.0-1 in the rpm Berkeley DB \
             database /var/lib/rpm/Packages (SHA256 expected "
        ),
        "{ev}"
    );
    // The same digests as the sqlite database's: the same header blobs.
    let sq = scan(&images().join("sqlite.img"));
    let tail = |e: &str| e.split_once("(SHA256").map(|(_, t)| t.to_string());
    assert_eq!(tail(&ev), tail(&evidence(&sq, "rpm-modified-file")));
}

#[test]
fn a_corrupt_rpm_database_makes_the_scan_incomplete() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let tree = dir.path().join("tree");
    crate::common::run(
        Command::new("cp")
            .arg("-a")
            .arg(images().join("bdb-tree"))
            .arg(&tree),
    );
    // Flip page 2's own page number (a hash or overflow page): it no longer matches its place.
    let db = tree.join("var/lib/rpm/Packages");
    let mut bytes = std::fs::read(&db).unwrap();
    let page_size = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    for b in &mut bytes[2 * page_size + 8..2 * page_size + 12] {
        *b ^= 0x55;
    }
    std::fs::write(&db, bytes).unwrap();
    let img = dir.path().join("fs.img");
    crate::common::run(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-d"])
            .arg(&tree)
            .arg("-F")
            .arg(&img)
            .arg("32M"),
    );
    let t = scan(&img);
    assert_eq!(t["complete"], false, "{t:#}");
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["path"] == "/var/lib/rpm/Packages"
            && e["message"]
                .as_str()
                .unwrap()
                .starts_with("rpm Berkeley DB database could not be read: ")),
        "{errors:#?}"
    );
    // The built-in list: the packaged setuid file is not in it either, at medium.
    let got = package_findings(&t);
    assert!(got.contains(&("setid-unowned".into(), "/usr/sbin/fixture-helper".into())));
    assert!(got.contains(&("setid-unowned".into(), "/usr/local/bin/backdoor".into())));
    assert!(!got.iter().any(|(r, _)| r.ends_with("-modified-file")));
}
