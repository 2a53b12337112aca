//! `--quick` on a Windows volume (issue 15): it walks only the places the registry's Windows
//! rules name (the profiles under `Users`, `ProgramData`, `Windows\Panther`, `System32\config`
//! and `Tasks`, `inetpub`, `Program Files`, ...) and the directories on the way to them, not
//! every directory of the volume; the report says which roots it walked. The Windows test disk
//! (testdata/ntfs/windows-disk.sh, written by ntfs-3g) has a bulky component-store directory
//! under `Windows\WinSxS` with a web.config holding a connection string password: a full scan
//! finds it, `--quick` neither lists that directory nor reports it, and still gives every
//! finding of the well-known places.

use crate::common::{rule_paths, scan_json};
use crate::ntfs::{disk, partition, secrets};
use amiscan::fs::probe::FsKind;
use amiscan::scan::quick::Scope;
use std::collections::BTreeSet;
use std::sync::Mutex;

const SXS: &str = "/Windows/WinSxS/amd64_microsoft-windows-iis-sharedlibraries_31bf3856ad364e35_10.0.20348.1_none_5a2c1d8f0e6b7a43";

#[test]
fn quick_on_windows_lists_only_the_registry_places() {
    let dir = disk("quick-walk", "leaky");
    let img = dir.join("disk.img");

    // The walk with the Windows scope: which directories it lists.
    let fs = amiscan::fs::open(FsKind::Ntfs, partition(&dir)).unwrap();
    let scope = Scope::windows();
    let listed = Mutex::new(BTreeSet::new());
    let walk = amiscan::scan::walk::walk_within(
        fs.as_ref(),
        2,
        &|d| {
            let yes = scope.lists(d);
            if yes {
                listed
                    .lock()
                    .unwrap()
                    .insert(String::from_utf8_lossy(d).into_owned());
            }
            yes
        },
        &|_| {},
    );
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    let listed = listed.into_inner().unwrap();
    for want in [
        "/Windows",
        "/Windows/System32",
        "/Windows/Panther",
        "/Windows/System32/config",
        "/Windows/System32/Tasks/Microsoft/Windows/Defrag",
        "/Windows/System32/wbem/Repository",
        "/Windows/Temp",
        "/Users/alice/Documents",
        "/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine",
        "/ProgramData/ssh",
        "/ProgramData/Amazon/EC2Launch/config",
        "/Program Files/Amazon/Ec2ConfigService/Settings",
        "/inetpub/wwwroot",
    ] {
        assert!(listed.contains(want), "{want} not listed: {listed:#?}");
    }
    let outside: Vec<&String> = listed
        .iter()
        .filter(|d| d.starts_with("/Windows/WinSxS"))
        .collect();
    assert!(outside.is_empty(), "listed: {outside:?}");
    // Nothing of the component store was even seen (its directory is not listed).
    let full = amiscan::scan::walk::walk(fs.as_ref(), 2);
    let seen = |w: &amiscan::scan::walk::Walk| {
        w.files
            .iter()
            .filter(|e| e.display_path().starts_with("/Windows/WinSxS/"))
            .count()
    };
    assert!(seen(&full) > 300, "the full walk sees the component store");
    assert_eq!(seen(&walk), 0);
    eprintln!(
        "windows --quick walk: {} directories listed, {} files seen ({} in a full walk)",
        listed.len(),
        walk.files.len(),
        full.files.len()
    );

    // The CLI: the same scope, its roots in the report, the well-known findings, not the one in
    // the component store.
    let (code, q) = scan_json(&img, &["--quick"]);
    assert_eq!(code, 1, "{q:#}");
    assert_eq!(q["complete"], true, "{q:#}");
    let vol = &q["volumes"][0];
    assert_eq!(vol["filesystem"], "ntfs", "{vol:#}");
    let roots: Vec<&str> = vol["quick_roots"]
        .as_array()
        .unwrap_or_else(|| panic!("no quick_roots: {vol:#}"))
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let lib: Vec<String> = scope.roots().collect();
    assert_eq!(roots, lib, "{vol:#}");
    for r in [
        "/Users",
        "/ProgramData",
        "/Windows/Panther",
        "/Windows/System32/Tasks",
        "/inetpub",
        "/Program Files",
    ] {
        assert!(roots.contains(&r), "{r}: {roots:?}");
    }
    for r in &roots {
        assert!(
            ![
                "/",
                "/Windows",
                "/Windows/System32",
                "/Windows/WinSxS",
                "/etc"
            ]
            .contains(r),
            "{r}: {roots:?}"
        );
    }
    let decoy = (
        "adonet-connection-string-password".to_string(),
        format!("{SXS}/web.config"),
    );
    let got = rule_paths(&q, "-");
    for (rule, path) in [
        ("windows-unattend-password", "/Windows/Panther/unattend.xml"),
        (
            "adonet-connection-string-password",
            "/inetpub/wwwroot/web.config",
        ),
        ("aws-access-key-pair", "/Users/alice/.aws/credentials"),
        ("openssh-private-key", "/Users/alice/.ssh/id_ed25519"),
        (
            "ssh-host-private-key",
            "/ProgramData/ssh/ssh_host_ed25519_key",
        ),
        (
            "ec2launch-static-admin-password",
            "/ProgramData/Amazon/EC2Launch/config/agent-config.yml",
        ),
    ] {
        assert!(
            got.contains(&(rule.to_string(), path.to_string())),
            "--quick: missing {rule} {path}\n{got:#?}"
        );
    }
    assert!(!got.contains(&decoy), "--quick read the component store");

    // A full scan reads it.
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{t:#}");
    assert!(rule_paths(&t, "-").contains(&decoy), "{t:#}");
    assert!(t["volumes"][0].get("quick_roots").is_none(), "{t:#}");
    eprintln!(
        "windows files read: --quick {}, full {}",
        q["volumes"][0]["files_scanned"], t["volumes"][0]["files_scanned"]
    );
    let json = format!("{q}{t}");
    assert!(!json.contains(&secrets(&dir)["WINSXSPW"]));
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}
